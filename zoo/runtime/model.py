"""An exported model in ONNX Runtime: preprocessing and labels from its metadata.

Needs only onnxruntime, numpy and pillow. ``onnxruntime`` itself is imported
when a model is opened, so code that only preprocesses stays light.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from . import metadata as md
from .errors import RuntimeInputError
from .preprocess import Preprocessing, list_images, open_image
from .skips import SkipReport

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Prediction:
    """The top classes for one input."""

    source: str
    labels: list[str]
    indices: list[int]
    probabilities: list[float]
    multi_label: bool = False  # then ``labels`` are every label at or above the threshold
    tta: tuple[str, ...] = ()  # the test-time augmentations averaged (zoo.runtime.tta)

    def to_dict(self) -> dict[str, Any]:
        """``{"input", "top": [...]}``; a multi-label model's answer lists its labels under ``"labels"``."""
        out = {
            "input": self.source,
            "labels" if self.multi_label else "top": [
                {"label": label, "index": index, "probability": prob}
                for label, index, prob in zip(self.labels, self.indices, self.probabilities)
            ],
        }
        if self.tta:
            out["tta"] = list(self.tta)
        return out


def choose_providers(provider: str = "auto") -> list[str]:
    """ONNX Runtime providers for ``cpu``, ``cuda`` or ``auto`` (CUDA when this onnxruntime has it)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    provider = provider.lower()
    if provider == "auto":
        return [PROVIDERS["cuda"], PROVIDERS["cpu"]] if PROVIDERS["cuda"] in available else [PROVIDERS["cpu"]]
    if provider not in PROVIDERS:
        raise RuntimeInputError(f"unknown provider {provider!r}; choose cpu, cuda or auto")
    if PROVIDERS[provider] not in available:
        raise RuntimeInputError(
            f"this onnxruntime has no {PROVIDERS[provider]} (it offers {', '.join(available)});"
            " install onnxruntime-gpu for CUDA, or use --provider cpu"
        )
    return [PROVIDERS[provider]] + ([PROVIDERS["cpu"]] if provider != "cpu" else [])


def open_session(path: str | os.PathLike, provider: str = "auto", threads: int | None = None, spinning: bool = True,
                 memory_pattern: bool = True) -> Any:
    """An ``InferenceSession`` with full graph optimisation, or a clear error for a bad file.

    ``spinning=False`` stops idle worker threads from busy-waiting for the
    next run: slower by a little, but fair to other work in the same process
    (benchmarks that alternate with PyTorch). ``memory_pattern=False`` keeps
    ONNX Runtime from planning one block for every tensor of a run: measured
    on EfficientNet-Lite0, batch 27 at 224x224, the session's peak fell from
    700 MB to 400 MB at the same speed (within 5%).
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise RuntimeInputError(f"model file {str(path)!r} does not exist")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3  # keep ORT's own warnings off the user's terminal
    options.enable_mem_pattern = bool(memory_pattern)
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=choose_providers(provider))
    except RuntimeInputError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RuntimeInputError(
            f"cannot load {str(path)!r} as an ONNX model (corrupt, truncated or not ONNX?): {first[:300]}"
        ) from None


class Predictor:
    """Shared prediction logic: subclasses set ``preprocessing``, ``labels``, ``task``,
    ``name`` and implement :meth:`run` on a preprocessed batch."""

    preprocessing: Preprocessing
    labels: list[str] | None
    task: str = "classification"
    name: str = "model"
    multi_label: bool = False  # sigmoid per class instead of a softmax over them
    threshold: float = 0.5  # multi-label: the probability at which a label is given
    # Decode the next batch in a helper thread while this one runs: worth it
    # when the model runs on a GPU; on CPU the thread only takes cores away
    # from the model (measured: benchmarks/deploy_speed.py predict-overhead).
    prefetch: bool = False
    # Test-time augmentation: probabilities averaged over these views (zoo.runtime.tta.parse_tta).
    tta: tuple[str, ...] = ()

    def run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, classes)`` for a preprocessed batch (softmax, or sigmoids when multi-label)."""
        if self.task != "classification":
            raise RuntimeInputError(f"{self.name} is a {self.task} model; it has no class probabilities")
        if self.tta:
            from .tta import average_probabilities

            return average_probabilities(lambda view: self.scores(self.run(view)), batch, self.tta)
        return self.scores(self.run(batch))

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """The model's logits as probabilities: a softmax over classes, or one sigmoid each when multi-label."""
        return sigmoid(logits) if self.multi_label else softmax(logits)

    def top_k(self, probs: np.ndarray, sources: Sequence[str], k: int = 5,
              threshold: float | None = None) -> list[Prediction]:
        """The ``k`` most probable classes of each row of ``probs``; for a multi-label model every class at
        or above ``threshold`` (default ``self.threshold``) instead, most probable first."""
        cut = self.threshold if threshold is None else float(threshold)
        num = probs.shape[1]
        if self.labels is not None and len(self.labels) != num:
            raise RuntimeInputError(f"{len(self.labels)} labels were given but the model has {num} outputs")
        k = max(1, min(int(k), num))
        order = np.argsort(-probs, axis=1, kind="stable")
        out = []
        for row, ranked, source in zip(probs, order, sources):
            idx = [i for i in ranked if row[i] >= cut] if self.multi_label else ranked[:k]
            names = [self.labels[i] if self.labels else str(i) for i in idx]
            out.append(Prediction(str(source), names, [int(i) for i in idx], [float(row[i]) for i in idx],
                                  self.multi_label, tuple(self.tta)))
        return out

    def predict_array(self, batch: np.ndarray, top_k: int = 5) -> list[Prediction]:
        """Predictions for a preprocessed numpy batch (CHW or NCHW float32)."""
        arr = self.preprocessing.check_array(batch)
        return self.top_k(self.probabilities(arr), [f"array[{i}]" for i in range(len(arr))], top_k)

    def predict_image(self, image: Any, top_k: int = 5) -> Prediction:
        """Prediction for one image: a path or a PIL image (any mode or size; converted and resized)."""
        source = str(image) if isinstance(image, (str, os.PathLike)) else "image"
        arr = self.preprocessing.image_to_array(image)[None]  # an unreadable file raises its own reason
        return self.top_k(self.probabilities(arr), [source], top_k)[0]

    def predict(self, inputs: Iterable[str | os.PathLike], top_k: int = 5, batch_size: int = 32,
                skipped: SkipReport | None = None) -> list[Prediction]:
        """Predictions for image files and folders (searched recursively), in batches.

        Files that cannot be decoded are left out and recorded in ``skipped``;
        when none of the images can be read, the error says why.
        """
        skipped = SkipReport() if skipped is None else skipped
        out: list[Prediction] = []
        for chunk, batch in self.batches(self.image_paths(inputs, skipped), batch_size, skipped):
            out.extend(self.top_k(self.probabilities(batch), [str(p) for p in chunk], top_k))
        if not out:
            raise RuntimeInputError(skipped.nothing_read())
        return out

    @staticmethod
    def image_paths(inputs: Iterable[str | os.PathLike], skipped: SkipReport) -> list[Path]:
        """The image files of ``inputs``; a missing input, or no image at all, is an error."""
        paths = list_images(inputs, skipped)
        if not paths:
            extra = f" ({skipped.describe()})" if skipped else ""
            raise RuntimeInputError(f"no images found in the given inputs{extra}")
        return paths

    def batches(self, paths: Sequence[Path], batch_size: int = 32,
                skipped: SkipReport | None = None) -> Iterator[tuple[Sequence[Path], np.ndarray]]:
        """Decoded, preprocessed batches (with ``prefetch``, the next decodes while this one runs).

        Undecodable files are left out and recorded in ``skipped`` (without
        one, the first such file raises).
        """
        size = max(1, int(batch_size))
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]

        def load(chunk: Sequence[Path]) -> tuple[Sequence[Path], np.ndarray]:
            if skipped is None:
                return chunk, self.preprocessing.load_batch(chunk)
            return self.preprocessing.load_readable(chunk, skipped)

        if len(chunks) == 1 or not self.prefetch:
            for chunk in chunks:
                kept, batch = load(chunk)
                if len(kept):
                    yield kept, batch
            return
        # pillow releases the GIL while decoding and resizing, so one helper
        # thread hides the decoding behind the model's own run.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(load, chunks[0])
            for i in range(len(chunks)):
                kept, batch = pending.result()
                if i + 1 < len(chunks):
                    pending = pool.submit(load, chunks[i + 1])
                if len(kept):
                    yield kept, batch

    def reconstruct(self, inputs: Iterable[str | os.PathLike], batch_size: int = 32,
                    skipped: SkipReport | None = None) -> list[tuple[str, np.ndarray, float]]:
        """For autoencoders: ``(path, reconstruction, mean squared error)`` per image (unreadable ones skipped)."""
        skipped = SkipReport() if skipped is None else skipped
        out = []
        for chunk, batch in self.batches(self.image_paths(inputs, skipped), batch_size, skipped):
            recon = np.asarray(self.run(batch))
            errors = ((recon.reshape(len(batch), -1) - batch.reshape(len(batch), -1)) ** 2).mean(axis=1)
            out.extend((str(p), r, float(e)) for p, r, e in zip(chunk, recon, errors))
        if not out:
            raise RuntimeInputError(skipped.nothing_read())
        return out


class OnnxModel(Predictor):
    """An exported zoo model (or any image classifier in ONNX) ready to predict.

    ``size``, ``mean``, ``std`` and ``labels`` override or fill in what the
    file's metadata says; a file from elsewhere without metadata needs them.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        provider: str = "auto",
        threads: int | None = None,
        size: int | Sequence[int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        labels: Sequence[str] | str | os.PathLike | None = None,
        generic: bool = False,
        spinning: bool = True,
    ) -> None:
        self.path = Path(path)
        # generic=True: a file without zoo metadata still opens, with ImageNet
        # normalisation, the graph's size (else 224) and class indices; what was
        # guessed is listed in ``guessed``, so a server can say so.
        self.generic = generic
        self.guessed: list[str] = []
        self.name = self.path.name
        self.session = open_session(self.path, provider=provider, threads=threads, spinning=spinning)
        self.metadata = md.decode(self.session.get_modelmeta().custom_metadata_map or {})
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise RuntimeInputError(f"{self.path.name} takes {len(inputs)} inputs; the runtime handles one image input")
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        if len(self.input_shape) != 4:
            raise RuntimeInputError(
                f"{self.path.name} takes a {len(self.input_shape)}-d input {self.input_shape}; expected (N, C, H, W) images"
            )
        self.output_name = self.session.get_outputs()[0].name
        self.prefetch = self.providers[0] != PROVIDERS["cpu"]
        self.task = str(self.metadata.get(md.TASK, "classification"))
        self.multi_label = self.metadata.get(md.MULTI_LABEL) is True
        self.preprocessing = self._preprocessing(size, mean, std)
        self.labels = self._labels(labels)

    # -- what the file says -----------------------------------------------------

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    @property
    def max_batch(self) -> int | None:
        """The batch size baked into the graph, or None when it is dynamic."""
        first = self.input_shape[0]
        return first if isinstance(first, int) and first > 0 else None

    def _preprocessing(self, size: Any, mean: Any, std: Any) -> Preprocessing:
        meta_size = self.metadata.get(md.INPUT_SIZE)
        graph = [d if isinstance(d, int) and d > 0 else None for d in self.input_shape[1:]]
        chans = graph[0] or (int(meta_size[0]) if meta_size else None)
        if size is not None:
            height, width = _size_pair(size)
        elif meta_size:
            height, width = int(meta_size[1]), int(meta_size[2])
        elif graph[1] and graph[2]:
            height, width = graph[1], graph[2]  # a static graph tells its own size
        else:
            height = width = None
        mean = mean if mean is not None else self.metadata.get(md.MEAN)
        std = std if std is not None else self.metadata.get(md.STD)
        if self.generic:
            height, width, mean, std = self._guess(height, width, mean, std)
        missing = [
            flag
            for flag, value in (("--size", height), ("--mean", mean), ("--std", std))
            if value is None
        ]
        if chans is None and not missing:
            chans = len(mean)
        if missing:
            raise RuntimeInputError(
                f"{self.path.name} carries no zoo metadata for {', '.join(f[2:] for f in missing)}:"
                f" give {' and '.join(missing)} (e.g. --size 224 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225),"
                " and --labels FILE for class names (class indices are shown without it)"
            )
        if graph[1] and graph[2] and (graph[1], graph[2]) != (height, width):
            raise RuntimeInputError(
                f"{self.path.name} has a fixed input size {graph[1]}x{graph[2]}; --size {height}x{width} does not fit it"
            )
        mean = tuple(float(v) for v in mean)
        std = tuple(float(v) for v in std)
        if len(mean) == 1 and chans == 3:  # one value for all channels is a common shorthand
            mean, std = mean * 3, std * 3 if len(std) == 1 else std
        return Preprocessing(int(chans), int(height), int(width), mean, std)

    def _guess(self, height: Any, width: Any, mean: Any, std: Any) -> tuple[Any, Any, Any, Any]:
        if height is None:
            height = width = 224
            self.guessed.append("size")
        one_channel = self.input_shape[1] == 1
        if mean is None:
            mean = (0.5,) if one_channel else IMAGENET_MEAN
            self.guessed.append("mean")
        if std is None:
            std = (0.5,) if one_channel else IMAGENET_STD
            self.guessed.append("std")
        return height, width, mean, std

    def _labels(self, labels: Any) -> list[str] | None:
        if labels is not None:
            return read_labels(labels)
        names = self.metadata.get(md.CLASS_NAMES)
        if isinstance(names, list) and names:
            return [str(n) for n in names]
        if self.generic:
            self.guessed.append("labels")
        return None

    # -- running ----------------------------------------------------------------

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The raw output (logits, or reconstructions) for a preprocessed ``(N, C, H, W)`` batch."""
        arr = self.preprocessing.check_array(batch)
        fixed = self.input_shape[2:]
        if all(isinstance(d, int) and d > 0 for d in fixed) and list(arr.shape[2:]) != fixed:
            raise RuntimeInputError(
                f"the array is {arr.shape[2]}x{arr.shape[3]}, the model takes {fixed[0]}x{fixed[1]};"
                " resize first, or pass image files (they are resized for you)"
            )
        step = max(self.max_batch or len(arr), 1)
        outs = [self._run_fixed(arr[i : i + step], step) for i in range(0, len(arr), step)]
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def _run_fixed(self, chunk: np.ndarray, step: int) -> np.ndarray:
        """One session.run; a graph with a fixed batch size gets a partial chunk padded with zeros."""
        rows = len(chunk)
        if self.max_batch and rows < step:
            chunk = np.concatenate([chunk, np.zeros((step - rows, *chunk.shape[1:]), dtype=chunk.dtype)])
        return self.session.run([self.output_name], {self.input_name: chunk})[0][:rows]

    def describe(self) -> dict[str, Any]:
        """What the model expects and where it runs."""
        arch = self.metadata.get(md.ARCHITECTURE)
        return {
            "path": str(self.path),
            "architecture": arch.get("name") if isinstance(arch, dict) else arch,
            "task": self.task,
            "multi_label": self.multi_label,
            "providers": self.providers,
            "input_shape": self.input_shape,
            **self.preprocessing.to_dict(),
            "num_labels": len(self.labels) if self.labels else None,
        }


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function in float64, without overflow for large negative logits."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def read_labels(labels: Sequence[str] | str | os.PathLike) -> list[str]:
    """Labels from a list, a comma-separated string, or a file (one per line, or a JSON list)."""
    if isinstance(labels, (list, tuple)):
        return [str(v) for v in labels]
    text = str(labels)
    path = Path(text)
    if path.is_file():
        raw = path.read_text(encoding="utf-8")
        if raw.lstrip().startswith("["):
            import json

            try:
                return [str(v) for v in json.loads(raw)]
            except ValueError:
                raise RuntimeInputError(f"{text!r} starts like JSON but is not a JSON list of labels") from None
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if "," in text:
        return [part.strip() for part in text.split(",")]
    raise RuntimeInputError(f"--labels {text!r}: give a file (one label per line) or a comma-separated list")


def _size_pair(size: int | Sequence[int] | str) -> tuple[int, int]:
    if isinstance(size, str):
        parts = [p for p in size.lower().replace(",", "x").split("x") if p]
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise RuntimeInputError(f"--size {size!r}: give N or HxW, e.g. 224 or 224x224") from None
    elif isinstance(size, int):
        values = [size]
    else:
        values = [int(v) for v in size]
    if len(values) == 1:
        values = values * 2
    if len(values) == 3:  # (C, H, W)
        values = values[1:]
    if len(values) != 2 or min(values) < 1:
        raise RuntimeInputError(f"--size {size!r}: give N or HxW, e.g. 224 or 224x224")
    return values[0], values[1]


def load(path: str | os.PathLike, **options: Any) -> OnnxModel:
    """Open an exported ``.onnx`` model; see :class:`OnnxModel` for the options."""
    return OnnxModel(path, **options)


__all__ = ["OnnxModel", "Prediction", "Predictor", "choose_providers", "load", "open_image", "open_session", "read_labels", "sigmoid", "softmax"]

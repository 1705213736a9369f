"""The engine of the frozen feature pass: ONNX Runtime when it gives PyTorch's numbers, else PyTorch.

A frozen backbone is inference, so its pre-logits are exported to ONNX
(once per backbone: the file is cached under :func:`weights_key`), checked
against PyTorch on a real batch with the tolerance of ``zoo export``, and
run with ONNX Runtime, 3-4x faster than eager PyTorch on a laptop CPU. A
cached file that fails the check is removed and exported once more; when
the export or the check fails, PyTorch (channels-last, ``inference_mode``)
computes the features and one line says why, and the next run tries again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.train.callbacks import _is_terminal
from zoo.text import first_line

ENGINES = ("auto", "onnxruntime", "torch")
ATOL = 1e-4  # zoo export's default tolerance: max abs diff <= ATOL * max(1, max |PyTorch output|)
CACHE_ENV = "ZOO_CACHE_DIR"
# export_onnx's options for a cached backbone; part of the cache key (weights_key), as is the opset.
EXPORT_SETTINGS = {"spatial": "static", "batch_size": 2, "exporter": "auto"}
ESTIMATE_FROM = 1000  # images: below this the whole pass takes seconds, and an estimate is noise
ESTIMATE_AFTER = 2.0  # seconds after the first batch before the estimate: a steady rate, not the warm-up


class PreLogits(nn.Module):
    """``forward_head(forward_features(x), pre_logits=True)`` as a module's forward, for export."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def backbone_cache_dir() -> Path:
    """Where exported backbones are kept: ``$ZOO_CACHE_DIR/backbones``, else ``~/.cache/zoo/backbones``."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "zoo")
    return Path(root) / "backbones"


def weights_key(model: nn.Module, input_size: Sequence[int]) -> str:
    """A hash of what the exported backbone computes: its weights and buffers (the head left out), its
    arguments without parameters (``act_layer``, ``global_pool``, ... as the model's kwargs and its module
    tree), the input size and the exporter's settings and versions."""
    import json

    from zoo.registry import model_info
    from zoo.transfer.freeze import head_module, head_param_names

    info = model_info(model)
    arguments = json.dumps({"arch": info.name, "kwargs": info.kwargs, "in_chans": info.in_chans}, sort_keys=True,
                           default=_stable_name) if info is not None else ""
    head = head_module(model)
    head_ids = {id(m) for m in head.modules()} if head is not None else set()
    # The layer types and their settings (Dropout's p, a pool's type, an activation): arguments that leave no
    # parameter behind still change the module tree. The head is left out: its class count is not the backbone's.
    tree = [f"{name}:{type(m).__qualname__}({m.extra_repr()})" for name, m in model.named_modules()
            if id(m) not in head_ids]
    digest = hashlib.sha256("|".join([type(model).__qualname__, str(list(input_size)), arguments, *tree,
                                      *_exporter_settings()]).encode())
    skip = set(head_param_names(model))
    for name, tensor in sorted(model.state_dict().items()):
        if name in skip:
            continue
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def _stable_name(value: Any) -> str:
    """A name for a kwarg JSON cannot write that stays the same across runs (no ``0x...`` address)."""
    qualname = getattr(value, "__qualname__", None)
    return f"{getattr(value, '__module__', '')}.{qualname}" if qualname else repr(value)


def _exporter_settings() -> list[str]:
    """What else decides the exported graph: the options export_backbone passes and the libraries' versions."""
    import onnx

    from zoo.export.onnx_export import DEFAULT_OPSET

    return [f"{key}={value}" for key, value in sorted({**EXPORT_SETTINGS, "opset": DEFAULT_OPSET,
                                                       "torch": torch.__version__, "onnx": onnx.__version__}.items())]


class TorchFeatures:
    """PyTorch's pre-logits, channels-last under ``inference_mode`` (the model's layout is restored after).

    ``amp`` is :func:`zoo.devices.autocast_choice`'s ``(enabled, dtype)``: bf16 autocast on CPUs with bf16 units.
    """

    name = "torch"

    def __init__(self, model: nn.Module, device: Any = "cpu", amp: tuple[bool, Any] = (False, None)) -> None:
        self.model, self.device, self.amp = model, torch.device(device), amp
        if amp[0]:
            self.name = "torch bf16" if amp[1] in (None, torch.bfloat16) else "torch fp16"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from zoo.devices import autocast

        with torch.inference_mode(), autocast(self.device, *self.amp):
            x = x.to(self.device).contiguous(memory_format=torch.channels_last)
            return self.model.forward_head(self.model.forward_features(x), pre_logits=True).float().cpu()

    def __enter__(self) -> "TorchFeatures":
        self.was = self.model.training
        self.model.eval().to(memory_format=torch.channels_last)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.model.to(memory_format=torch.contiguous_format).train(self.was)


class OnnxFeatures:
    """An ONNX Runtime session over the exported pre-logits, run in ``lanes`` threads at once.

    The session has one intra-op thread and each lane runs its own part of a
    batch: on 2 cores two lanes of one thread ran EfficientNet-Lite0 at 224
    1.1-1.2x as fast as one run of two threads (no barrier between the
    threads of each operator), and a lane that also decodes its images keeps
    its core busy while the other lane computes (see
    :func:`zoo.transfer.features.extract_split_features`).
    """

    name = "onnxruntime"

    def __init__(self, session: Any, input_name: str, lanes: int = 1) -> None:
        self.session, self.input_name, self.lanes = session, input_name, max(1, int(lanes))
        self._pool: Any = None

    def run_one(self, x: torch.Tensor) -> torch.Tensor:
        """The features of ``x`` in one run, in the calling thread (each lane calls this)."""
        # ORT's arena is not shrunk after each run ("memory.enable_memory_arena_shrinkage"): that cost 15%
        # of the speed, and with zoo.data.budget.keep_batches_off_the_heap the arena stays one batch (184 MB
        # for EfficientNet-Lite0) instead of growing.
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        out = self.session.run(None, {self.input_name: arr})[0]
        return torch.from_numpy(out.astype(np.float32, copy=False))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.lanes == 1 or len(x) < 2:
            return self.run_one(x)
        parts = torch.tensor_split(x, min(self.lanes, len(x)))
        if self._pool is None:
            return torch.cat([self.run_one(p) for p in parts])
        return torch.cat(list(self._pool.map(self.run_one, parts)))

    def __enter__(self) -> "OnnxFeatures":
        if self.lanes > 1 and self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.lanes, thread_name_prefix="zoo-features")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def export_backbone(model: nn.Module, input_size: Sequence[int], folder: Path, key: str) -> Path:
    """The pre-logits of ``model`` as ``folder/key.onnx`` (validated by :func:`zoo.export.export_onnx`)."""
    from zoo.export.onnx_export import export_onnx

    final = folder / f"{key}.onnx"
    if final.is_file():
        return final
    config = {
        "architecture": getattr(model, "zoo_arch", {}).get("name") or type(model).__name__,
        "input_size": [int(v) for v in input_size],
        "mean": [0.0] * int(input_size[0]), "std": [1.0] * int(input_size[0]),  # inputs arrive normalised
        "num_classes": int(getattr(model, "num_features", 0) or 1), "class_names": [],
    }
    was = model.training
    try:
        # export_onnx writes into a temporary folder and renames into place: no half-written file.
        return export_onnx(PreLogits(model).eval(), config, folder, name=key, real_images=False, atol=ATOL,
                           **EXPORT_SETTINGS)
    finally:
        model.train(was)


def choose_engine(
    model: nn.Module,
    sample: torch.Tensor,
    input_size: Sequence[int],
    *,
    engine: str = "auto",
    device: Any = "cpu",
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
    amp: tuple[bool, Any] = (False, None),
):
    """The feature engine for ``model``; ``sample`` is a real normalised batch to check ONNX Runtime on.

    ``engine`` is ``auto`` (ONNX Runtime on CPU when it validates, else
    PyTorch with one line saying why), ``onnxruntime`` (the same, but a
    failure is an error) or ``torch``.
    """
    if engine not in ENGINES:
        raise ZooError(f"--feature-engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    say = log or (lambda line: None)
    if engine == "torch":
        return TorchFeatures(model, device, amp)
    if torch.device(device).type != "cpu":
        if engine == "onnxruntime":
            raise ZooError("--feature-engine onnxruntime runs on the CPU; use --device cpu or --feature-engine auto")
        return TorchFeatures(model, device, amp)
    try:
        found = _validated_session(model, sample, input_size, threads, say)
    except Exception as exc:  # export, loading or the check failed: never a silently wrong feature
        reason = first_line(exc)
        if engine == "onnxruntime":
            raise ZooError(f"--feature-engine onnxruntime: {reason}") from None
        say(f"feature pass: PyTorch instead of ONNX Runtime ({reason})")
        return TorchFeatures(model, device, amp)
    if amp[0] and engine == "auto":
        return _faster_of(found, TorchFeatures(model, device, amp), model, sample, say)
    return found


def _validated_session(model: nn.Module, sample: torch.Tensor, input_size: Sequence[int], threads: int | None,
                       say: Callable[[str], None]):
    model = model.to("cpu")
    key = weights_key(model, input_size)
    path = backbone_cache_dir() / f"{key}.onnx"
    if path.is_file():
        try:
            return _checked_session(model, sample, input_size, threads, key)
        except Exception as exc:  # _checked_session removed the file: one fresh export may agree
            say(f"feature pass: the cached backbone {path.name} failed ({first_line(exc)}); exporting it again")
    say("feature pass: exporting the backbone to ONNX (once for these weights)")
    return _checked_session(model, sample, input_size, threads, key)


def _checked_session(model: nn.Module, sample: torch.Tensor, input_size: Sequence[int], threads: int | None,
                     key: str) -> "OnnxFeatures":
    """A session over the cached (or newly exported) backbone that agrees with PyTorch on ``sample``.

    When it cannot be opened or disagrees, the file is removed, so the next
    run exports afresh instead of falling back to PyTorch for good.
    """
    from zoo.export import validate as val
    from zoo.runtime import metadata as md
    from zoo.runtime.model import open_session

    path = export_backbone(model, input_size, backbone_cache_dir(), key)
    import gc

    gc.collect()  # the exporter's graphs go before the session arrives: a first run peaks no higher than a cached one
    try:
        # No memory pattern: the session's peak is set by one batch's live tensors, not all of them.
        # No spinning: between batches the idle threads would busy-wait on the cores that decode the next
        # batch of a streamed folder (1,000 photos at 1024x768 on 2 cores: 92 img/s without, 84 with).
        # One intra-op thread per lane, as many lanes as threads (see OnnxFeatures).
        lanes = threads or torch.get_num_threads()
        session = open_session(path, "cpu", threads=1, memory_pattern=False, spinning=False)
        prelogits = PreLogits(model)
        was = model.training
        model.eval()
        try:
            def reference(x: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    return prelogits(torch.from_numpy(x)).float().numpy()

            real = np.ascontiguousarray(sample.detach().to("cpu", torch.float32).numpy())
            checks = val.compare(session, reference, {f"images, batch {len(real)}": real}, ATOL,
                                 input_name=md.INPUT_NAME)
        finally:
            model.train(was)
        if not all(c.passed for c in checks):
            raise ZooError(f"ONNX Runtime disagrees with PyTorch on a real batch ({val.describe_failure(checks)})")
    except Exception:
        path.unlink(missing_ok=True)
        raise
    return OnnxFeatures(session, md.INPUT_NAME, lanes)


BF16_AGREE = 1.0  # share of a real batch whose predicted class must be the same on bf16 and float32 features
BF16_PROB_TOL = 0.02  # largest difference of any class probability between the two


def _faster_of(onnx: "OnnxFeatures", bf16: TorchFeatures, model: nn.Module, sample: torch.Tensor,
               say: Callable[[str], None]):
    """ONNX Runtime float32 or PyTorch bf16, by a short timed probe on ``sample``; bf16 only when it agrees.

    bf16 features differ from float32 ones by far more than :data:`ATOL`, so
    the check is on what the head makes of them: the model's classifier
    must predict the same class for every image of the batch
    (:data:`BF16_AGREE`) with probabilities within :data:`BF16_PROB_TOL`.
    """
    with bf16, onnx:  # each in the state the pass will run it in
        bf16(sample)  # warm oneDNN's bf16 kernels for this shape
        times: dict[str, list[float]] = {"onnx": [], "bf16": []}
        for _ in range(2):  # alternating, so both see the same load
            for name, engine in (("onnx", onnx), ("bf16", bf16)):
                start = time.perf_counter()
                out = engine(sample)
                times[name].append(time.perf_counter() - start)
                if name == "onnx":
                    f32 = out
                else:
                    b16 = out
        t_onnx, t_bf16 = min(times["onnx"]), min(times["bf16"])
    rate = len(sample) / max(t_onnx, 1e-9), len(sample) / max(t_bf16, 1e-9)
    if t_bf16 >= 0.9 * t_onnx:
        say(f"feature pass: ONNX Runtime float32 ({rate[0]:,.0f} img/s) over PyTorch bf16 ({rate[1]:,.0f} img/s)")
        return onnx
    head = model.get_classifier()
    with torch.inference_mode():
        p32, p16 = (torch.softmax(head(f.float()).float(), 1) for f in (f32, b16))
    same = float((p32.argmax(1) == p16.argmax(1)).float().mean())
    drift = float((p32 - p16).abs().max())
    if same < BF16_AGREE or drift > BF16_PROB_TOL:
        say(f"feature pass: ONNX Runtime float32, though PyTorch bf16 was faster ({rate[1]:,.0f} vs {rate[0]:,.0f}"
            f" img/s): its predictions differ ({same:.0%} the same class, probabilities up to {drift:.3f} apart)")
        return onnx
    say(f"feature pass: PyTorch bf16 ({rate[1]:,.0f} img/s) over ONNX Runtime float32 ({rate[0]:,.0f} img/s);"
        f" the head's predictions agree on the {len(sample)} probe images")
    return bf16


class FeatureMeter:
    """Progress of the feature pass: an estimate once it runs steadily, a bar on a terminal, a summary.

    The estimate is taken from the rate after the first batch (which also
    fills the decoding pipeline and warms the engine, so it runs slower than
    the rest), over at least :data:`ESTIMATE_AFTER` seconds.
    """

    def __init__(self, total: int, engine: str, log: Callable[[str], None], stream: Any = None) -> None:
        self.total, self.engine, self.log = int(total), engine, log
        self.stream = stream or sys.stderr
        self.done, self.started, self.bar = 0, time.perf_counter(), None
        self.estimated = False
        self.first: tuple[int, float] | None = None  # (images done, time) at the first batch
        self.seconds = 0.0  # the whole pass, set by close()

    def advance(self, n: int) -> None:
        """``n`` more images have their features."""
        self.done += int(n)
        now = time.perf_counter()
        if self.first is None:
            self.first = (self.done, now)
            if _is_terminal(self.stream) and self.done < self.total:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=self.total, initial=self.done, desc="features", unit="img",
                                file=self.stream, leave=False, mininterval=0.5, dynamic_ncols=True)
        elif self.bar is not None:
            self.bar.update(n)
        if self.estimated or self.total < ESTIMATE_FROM or self.done >= self.total:
            return
        done0, t0 = self.first
        if now - t0 >= ESTIMATE_AFTER and self.done > done0:
            self.estimated = True
            rate = (self.done - done0) / (now - t0)
            self.log(f"feature pass: ~{(self.total - self.done) / rate:.0f} s more with {self.engine}"
                     f" ({self.total:,} images, {rate:,.0f} img/s)")

    def close(self) -> str:
        """Stop the bar; the summary line."""
        if self.bar is not None:
            self.bar.close()
        elapsed = self.seconds = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        return f"feature pass: {self.done:,} images in {elapsed:.1f} s with {self.engine} ({rate:,.0f} img/s)"

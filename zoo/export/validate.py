"""Checking an exported ONNX file against the PyTorch model it came from.

ONNX Runtime and PyTorch run the same inputs: random tensors and images
(from ``--data`` or generated), at batch size 1 and at a larger batch (a batch
size baked into the graph fails there), and at a second spatial size when the
graph claims dynamic height and width. The largest absolute difference must
stay within ``atol``; for outputs larger than 1 in magnitude the bound grows
with the largest reference value (``atol * max(1, max|ref|)``), because float32
rounding grows with the values themselves (an untrained ResNet-152's logits
reach 1e6).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.errors import ExportError
from zoo.runtime.preprocess import Preprocessing, list_images
from zoo.runtime.skips import SkipReport
from zoo.text import first_line


@dataclass
class Check:
    """One comparison of ONNX Runtime against PyTorch."""

    name: str
    shape: list[int]
    max_abs_diff: float | None
    max_abs_ref: float | None
    tolerance: float
    passed: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def preprocessing_of(config: dict[str, Any]) -> Preprocessing:
    """The runtime preprocessing a checkpoint config describes."""
    c, h, w = (int(v) for v in config["input_size"])
    return Preprocessing(c, h, w, tuple(config["mean"]), tuple(config["std"]))


def synthetic_images(count: int, size: tuple[int, int], seed: int = 0) -> list[Any]:
    """Photo-like test images (gradients, stripes, noise) larger than the input, so resizing runs too."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size[0] + size[0] // 2 + 3, size[1] + size[1] // 3 + 5
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    images = []
    for i in range(count):
        base = rng.uniform(0, 255, size=3)
        period = rng.uniform(3, max(4.0, w / 3))
        stripes = 60 * np.sin((xs * np.cos(i) + ys * np.sin(i)) / period)[..., None]
        gradient = (xs / w * rng.uniform(-80, 80) + ys / h * rng.uniform(-80, 80))[..., None]
        noise = rng.normal(0, 20, size=(h, w, 3))
        pixels = np.clip(base + stripes + gradient + noise, 0, 255).astype(np.uint8)
        images.append(Image.fromarray(pixels, "RGB"))
    return images


def data_images(data: str | os.PathLike, skipped: SkipReport | None = None) -> tuple[list[Path], list[str | None]]:
    """The images of ``--data`` and the class each one shows: a folder's sub-folder names, or a table's labels
    (:mod:`zoo.data.table`; None for a multi-label row)."""
    from zoo.data.table import TableColumns, is_table, read_table

    if is_table(data):
        table = read_table(data, TableColumns(multi_label=True))
        if skipped is not None:
            skipped.update(table.skipped)
        names = [table.class_names[y[0]] if len(y) == 1 else None for y in table.labels]
        return list(table.paths), names
    paths = list_images([data], skipped)
    return paths, [p.parent.name for p in paths]


def image_batch(config: dict[str, Any], count: int, data: str | os.PathLike | None = None,
                skipped: SkipReport | None = None) -> tuple[np.ndarray, str]:
    """``count`` preprocessed images from ``data`` (spread over the folder) or generated ones.

    Files of ``data`` that cannot be decoded are passed over and recorded in ``skipped``.
    """
    pre = preprocessing_of(config)
    if data is not None:
        skipped = SkipReport() if skipped is None else skipped
        paths = data_images(data, skipped)[0]
        step = max(1, len(paths) // count)
        first = paths[::step][:count]
        chosen, batch = pre.load_readable(first, skipped)
        taken = set(first)
        rest = iter([p for p in paths if p not in taken])
        while len(chosen) < count:  # replace the unreadable ones from the rest of the folder
            path = next(rest, None)
            if path is None:
                break
            more, extra = pre.load_readable([path], skipped)
            chosen, batch = chosen + more, np.concatenate([batch, extra])
        if not chosen:
            if not paths:
                raise ExportError(f"--data {str(data)!r} holds no images to validate the export on")
            raise ExportError(f"--data {str(data)!r} holds no readable images to validate the export on:"
                              f" {skipped.describe()}")
        while len(batch) < count:  # a folder with fewer images than the batch
            batch = np.concatenate([batch, batch[: count - len(batch)]])
        return batch, f"images from {data}"
    images = synthetic_images(count, (pre.height, pre.width))
    return np.stack([pre.image_to_array(img) for img in images]), "generated images"


def validation_inputs(
    config: dict[str, Any],
    batch_size: int,
    data: str | os.PathLike | None = None,
    seed: int = 0,
    real_images: bool = True,
    skipped: SkipReport | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """The named input batches every export is checked on (random tensors, then images),
    and where the images came from; unreadable files of ``data`` go into ``skipped``."""
    c, h, w = (int(v) for v in config["input_size"])
    rng = np.random.default_rng(seed)
    big = max(2, int(batch_size))
    random = rng.standard_normal((big, c, h, w)).astype(np.float32)
    inputs = {"random, batch 1": random[:1], f"random, batch {big}": random}
    if not real_images:
        return inputs, "none (random tensors only)"
    images, origin = image_batch(config, big, data, skipped)
    inputs.update({"images, batch 1": images[:1], f"images, batch {big}": images})
    return inputs, origin


def other_size(height: int, width: int) -> tuple[int, int]:
    """A second spatial size, used to check that dynamic height/width really work."""

    def grow(v: int) -> int:
        return ((v + max(8, v // 8)) + 7) // 8 * 8

    return grow(height), grow(width)


def compare(
    session: Any,
    reference: Any,
    inputs: dict[str, np.ndarray],
    atol: float,
    input_name: str = "input",
) -> list[Check]:
    """Run each input through ONNX Runtime and ``reference`` (numpy in, numpy out) and compare."""
    checks = []
    for name, x in inputs.items():
        shape = list(x.shape)
        try:
            ref = np.asarray(reference(x), dtype=np.float64)
        except Exception as exc:  # the PyTorch model itself rejects this input
            checks.append(Check(name, shape, None, None, atol, False, f"PyTorch: {first_line(exc)}"))
            continue
        try:
            out = np.asarray(session.run(None, {input_name: x})[0], dtype=np.float64)
        except Exception as exc:
            checks.append(Check(name, shape, None, None, atol, False, f"ONNX Runtime: {first_line(exc)}"))
            continue
        if out.shape != ref.shape:
            checks.append(
                Check(name, shape, None, None, atol, False, f"output shape {list(out.shape)} != PyTorch {list(ref.shape)}")
            )
            continue
        diff = float(np.max(np.abs(out - ref))) if out.size else 0.0
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        tol = atol * max(1.0, scale)
        ok = bool(np.isfinite(diff) and diff <= tol)
        checks.append(Check(name, shape, diff, scale, tol, ok))
    return checks


def summarise(checks: Sequence[Check]) -> dict[str, Any]:
    """The headline numbers of a list of checks."""
    diffs = [c.max_abs_diff for c in checks if c.max_abs_diff is not None]
    return {
        "passed": all(c.passed for c in checks),
        "max_abs_diff": max(diffs) if diffs else None,
        "checks": [c.to_dict() for c in checks],
    }


def describe_failure(checks: Sequence[Check]) -> str:
    """One line naming the worst failed check."""
    failed = [c for c in checks if not c.passed]
    if not failed:
        return "all checks passed"
    worst = failed[0]
    for c in failed:
        if c.error is None and (worst.error is not None or (c.max_abs_diff or 0) > (worst.max_abs_diff or 0)):
            worst = c
    if worst.error:
        return f"{worst.name} {worst.shape}: {worst.error}"
    return f"{worst.name}: max abs diff {worst.max_abs_diff:.3g} > {worst.tolerance:.3g}"


def write_report(path: Path, report: dict[str, Any]) -> None:
    """The JSON report beside the exported file."""
    from zoo.io import write_json

    write_json(path, report)

"""Evaluating a checkpoint on an image folder: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import CheckpointError, DataError
from zoo.registry import model_info
from zoo.runtime.skips import SkipReport, as_report
from zoo.text import table


@dataclass
class EvalResult:
    """Metrics of one evaluation."""

    accuracy: float
    loss: float
    num_images: int
    class_names: list[str]
    per_class_accuracy: dict[str, float | None]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    skipped: SkipReport = field(default_factory=SkipReport)  # reason -> count, with the files' names
    data: str | None = None
    tta: tuple[str, ...] = ()  # test-time augmentations averaged (zoo.runtime.tta)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view (``zoo evaluate --json``)."""
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "num_images": self.num_images,
            "class_names": self.class_names,
            "per_class_accuracy": self.per_class_accuracy,
            "confusion_matrix": self.confusion,
            "skipped": as_report(self.skipped).to_dict(),
            "data": self.data,
            "tta": list(self.tta),
        }


def evaluate(
    checkpoint: Any,
    data: Any,
    *,
    split: str = "auto",
    batch_size: int | None = None,
    memory_mb: float | None = None,
    device: str = "auto",
    cache_mb: float = 1024,
    workers: int | None = None,
    tta: Any = None,
) -> EvalResult:
    """Evaluate a checkpoint (a directory, or a model loaded by :func:`zoo.load`) on ``data``.

    ``data`` is an image folder (``DIR/val`` when it exists, else ``DIR``;
    ``split`` picks ``train``, ``val`` or ``all`` explicitly), ``scheme:name``,
    or a pair of tensors ``(inputs, labels)`` already prepared for the model.
    The folder's class names must be among the checkpoint's. Without
    ``batch_size``, batches hold as many images as fit ``memory_mb``
    (:func:`zoo.data.budget.budget_batch_size`). ``tta`` (``"flip"``, ``"crops"``, ``"flip,crops"``)
    averages the class probabilities of augmented views (:mod:`zoo.runtime.tta`).
    """
    import torch

    from zoo.checkpoint import load_checkpoint
    from zoo.data.batches import make_batches
    from zoo.data.dataset import ImageSplit, cache_bytes
    from zoo.data.decode import OtherSize
    from zoo.data.decode import cache_size, decode_stored
    from zoo.data.folder import eval_files
    from zoo.data.transforms import Normalize
    from zoo.devices import select_device
    from zoo.runtime.tta import parse_tta
    from zoo.train.metrics import confusion_matrix, per_class_accuracy

    modes = parse_tta(tta)

    if isinstance(checkpoint, (str, os.PathLike)):
        model, config = load_checkpoint(checkpoint)
    else:
        info = model_info(checkpoint)
        model, config = checkpoint, info.config if info else None
        if config is None:
            raise CheckpointError("evaluate() needs a checkpoint path or a model loaded with zoo.load()")
    class_names = list(config["class_names"])
    num_classes = int(config["num_classes"])
    input_size = tuple(int(v) for v in config["input_size"])
    skipped = SkipReport()
    where = None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        source: Any = (data[0], data[1].long())
    else:
        folder, names, files, scanned = eval_files(data, split)
        skipped.update(scanned)
        where = str(folder)
        unknown = [n for n in names if n not in class_names]
        if unknown:
            raise CheckpointError(
                f"the data has classes the checkpoint does not know: {', '.join(unknown)}"
                f" (it was trained on {num_classes} classes: {', '.join(class_names[:10])}"
                f"{', ...' if num_classes > 10 else ''})"
            )
        # Folder labels -> the checkpoint's class indices.
        remap = [class_names.index(n) for n in names]
        labels = torch.tensor([remap[i] for i in files.labels], dtype=torch.long)
        hw = tuple(input_size[1:])
        stored = cache_size(files.paths, input_size[0], hw)
        fits = cache_bytes(len(files), input_size) <= cache_mb * 2**20
        if cache_bytes(len(files), (input_size[0], *stored)) <= cache_mb * 2**20:
            try:
                images, kept, bad, got = decode_stored(files.paths, input_size[0], hw, stored=stored, fall_back=fits)
                skipped.update(bad)
                source = ImageSplit([files.paths[i] for i in kept], labels[kept], images, hw if got != hw else None)
            except OtherSize:  # images of several sizes that do not fit at the input size: stream them
                source = ImageSplit(list(files.paths), labels)
        else:
            source = ImageSplit(list(files.paths), labels)
        if len(source) == 0:
            raise DataError(f"none of the images under {where!r} could be read: {skipped.describe()}")
    dev = select_device(device)
    model = model.to(dev).eval()
    if batch_size is None:
        from zoo.data.budget import budget_batch_size

        batch_size = budget_batch_size(model, input_size, memory_mb)
    batches = make_batches(source, batch_size, train=False, input_size=input_size, workers=workers)
    normalize = Normalize(config.get("mean"), config.get("std"))
    preds, targets = [], []
    loss_sum, n = 0.0, 0
    with torch.inference_mode():
        for x, y in batches:
            out = _forward(model, normalize(x.to(dev), train=False), modes)
            if out.shape[1] != num_classes:
                raise CheckpointError(f"the model gives {out.shape[1]} outputs but its config says {num_classes} classes")
            y = y.to(dev)
            loss_sum += float(torch.nn.functional.cross_entropy(out, y, reduction="sum"))
            n += y.shape[0]
            preds.append(out.argmax(1).cpu())
            targets.append(y.cpu())
    skipped.update(getattr(batches, "skipped", None))
    p, t = torch.cat(preds), torch.cat(targets)
    cm = confusion_matrix(p, t, num_classes)
    per_class = dict(zip(class_names, per_class_accuracy(cm)))
    return EvalResult(
        accuracy=float((p == t).float().mean()), loss=loss_sum / max(1, n), num_images=n, class_names=class_names,
        per_class_accuracy=per_class, confusion=cm.tolist(), skipped=skipped, data=where, tta=modes,
    )


def _forward(model: Any, x: Any, modes: tuple[str, ...]):
    """Logits; with test-time augmentation the log of the averaged probabilities (cross-entropy on them is
    the averaged prediction's loss)."""
    if not modes:
        return model(x).float()
    import torch

    from zoo.runtime.tta import average_probabilities

    def probs(view):
        return torch.softmax(model(torch.from_numpy(view).to(x.device)).float(), 1).cpu().numpy()

    mean = average_probabilities(probs, x.float().cpu().numpy(), modes)
    return torch.from_numpy(mean).float().clamp_min(1e-12).log().to(x.device)


def format_report(result: EvalResult, max_classes: int = 30) -> str:
    """A text report: accuracy, per-class accuracy and the confusion matrix (small class counts)."""
    tta = f", test-time augmentation {','.join(result.tta)}" if result.tta else ""
    lines = [f"accuracy  {100 * result.accuracy:.2f}%  ({result.num_images} images, loss {result.loss:.4f}{tta})"]
    if result.skipped:
        lines.append(as_report(result.skipped).describe())
    lines.append("per class:")
    rows = [[name, "-" if acc is None else f"{100 * acc:.1f}%"] for name, acc in result.per_class_accuracy.items()]
    lines.append(table(rows, ["CLASS", "ACCURACY"], rule=False, indent="  "))
    if len(result.class_names) <= max_classes:
        lines.append("confusion matrix (rows: true, columns: predicted):")
        rows = [[name, *(str(v) for v in row)] for name, row in zip(result.class_names, result.confusion)]
        lines.append(table(rows, ["", *result.class_names], rule=False, indent="  "))
    return "\n".join(lines)


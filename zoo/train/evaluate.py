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
    # Multi-label models: accuracy is the exact-match rate, per_class_accuracy the per-label one.
    multi_label: bool = False
    threshold: float | None = None
    mean_ap: float | None = None  # macro mAP over the classes present
    per_class_ap: dict[str, float | None] = field(default_factory=dict)
    f1: float | None = None  # macro F1 at the threshold
    per_class_f1: dict[str, float | None] = field(default_factory=dict)
    tta: tuple[str, ...] = ()  # test-time augmentations averaged (zoo.runtime.tta)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view (``zoo evaluate --json``)."""
        if self.multi_label:
            return {"multi_label": True, "mean_ap": self.mean_ap, "f1": self.f1, "threshold": self.threshold,
                    "exact_match": self.accuracy, "accuracy": self.accuracy, "loss": self.loss, "num_images": self.num_images,
                    "class_names": self.class_names, "per_class_ap": self.per_class_ap,
                    "per_class_f1": self.per_class_f1, "per_class_accuracy": self.per_class_accuracy,
                    "skipped": as_report(self.skipped).to_dict(), "data": self.data, "tta": list(self.tta)}
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
    amp: bool | None = None,
    columns: Any = None,
    threshold: float | None = None,
    tta: Any = None,
) -> EvalResult:
    """Evaluate a checkpoint (a directory, or a model loaded by :func:`zoo.load`) on ``data``.

    ``data`` is an image folder (``DIR/val`` when it exists, else ``DIR``;
    ``split`` picks ``train``, ``val`` or ``all`` explicitly), a .csv/.tsv table
    (its validation rows when it marks some; ``columns`` names its columns), ``scheme:name``,
    or a pair of tensors ``(inputs, labels)`` already prepared for the model.
    The folder's class names must be among the checkpoint's. Without
    ``batch_size``, batches hold as many images as fit ``memory_mb``
    (:func:`zoo.data.budget.budget_batch_size`). ``amp`` follows
    :func:`zoo.devices.autocast_choice` (None: bf16 on CPUs with bfloat16 units). A multi-label model (config.json's
    ``multi_label``) is scored by average precision and by F1 at ``threshold`` [the config's, else 0.5].
    ``tta`` (``"flip"``, ``"crops"``, ``"flip,crops"``) averages the probabilities of augmented
    views (:mod:`zoo.runtime.tta`).
    """
    import torch

    from zoo.checkpoint import load_checkpoint
    from zoo.data.batches import make_batches
    from zoo.data.dataset import ImageSplit, cache_bytes
    from zoo.data.decode import OtherSize
    from zoo.data.decode import PassEstimate, cache_size, decode_stored
    from zoo.data.folder import eval_files
    from zoo.data.transforms import Normalize
    from zoo.devices import autocast, autocast_choice, select_device
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
    multi = bool(config.get("multi_label"))
    if multi:
        from dataclasses import replace

        from zoo.data.table import TableColumns

        columns = replace(columns or TableColumns(), multi_label=True)
    skipped = SkipReport()
    where = None
    estimate = None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        source: Any = (data[0], data[1].float() if multi else data[1].long())
    else:
        folder, names, files, scanned = eval_files(data, split, columns)
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
        labels = _labels(files.labels, remap, num_classes, multi)
        hw = tuple(input_size[1:])
        estimate = PassEstimate("evaluating", len(files))
        stored = cache_size(files.paths, input_size[0], hw)
        fits = cache_bytes(len(files), input_size) <= cache_mb * 2**20
        if cache_bytes(len(files), (input_size[0], *stored)) <= cache_mb * 2**20:
            try:
                images, kept, bad, got = decode_stored(files.paths, input_size[0], hw, stored=stored, fall_back=fits,
                                                        progress=estimate)
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
    mixed = autocast_choice(dev, amp)
    with torch.inference_mode(), autocast(dev, *mixed):
        for x, y in batches:
            out = _forward(model, normalize(x.to(dev), train=False), modes, multi)
            if out.shape[1] != num_classes:
                raise CheckpointError(f"the model gives {out.shape[1]} outputs but its config says {num_classes} classes")
            y = y.to(dev)
            if multi:
                loss_sum += float(torch.nn.functional.binary_cross_entropy_with_logits(out, y.float(), reduction="sum"))
                preds.append(torch.sigmoid(out).cpu())
            else:
                loss_sum += float(torch.nn.functional.cross_entropy(out, y, reduction="sum"))
                preds.append(out.argmax(1).cpu())
            n += y.shape[0]
            if estimate is not None and not source.cached:
                estimate(n)
            targets.append(y.cpu())
    skipped.update(getattr(batches, "skipped", None))
    p, t = torch.cat(preds), torch.cat(targets)
    if multi:
        cut = float(threshold if threshold is not None else config.get("threshold", 0.5))
        result = multi_label_result(p, t, class_names, cut, loss_sum / max(1, n * num_classes), skipped, where)
        result.tta = modes
        return result
    cm = confusion_matrix(p, t, num_classes)
    per_class = dict(zip(class_names, per_class_accuracy(cm)))
    return EvalResult(
        accuracy=float((p == t).float().mean()), loss=loss_sum / max(1, n), num_images=n, class_names=class_names,
        per_class_accuracy=per_class, confusion=cm.tolist(), skipped=skipped, data=where, tta=modes,
    )


def _labels(labels: list[Any], remap: list[int], num_classes: int, multi: bool):
    """The data's labels as the checkpoint's class indices: a long vector, or multi-hot rows."""
    import torch

    from zoo.data.table import label_tensor

    if not multi:
        return torch.tensor([remap[i] for i in labels], dtype=torch.long)
    rows = [tuple(remap[j] for j in y) if isinstance(y, tuple) else (remap[y],) for y in labels]
    return label_tensor(rows, num_classes, True)


def multi_label_result(probs: Any, targets: Any, class_names: list[str], threshold: float, loss: float,
                       skipped: SkipReport, data: str | None) -> EvalResult:
    """The metrics of sigmoid outputs ``probs`` against multi-hot ``targets``: AP, F1, exact match."""
    from zoo.train.metrics import average_precision, f1_scores, mean_of

    decided, true = probs >= threshold, targets > 0.5
    ap, f1 = average_precision(probs, targets), f1_scores(probs, targets, threshold)
    per_label = (decided == true).float().mean(0).tolist()
    return EvalResult(
        accuracy=float((decided == true).all(1).float().mean()), loss=loss, num_images=int(probs.shape[0]),
        class_names=class_names, per_class_accuracy=dict(zip(class_names, per_label)), confusion=[],
        skipped=skipped, data=data, multi_label=True, threshold=threshold, mean_ap=mean_of(ap),
        per_class_ap=dict(zip(class_names, ap)), f1=mean_of(f1), per_class_f1=dict(zip(class_names, f1)),
    )


def _format_multi_label(result: EvalResult) -> str:
    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    lines = [f"mAP {num(result.mean_ap)}  F1 {num(result.f1)} at threshold {result.threshold:g}"
             f"  exact match {100 * result.accuracy:.2f}%  ({result.num_images} images, loss {result.loss:.4f})"]
    if result.skipped:
        lines.append(as_report(result.skipped).describe())
    rows = [[name, num(result.per_class_ap[name]), num(result.per_class_f1[name])] for name in result.class_names]
    lines.append(table(rows, ["CLASS", "AP", "F1"], rule=False, indent="  "))
    return "\n".join(lines)


def _forward(model: Any, x: Any, modes: tuple[str, ...], multi: bool = False):
    """Logits; with test-time augmentation the logits of the averaged probabilities (softmax, or one
    sigmoid per label for a multi-label model), so that the loss is the averaged prediction's."""
    if not modes:
        return model(x).float()
    import torch

    from zoo.runtime.tta import average_probabilities

    squash = torch.sigmoid if multi else (lambda t: torch.softmax(t, 1))

    def probs(view):
        return squash(model(torch.from_numpy(view).to(x.device)).float()).cpu().numpy()

    mean = torch.from_numpy(average_probabilities(probs, x.float().cpu().numpy(), modes)).float()
    mean = mean.clamp(1e-12, 1 - 1e-7) if multi else mean.clamp_min(1e-12)
    return (torch.logit(mean) if multi else mean.log()).to(x.device)


def format_report(result: EvalResult, max_classes: int = 30) -> str:
    """A text report: accuracy, per-class accuracy and the confusion matrix (small class counts)."""
    if result.multi_label:
        return _format_multi_label(result)
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


"""Finding images on disk: class folders, train/val layouts, seeded splits, named sources."""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from zoo.data.table import TableColumns, is_table, table_eval_files, table_layout
from zoo.errors import DataError
from zoo.runtime.preprocess import IMAGE_SUFFIXES, walk_images
from zoo.runtime.skips import SkipReport

# The runtime's one list: anything else in a class folder is skipped and recorded.
IMAGE_EXTENSIONS = IMAGE_SUFFIXES


@dataclass
class FileSplit:
    """Image paths and integer labels of one split (labels index ``class_names``)."""

    paths: list[Path]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class FolderLayout:
    """What was found under a data directory."""

    root: Path
    class_names: list[str]
    train: FileSplit
    val: FileSplit | None
    skipped: SkipReport = field(default_factory=SkipReport)  # reason -> count, with names
    presplit: bool = False  # True when DIR/train and DIR/val were used (or a table's validation column)
    multi_label: bool = False  # a table with several labels per row: labels are tuples of class indices


def resolve_data_path(data: str | os.PathLike) -> Path:
    """A directory path, or ``scheme:name`` resolved through the registered dataset sources."""
    text = str(data)
    path = Path(text)
    scheme, sep, name = text.partition(":")
    # 'C:\\x' on Windows and existing paths with a colon stay paths.
    if sep and not path.exists() and len(scheme) > 1 and "/" not in scheme and "\\" not in scheme:
        from zoo._lazy import resolve
        from zoo.plugins import dataset_sources

        source = dataset_sources().get(scheme)
        if source.names and name not in source.names:
            raise DataError(f"dataset {text!r} is unknown; {scheme}: knows {', '.join(source.names)}")
        path = Path(resolve(source.resolve)(name))
    if not path.exists():
        raise DataError(f"data directory {text!r} does not exist")
    if not path.is_dir() and not is_table(path):
        raise DataError(f"--data must be a directory of class folders or a .csv/.tsv table, got the file {text!r}")
    return path


def scan_class_folders(root: Path, class_names: list[str] | None = None) -> tuple[list[str], FileSplit, SkipReport]:
    """Every image under ``root/<class>/`` (recursively, see ``zoo.runtime.preprocess.walk_images``);
    other files are recorded as skipped.

    ``class_names`` fixes the class order (for a val folder that must match
    the train folder); otherwise classes are the sorted sub-folder names.
    """
    try:
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot read data directory {str(root)!r}: {exc.strerror or exc}") from None
    if class_names is None:
        class_names = found
    else:
        extra = sorted(set(found) - set(class_names))
        if extra:
            raise DataError(
                f"{root} has classes that the training data lacks: {', '.join(extra)}; use the same class folders"
            )
    index = {name: i for i, name in enumerate(class_names)}
    paths: list[Path] = []
    labels: list[int] = []
    skipped = SkipReport()
    for name in found:
        images = walk_images(root / name, skipped)
        paths.extend(images)
        labels.extend([index[name]] * len(images))
    return class_names, FileSplit(paths, labels), skipped


def _check_classes(root: Path, class_names: list[str], split: FileSplit, need_two: bool = True) -> None:
    if not split.paths:
        raise DataError(
            f"no images found under {str(root)!r}; expected one sub-folder per class holding .jpg/.png files"
        )
    present = sorted(set(split.labels))
    if need_two and len(present) < 2:
        only = class_names[present[0]] if present else "none"
        raise DataError(
            f"{str(root)!r} holds a single class ({only}); a classifier needs at least two class folders"
        )


def stratified_split(files: FileSplit, fraction: float, seed: int) -> tuple[FileSplit, FileSplit]:
    """Hold back ``fraction`` of each class (at least one image where a class has two or more)."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--val-split must lie between 0 and 1, got {fraction}")
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(files.labels):
        by_class.setdefault(label, []).append(i)
    train_idx: list[int] = []
    val_idx: list[int] = []
    for label in sorted(by_class):
        idx = by_class[label][:]
        rng.shuffle(idx)
        n_val = int(round(len(idx) * fraction))
        if n_val == 0 and len(idx) >= 2:
            n_val = 1
        val_idx.extend(idx[:n_val])
        train_idx.extend(idx[n_val:])
    train_idx.sort()
    val_idx.sort()

    def take(idx: list[int]) -> FileSplit:
        return FileSplit([files.paths[i] for i in idx], [files.labels[i] for i in idx])

    return take(train_idx), take(val_idx)


def find_layout(data: str | os.PathLike, *, val_split: float | None = 0.1, seed: int = 0,
                columns: TableColumns | None = None) -> FolderLayout:
    """Find the class folders of ``data``: ``train/`` + ``val/`` if present, else one folder split by ``val_split``.

    A .csv/.tsv file is read as a table (:mod:`zoo.data.table`, its columns named by ``columns``).
    """
    root = resolve_data_path(data)
    if is_table(root):
        return table_layout(root, columns, val_split, seed)
    if columns is not None and columns.multi_label:
        raise DataError("--multi-label reads several labels per row of a .csv/.tsv table;"
                        " class folders give one label per image")
    train_dir, val_dir = root / "train", root / "val"
    if train_dir.is_dir():
        class_names, train, skipped = scan_class_folders(train_dir)
        _check_classes(train_dir, class_names, train)
        val = None
        if val_dir.is_dir():
            _, val, skipped_val = scan_class_folders(val_dir, class_names)
            skipped.update(skipped_val)
            if not val.paths:
                val = None
        return FolderLayout(root, class_names, train, val, skipped, presplit=True)
    class_names, files, skipped = scan_class_folders(root)
    _check_classes(root, class_names, files)
    if not val_split:
        return FolderLayout(root, class_names, files, None, skipped)
    train, val = stratified_split(files, val_split, seed)
    _check_split_leaves_training(class_names, files, train, val_split)
    return FolderLayout(root, class_names, train, val if val.paths else None, skipped)


def _check_split_leaves_training(class_names: list[str], files: FileSplit, train: FileSplit, fraction: float) -> None:
    """A --val-split that holds back every image of a class leaves nothing to train it on: say so, with numbers."""
    kept = set(train.labels)
    empty = [i for i in range(len(class_names)) if i not in kept]
    if not empty:
        return
    sizes = [files.labels.count(i) for i in range(len(class_names))]
    smallest = min(sizes)
    # round(n * f) <= n - 1 keeps one image of the smallest class to train on: f < (n - 0.5) / n.
    limit = math.floor((smallest - 0.5) / smallest * 1000 - 1e-9) / 1000
    first = class_names[empty[0]]
    more = f" (and {len(empty) - 1} more class{'es' if len(empty) > 2 else ''})" if len(empty) > 1 else ""
    raise DataError(
        f"--val-split {fraction:g} leaves no training images of class {first!r}{more}: it holds back all"
        f" {sizes[empty[0]]} of its images for validation ({sum(sizes)} images in {len(class_names)} classes);"
        f" use a --val-split of at most {limit:g}, or a train/ and val/ folder"
    )


def eval_folder(data: str | os.PathLike, split: str = "auto") -> Path:
    """The folder to score on: ``DIR/val`` (``split='auto'`` when it exists), ``DIR/train``, or ``DIR`` itself."""
    root = resolve_data_path(data)
    if split == "auto":
        return root / "val" if (root / "val").is_dir() else root
    if split == "all":
        return root
    if split not in ("train", "val"):
        raise DataError(f"unknown split {split!r}; use auto, train, val or all")
    target = root / split
    if not target.is_dir():
        raise DataError(f"{str(root)!r} has no {split}/ folder")
    return target


def eval_files(data: str | os.PathLike, split: str = "auto",
               columns: TableColumns | None = None) -> tuple[Path, list[str], FileSplit, SkipReport]:
    """The class folders of :func:`eval_folder`, scanned; or the rows of a table (:func:`table_eval_files`)."""
    if is_table(resolve_data_path(data)):
        return table_eval_files(resolve_data_path(data), split, columns)
    target = eval_folder(data, split)
    class_names, files, skipped = scan_class_folders(target)
    _check_classes(target, class_names, files, need_two=False)
    return target, class_names, files, skipped

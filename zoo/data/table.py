"""Labels from a table: a CSV or TSV file of image paths and labels, read into the sample list a class folder gives.

The header names the columns: the image path (relative to the table's folder,
or absolute), the label, and optionally a column that marks the validation
rows (fastai's ``is_valid``); :class:`TableColumns` names other columns.
With ``multi_label`` a label cell holds several labels split by
``label_delim`` (a space by default).

Rows are ordered by label, then path, as class folders are listed, so a table
of the images in class folders gives the same samples, the same seeded split
and the same training run. Rows naming a file that does not exist, rows with
an empty label and repeated paths are skipped and recorded in the
:class:`zoo.runtime.skips.SkipReport`, like unreadable images.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from zoo.errors import DataError
from zoo.runtime.preprocess import is_image_name
from zoo.runtime.skips import SkipReport

DELIMITERS = {".csv": ",", ".tsv": "\t"}
PATH_COLUMNS = ("path", "file", "filename", "fname", "image", "image_path", "img")
LABEL_COLUMNS = ("label", "labels", "tags", "class", "category", "target")
VALID_COLUMN = "is_valid"
MISSING_FILE, EMPTY_LABEL, DUPLICATE_ROW = "missing file", "empty label", "duplicate row"
_TRUE, _FALSE = {"1", "true", "yes", "y", "t", "val", "valid"}, {"0", "false", "no", "n", "f", "", "train"}


@dataclass(frozen=True)
class TableColumns:
    """Which columns of a table hold what, and how a label cell is read."""

    path: str | None = None  # None: the first of PATH_COLUMNS the header has
    label: str | None = None  # None: the first of LABEL_COLUMNS
    valid: str | None = None  # None: ``is_valid`` when the header has it
    multi_label: bool = False
    label_delim: str = " "


def table_columns(cfg: Any) -> TableColumns:
    """The :class:`TableColumns` of a training config (or any object with ``path_col``, ``label_col``, ...)."""
    return TableColumns(path=getattr(cfg, "path_col", None), label=getattr(cfg, "label_col", None),
                        valid=getattr(cfg, "valid_col", None), multi_label=bool(getattr(cfg, "multi_label", False)),
                        label_delim=getattr(cfg, "label_delim", " ") or " ")


def is_table(data: str | os.PathLike) -> bool:
    """Whether ``data`` names a table file (.csv or .tsv) rather than a folder."""
    return Path(str(data)).suffix.lower() in DELIMITERS and not Path(str(data)).is_dir()


@dataclass
class Table:
    """A table's rows that name readable files, in folder order."""

    source: Path
    class_names: list[str]
    paths: list[Path]
    labels: list[Any]  # class indices, or sorted tuples of them when multi-label
    valid: list[bool] | None  # None: the table has no validation column
    multi_label: bool = False
    skipped: SkipReport = field(default_factory=SkipReport)


def _pick(header: Sequence[str], wanted: str | None, defaults: Sequence[str], what: str, option: str,
          name: str, required: bool = True) -> str | None:
    have = ", ".join(header) or "none"
    if wanted is not None:
        if wanted not in header:
            raise DataError(f"{name} has no column {wanted!r} (its columns: {have}); name the {what} column with {option}")
        return wanted
    lowered = {h.lower(): h for h in header}
    for candidate in defaults:
        if candidate in lowered:
            return lowered[candidate]
    if required:
        raise DataError(f"{name} has no {what} column (its columns: {have}); name it with {option}")
    return None


def _flag(value: str, row: int, column: str, name: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataError(f"{name} row {row}: {column} is {value!r}; use true/false or 1/0")


def _rows(source: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        with open(source, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter=DELIMITERS[source.suffix.lower()])
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read the table {str(source)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if not header:
        raise DataError(f"{str(source)!r} is empty; a table needs a header row naming its columns")
    return header, rows


def read_table(data: str | os.PathLike, columns: TableColumns | None = None) -> Table:
    """Read the table ``data``: its readable rows (ordered as class folders are) and what was skipped."""
    columns = columns or TableColumns()
    source = Path(str(data))
    if not source.is_file():
        raise DataError(f"the table {str(data)!r} does not exist")
    name = source.name
    header, rows = _rows(source)
    path_col = _pick(header, columns.path, PATH_COLUMNS, "image path", "--path-col", name)
    label_col = _pick(header, columns.label, LABEL_COLUMNS, "label", "--label-col", name)
    valid_col = _pick(header, columns.valid, (VALID_COLUMN,), "validation", "--valid-col", name, required=False)
    delim = columns.label_delim
    skipped = SkipReport()
    seen: set[Path] = set()
    kept: list[tuple[Path, tuple[str, ...], bool]] = []
    for line, row in rows:
        cell = (row.get(path_col) or "").strip()
        if not cell and not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        where = f"{name} row {line}: {cell or '(no path)'}"
        text = (row.get(label_col) or "").strip()
        if not columns.multi_label and delim in text:
            raise DataError(
                f"{name} row {line}: the label {text!r} holds the delimiter {delim!r}; for several labels per"
                " image pass --multi-label (--label-delim sets the delimiter), or choose another --label-delim"
            )
        tags = tuple(t for t in (s.strip() for s in text.split(delim)) if t) if columns.multi_label else (text,)
        path = Path(cell) if Path(cell).is_absolute() else source.parent / cell
        valid = _flag(row.get(valid_col) or "", line, valid_col, name) if valid_col else False
        if not tags or not tags[0]:
            skipped.add(where, EMPTY_LABEL)
        elif not cell or not path.is_file():
            skipped.add(where, MISSING_FILE)
        elif not is_image_name(path.name):
            skipped.add(where, "not an image")
        elif path in seen:
            skipped.add(where, DUPLICATE_ROW)
        else:
            seen.add(path)
            kept.append((path, tags, valid))
    class_names = sorted({t for _, tags, _ in kept for t in tags})
    index = {c: i for i, c in enumerate(class_names)}
    coded = [(tuple(sorted(index[t] for t in set(tags))), path, valid) for path, tags, valid in kept]
    coded.sort(key=lambda item: (item[0], item[1].parts))
    labels = [tags if columns.multi_label else tags[0] for tags, _, _ in coded]
    return Table(source, class_names, [p for _, p, _ in coded], labels,
                 [v for _, _, v in coded] if valid_col else None, columns.multi_label, skipped)


def _take(table: Table, keep: Sequence[bool]):
    from zoo.data.folder import FileSplit

    return FileSplit([p for p, k in zip(table.paths, keep) if k], [y for y, k in zip(table.labels, keep) if k])


def _check(table: Table, files: Any, need_two: bool = True) -> None:
    if not files.paths:
        shown = f": {table.skipped.describe()}" if table.skipped else ""
        raise DataError(f"{str(table.source)!r} names no readable images{shown}")
    if need_two and not table.multi_label and len(set(files.labels)) < 2:
        raise DataError(f"{str(table.source)!r} holds a single class; a classifier needs at least two labels")


def table_layout(data: str | os.PathLike, columns: TableColumns | None, val_split: float | None, seed: int):
    """The :class:`zoo.data.folder.FolderLayout` of a table: its validation rows, else a seeded split."""
    from zoo.data.folder import FolderLayout, stratified_split

    table = read_table(data, columns)
    every = _take(table, [True] * len(table.paths))
    _check(table, every)
    if table.valid is not None:
        train = _take(table, [not v for v in table.valid])
        val = _take(table, table.valid)
        _check(table, train)
        return FolderLayout(table.source, table.class_names, train, val if val.paths else None, table.skipped,
                            presplit=True, multi_label=table.multi_label)
    if not val_split:
        return FolderLayout(table.source, table.class_names, every, None, table.skipped, multi_label=table.multi_label)
    train, val = stratified_split(every, val_split, seed)
    return FolderLayout(table.source, table.class_names, train, val if val.paths else None, table.skipped,
                        multi_label=table.multi_label)


def table_eval_files(data: str | os.PathLike, split: str = "auto", columns: TableColumns | None = None):
    """``(source, class_names, files, skipped)`` of the rows to score: the validation rows (``auto`` when the
    table marks some), the others (``train``), or every row (``all``)."""
    table = read_table(data, columns)
    if split not in ("auto", "train", "val", "all"):
        raise DataError(f"unknown split {split!r}; use auto, train, val or all")
    if split in ("train", "val") and table.valid is None:
        raise DataError(f"{str(table.source)!r} has no validation column to tell train rows from val rows;"
                        " name it with --valid-col, or use --split all")
    if split == "all" or table.valid is None or (split == "auto" and not any(table.valid)):
        keep = [True] * len(table.paths)
    else:
        keep = [v != (split == "train") for v in table.valid]
    files = _take(table, keep)
    _check(table, files, need_two=False)
    return table.source, table.class_names, files, table.skipped


def label_tensor(labels: Sequence[Any], num_classes: int, multi_label: bool):
    """Labels as the loop takes them: class indices (long, N), or multi-hot rows (float, N x classes)."""
    import torch

    if not multi_label:
        return torch.tensor([int(v) for v in labels], dtype=torch.long)
    out = torch.zeros(len(labels), num_classes, dtype=torch.float32)
    for i, tags in enumerate(labels):
        out[i, list(tags)] = 1.0
    return out

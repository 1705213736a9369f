"""Small text helpers shared by every layer (torch-free, the floor with errors.py)."""

from __future__ import annotations

import os
from typing import Sequence

# Suffixes of files zoo reads as models: an argument ending in one of them names a file.
MODEL_FILE_SUFFIXES = (".onnx", ".safetensors", ".pt", ".pth")


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first non-empty line of an exception (or text), shortened; the type name when empty."""
    text = exc if isinstance(exc, str) else str(exc)
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()[:limit]
    return "unknown error" if isinstance(exc, str) else type(exc).__name__


def detail_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first line that says what is wrong, skipping a header that ends in ':'.

    PyTorch's ``load_state_dict`` starts with "Error(s) in loading state_dict
    for X:" and names the keys on the next line.
    """
    text = exc if isinstance(exc, str) else str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if not line.endswith(":"):
            return line[:limit]
    return first_line(exc, limit)


def describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception, as one-line reports show it."""
    text = first_line(exc)
    name = type(exc).__name__
    return name if text == name else f"{name}: {text}"


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], *, rule: bool = True, indent: str = "") -> str:
    """A plain-text table: columns padded to their widest cell, numeric columns right-aligned.

    ``rule`` draws a line of dashes under the headers (the CLI's listings).
    """
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return (indent + "  ".join(out)).rstrip()

    lines = [line(headers)]
    if rule:
        lines.append(line(["-" * w for w in widths]))
    lines.extend(line(row) for row in rows)
    return "\n".join(lines)


def _is_number(cell: str) -> bool:
    text = cell.strip().replace(",", "").rstrip("%KMBx").lstrip("-")
    return text in ("", "-") or text.replace(".", "", 1).isdigit()


def looks_like_path(text: str | os.PathLike) -> bool:
    """Whether a command-line argument names a file or folder rather than a model.

    It does when it exists, contains a path separator, or ends in a model
    file suffix (.onnx, .safetensors, .pt, .pth). Registry names such as
    ``timm/resnet18`` contain a slash too: look those up first.
    """
    value = os.fspath(text)
    return (
        os.path.exists(value)
        or "/" in value
        or os.sep in value
        or value.lower().endswith(MODEL_FILE_SUFFIXES)
    )

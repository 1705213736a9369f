"""Confident mistakes: images a classifier labels with high probability although
their class is one it was never trained on (the book's airplane-or-bird model
shown cats), with a contact sheet to look at them.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.data.folder import eval_folder, resolve_data_path
from zoo.data.table import is_table, table_eval_files
from zoo.errors import DataError
from zoo.runtime.preprocess import walk_images


@dataclass
class ConfidentMistake:
    path: str
    folder: str  # the image's class folder (its true class)
    predicted: str
    probability: float


@dataclass
class ConfidentReport:
    threshold: float
    num_images: int
    mistakes: list[ConfidentMistake] = field(default_factory=list)
    unseen_classes: list[str] = field(default_factory=list)
    sheet: str | None = None
    skipped: int = 0
    missing_glyphs: str = ""  # caption characters no font here can draw (drawn as '?')

    @property
    def rate(self) -> float:
        return len(self.mistakes) / self.num_images if self.num_images else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "num_images": self.num_images,
            "num_confident_mistakes": len(self.mistakes),
            "rate": self.rate,
            "unseen_classes": self.unseen_classes,
            "sheet": self.sheet,
            "sheet_missing_glyphs": self.missing_glyphs,
            "skipped": self.skipped,
            "mistakes": [m.__dict__ for m in self.mistakes],
        }


def _image_files(root: Path) -> list[tuple[Path, str]]:
    # the one folder walk (suffixes, hidden files, link loops) of zoo.runtime.preprocess
    return sorted((p, p.parent.name if p.parent != root else "") for p in walk_images(root))


def confident_mistakes(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    threshold: float = 0.95,
    *,
    split: str = "auto",
    sheet: str | os.PathLike | None = None,
    batch_size: int = 256,
    max_sheet: int = 64,
    columns: Any = None,
) -> ConfidentReport:
    """Images under ``data`` whose predicted class differs from their folder, with probability >= ``threshold``.

    ``split`` chooses the part of ``data`` as ``zoo evaluate`` does: its
    ``val/`` when there is one (``auto``), ``train``, ``val`` or ``all``.

    Folders named like one of the model's classes count as that class; any
    other folder is a class the model never saw, so every confident answer
    there is a mistake. ``sheet`` writes a contact sheet PNG of the most
    confident ones (at most ``max_sheet``).
    """
    import torch

    from zoo.checkpoint import load_checkpoint
    from zoo.data.decode import preprocess_image

    if not 0.0 < threshold <= 1.0:
        raise DataError(f"--min-prob takes a probability in (0, 1], got {threshold}")
    model, config = load_checkpoint(checkpoint)
    if is_table(resolve_data_path(data)):  # a table's label column plays the folder's part
        root, table_names, rows, _ = table_eval_files(resolve_data_path(data), split, columns)
        files = [(p, table_names[y]) for p, y in zip(rows.paths, rows.labels)]
    else:
        root = eval_folder(data, split)
        files = _image_files(root)
    if not files:
        raise DataError(f"{str(root)!r} contains no images")
    names = list(config["class_names"])
    size, mean, std = config["input_size"], config["mean"], config["std"]
    report = ConfidentReport(threshold=threshold, num_images=0)
    report.unseen_classes = sorted({folder for _, folder in files if folder and folder not in names})
    with torch.inference_mode():
        for start in range(0, len(files), batch_size):
            chunk, tensors = [], []
            for path, folder in files[start : start + batch_size]:
                try:
                    tensors.append(preprocess_image(path, size, mean, std))
                    chunk.append((path, folder))
                except DataError:
                    report.skipped += 1
            if not tensors:
                continue
            probs = torch.softmax(model(torch.stack(tensors)).float(), dim=1)
            top, index = probs.max(dim=1)
            for (path, folder), p, i in zip(chunk, top.tolist(), index.tolist()):
                report.num_images += 1
                if p >= threshold and names[i] != folder:
                    report.mistakes.append(ConfidentMistake(str(path), folder, names[i], p))
    report.mistakes.sort(key=lambda m: -m.probability)
    if sheet is not None and report.mistakes:
        missing: set[str] = set()
        report.sheet = str(contact_sheet(report.mistakes[:max_sheet], sheet, missing=missing))
        report.missing_glyphs = "".join(sorted(missing))
    return report


def contact_sheet(mistakes: list[ConfidentMistake], path: str | os.PathLike, thumb: int = 96,
                  missing: set[str] | None = None) -> Path:
    """A grid of thumbnails, each captioned 'predicted p%' over its true folder.

    Captions are drawn in a font that has glyphs for them (:func:`caption_font`);
    characters no font here has are drawn as '?' and added to ``missing``.
    """
    from PIL import Image, ImageDraw

    from zoo.io import atomic_write

    cols = min(8, len(mistakes))
    rows = math.ceil(len(mistakes) / cols)
    caption = 26
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    missing = set() if missing is None else missing
    for k, m in enumerate(mistakes):
        x, y = (k % cols) * thumb, (k // cols) * (thumb + caption)
        with Image.open(m.path) as img:
            sheet.paste(img.convert("RGB").resize((thumb, thumb), Image.NEAREST), (x, y))
        for dy, text, colour in ((0, f"{m.predicted} {100 * m.probability:.0f}%", "black"),
                                 (12, f"({m.folder or '?'})", "gray")):
            font, lacking = caption_font(text)
            missing.update(lacking)
            shown = "".join("?" if ch in lacking else ch for ch in text)
            draw.text((x + 2, y + thumb + dy), shown, fill=colour, font=font)
    return atomic_write(Path(path), lambda tmp: sheet.save(tmp, format="PNG"))


FONT_ENV = "ZOO_FONT"  # a .ttf/.otf/.ttc to try first for the sheet's captions
CAPTION_SIZE = 10


def caption_font(text: str, size: int = CAPTION_SIZE) -> tuple[Any, set[str]]:
    """A Pillow font with glyphs for ``text``, and the characters of it that no font found here has."""
    from PIL import ImageFont

    path, lacking = font_file_for(text)
    return (ImageFont.load_default() if path is None else _pillow_font(path, size)), lacking


def font_file_for(text: str) -> tuple[str | None, set[str]]:
    """The font file to draw ``text`` with, and the characters it lacks.

    Tried in order: ``$ZOO_FONT``, matplotlib's DejaVu Sans (Latin, Greek,
    Cyrillic, ...), then the system's fonts (CJK needs one, e.g. Debian's
    fonts-noto-cjk); the first that covers the whole text wins, else the one
    that covers most. None: no font file at all (Pillow's built-in font).
    """
    wanted = {ch for ch in text if not ch.isspace()}
    best, best_lacking = None, wanted
    for font_path in _font_files():
        lacking = {ch for ch in wanted if ord(ch) not in _charmap(font_path)}
        if best is None or len(lacking) < len(best_lacking):
            best, best_lacking = font_path, lacking
        if not lacking:
            break
    return best, best_lacking


def _font_files() -> list[str]:
    from matplotlib import font_manager

    first = [os.environ[FONT_ENV]] if os.environ.get(FONT_ENV) else []
    bundled = font_manager.findfont("DejaVu Sans", fallback_to_default=True)
    return first + [bundled] + [f for f in _system_fonts() if f != bundled]


@functools.lru_cache(maxsize=1)
def _system_fonts() -> tuple[str, ...]:
    from matplotlib import font_manager

    return tuple(sorted(font_manager.findSystemFonts()))


@functools.lru_cache(maxsize=None)
def _charmap(font_path: str) -> frozenset[int]:
    """The code points a font file has glyphs for (empty when it cannot be read)."""
    try:
        from fontTools.ttLib import TTFont

        font = TTFont(font_path, fontNumber=0, lazy=True)
        return frozenset(font.getBestCmap() or {})
    except Exception:  # a broken or unsupported font file is one we cannot draw with
        return frozenset()


@functools.lru_cache(maxsize=None)
def _pillow_font(font_path: str, size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(font_path, size)

"""The contact sheet draws unicode class names with a font that has their glyphs, or says which it lacks."""

from __future__ import annotations

from fontTools.ttLib import TTFont
from PIL import Image

from zoo.train import confident
from zoo.train.confident import ConfidentMistake, contact_sheet, font_file_for


def _has_glyphs(path, text):
    cmap = TTFont(path, fontNumber=0, lazy=True).getBestCmap()
    return all(ord(ch) in cmap for ch in text if not ch.isspace())


def test_latin_greek_and_cyrillic_names_get_a_font_with_their_glyphs():
    for text in ("Düsseldorf 97%", "(ωμέγα)", "собака ü"):
        path, lacking = font_file_for(text)
        assert path is not None and not lacking and _has_glyphs(path, text), (text, path)


def test_a_cjk_name_is_drawn_with_a_cjk_font_or_reported(tmp_path, monkeypatch):
    image = tmp_path / "x.png"
    Image.new("RGB", (8, 8), "red").save(image)
    mistakes = [ConfidentMistake(str(image), "犬 ü", "猫", 0.99)]
    missing: set[str] = set()
    contact_sheet(mistakes, tmp_path / "sheet.png", missing=missing)
    path, lacking = font_file_for("犬 ü")
    # Never silent boxes: either the font drawn with has the glyphs, or they are named as missing.
    assert (not lacking and _has_glyphs(path, "犬 ü")) or {"犬"} <= missing
    assert "ü" not in missing  # DejaVu Sans has it, and so does any font that has 犬 here


def test_zoo_font_is_tried_first(monkeypatch):
    bundled, _ = font_file_for("a")
    monkeypatch.setenv(confident.FONT_ENV, bundled)
    assert confident._font_files()[0] == bundled


def test_no_font_at_all_reports_every_character(monkeypatch):
    monkeypatch.setattr(confident, "_font_files", lambda: [])
    font, lacking = confident.caption_font("犬a")
    assert lacking == {"犬", "a"} and font is not None

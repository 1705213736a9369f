"""Folders of photos: draft decoding, a cache bounded by --cache-mb, files that vanish, folders of non-images."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.data import load_image_data, make_batches
from zoo.data.decode import stream_decoded
from zoo.runtime.preprocess import ImageReadError, open_image, read_uint8


def photo(path, w: int, h: int, seed: int = 0) -> None:
    """A smooth gradient with grain, saved as a JPEG: photo-like for the DCT."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y) * 127 // max(1, w + h - 2)], -1)
    arr = np.clip(base + rng.normal(0, 6, size=(h, w, 1)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=90)


def folder(root, size: tuple[int, int], per_class: int = 3):
    for c, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            photo(root / name / f"{i}.jpg", *size, seed=10 * c + i)
    return root


def test_draft_gives_the_pixels_of_a_full_decode_and_resize(tmp_path):
    path = tmp_path / "p.jpg"
    photo(path, 320, 240)
    assert open_image(path, (32, 32)).size < (320, 240)  # libjpeg scaled while decoding
    drafted = read_uint8(path, 3, (32, 32)).astype(int)
    with Image.open(path) as im:
        full = np.asarray(im.convert("RGB").resize((32, 32), Image.BILINEAR)).astype(int)
    diff = np.abs(drafted - full)
    assert diff.mean() < 1.0 and diff.max() <= 6


def test_draft_honours_exif_orientation(tmp_path):
    path = tmp_path / "sideways.jpg"
    photo(tmp_path / "plain.jpg", 320, 160)
    with Image.open(tmp_path / "plain.jpg") as im:
        exif = im.getexif()
        exif[0x0112] = 6  # rotate 90 degrees: the upright image is 160 wide, 320 high
        im.save(path, exif=exif, quality=90)
    assert open_image(path, (64, 32)).size[::-1][0] >= 64  # upright height still at least the asked 64
    assert read_uint8(path, 3, (64, 32)).shape == (64, 32, 3)


def test_too_large_names_the_limit_and_below_twice_it_decodes_through_draft(tmp_path, monkeypatch):
    # A 100-megapixel photo is over Pillow's limit but under twice it: decoded, at a draft scale.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40_000)
    photo(tmp_path / "big.jpg", 256, 240)  # 61,440 pixels: between once and twice the limit
    photo(tmp_path / "bomb.jpg", 320, 260)  # 83,200 pixels: over twice
    assert read_uint8(tmp_path / "big.jpg", 3, (16, 16)).shape == (16, 16, 3)
    with pytest.raises(ImageReadError) as info:
        read_uint8(tmp_path / "bomb.jpg", 3, (16, 16))
    assert info.value.reason == "too large" and "80000 pixels" in str(info.value)


def test_cache_of_large_images_is_bounded_by_the_budget(tmp_path):
    root = folder(tmp_path / "photos", (400, 300))
    one = 3 * 32 * 32  # bytes per cached image at the input size
    fits = load_image_data(root, (3, 32, 32), val_split=0, cache_budget_mb=6 * one / 2**20)
    assert fits.cached and fits.train.images.numel() <= 6 * one
    over = load_image_data(root, (3, 32, 32), val_split=0, cache_budget_mb=5 * one / 2**20)
    assert not over.cached  # one image more than the budget holds: the folder streams
    assert sum(len(y) for _, y in make_batches(over.train, 4, train=False, input_size=(3, 32, 32))) == 6


@settings(max_examples=25, deadline=None)
@given(w=st.integers(4, 60), h=st.integers(4, 60), side=st.integers(8, 24))
def test_cached_images_are_never_larger_than_the_input_size(tmp_path_factory, w, h, side):
    root = folder(tmp_path_factory.mktemp("any"), (w, h), per_class=2)
    data = load_image_data(root, (3, side, side), val_split=0)
    cached = tuple(data.train.images.shape[-2:])
    # Never upsampled in the cache, never kept over the input size (a random crop pads, so needs no margin).
    assert cached[0] <= side and cached[1] <= side
    if h <= side and w <= side:
        assert cached == (h, w)  # small images stay at their stored size
    assert data.train.batch(0, 2).shape[-2:] == (side, side)


def test_files_that_vanish_while_streaming_are_skipped_and_reported(tmp_path):
    root = folder(tmp_path / "photos", (48, 40), per_class=4)
    data = load_image_data(root, (3, 16, 16), val_split=0, cache=False)
    gone = data.train.paths[2]
    gone.unlink()
    batches = make_batches(data.train, 3, train=True, input_size=(3, 16, 16), workers=0)
    assert sum(len(y) for _, y in batches) == 7 and dict(batches.skipped) == {"unreadable": 1}
    assert str(gone) in batches.skipped.files
    seen = [(kept, dict(bad)) for _, kept, bad in stream_decoded(data.train.paths, 3, (16, 16), chunk=3)]
    assert [k for kept, _ in seen for k in kept] == [0, 1, 3, 4, 5, 6, 7] and seen[0][1] == {"unreadable": 1}


def test_a_folder_mostly_of_non_images_is_counted_and_skipped(tmp_path):
    # 100,000 such files in the issue; 3,000 here show the same path, in one scan and one report.
    root = folder(tmp_path / "mixed", (24, 24), per_class=3)
    for i in range(3000):
        (root / ("cat", "dog")[i % 2] / f"note{i}.txt").write_bytes(b"")
    data = load_image_data(root, (3, 16, 16), val_split=0)
    assert len(data.train) == 6 and dict(data.skipped) == {"not an image": 3000}
    assert data.describe_skipped().startswith("skipped 3000 files (3000 not an image)")

"""zoo.data: folders, splits, decoding (bad input included), augmentation, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import (
    BatchAugment, Normalize, TensorBatches, compute_mean_std, decode_many, epoch_order, find_layout,
    load_image_data, make_batches, parse_augment, preprocess_image, resolve_data_path,
)
from zoo.errors import DataError, ZooError
from zoo.testing import make_image_folder


def test_train_val_layout_and_class_order(tmp_path):
    make_image_folder(tmp_path, ("dog", "cat"), per_class=4, size=8, split=True, val_per_class=2)
    layout = find_layout(tmp_path)
    assert layout.presplit and layout.class_names == ["cat", "dog"]
    assert len(layout.train) == 8 and len(layout.val) == 4


def test_single_folder_split_is_stratified_and_seeded(tmp_path):
    make_image_folder(tmp_path, ("a", "b", "c"), per_class=10, size=8)
    one = find_layout(tmp_path, val_split=0.2, seed=3)
    again = find_layout(tmp_path, val_split=0.2, seed=3)
    other = find_layout(tmp_path, val_split=0.2, seed=4)
    assert [p.name for p in one.val.paths] == [p.name for p in again.val.paths]
    assert sorted(one.val.labels) == [0, 0, 1, 1, 2, 2]  # two of every class
    assert set(one.val.paths).isdisjoint(one.train.paths)
    assert [str(p) for p in one.val.paths] != [str(p) for p in other.val.paths]
    assert find_layout(tmp_path, val_split=0).val is None


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        find_layout(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(DataError, match="no images found"):
        find_layout(tmp_path)


def test_single_class_is_a_clear_error(tmp_path):
    make_image_folder(tmp_path, ("only",), per_class=3, size=8)
    with pytest.raises(DataError, match="single class"):
        find_layout(tmp_path)


def test_missing_path_and_unknown_scheme(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_path(tmp_path / "nope")
    with pytest.raises(ZooError, match="unknown dataset scheme"):
        resolve_data_path("nosuchscheme:cats")


def test_demo_cats_resolves_through_the_plugin_hook():
    path = resolve_data_path("demo:cats")
    layout = find_layout("demo:cats")
    assert (path / "train").is_dir() and layout.class_names == ["cat", "dog"]
    assert len(layout.train) == 400 and len(layout.val) == 200
    with pytest.raises(DataError, match="unknown"):
        resolve_data_path("demo:nope")


def _bad_folder(root):
    """Two classes with every kind of awkward file mixed in."""
    make_image_folder(root, ("a", "b"), per_class=4, size=12)
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "b" / "Thumbs.db").write_bytes(b"\0" * 10)
    good = (root / "a" / "0000.png").read_bytes()
    jpeg = root / "a" / "broken.jpg"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[:40])  # header only: a corrupt JPEG
    (root / "b" / "garbage.png").write_bytes(b"definitely not a png" + good[:5])
    (root / "b" / "dangling.jpg").symlink_to(root / "missing.jpg")  # unreadable
    Image.new("L", (12, 12), 90).save(root / "a" / "gray.png")
    Image.new("RGBA", (12, 12), (10, 200, 10, 0)).save(root / "a" / "rgba.png")
    Image.new("P", (12, 12), 3).save(root / "b" / "palette.gif")
    Image.new("CMYK", (12, 12), (0, 255, 255, 0)).save(root / "b" / "cmyk.jpg")
    Image.new("RGB", (3000, 2000), (10, 10, 240)).save(root / "b" / "huge.jpg")
    return root


def test_bad_files_are_skipped_and_counted(tmp_path):
    data = load_image_data(_bad_folder(tmp_path), (3, 16, 16), val_split=0)
    assert data.skipped == {"not an image": 2, "corrupt": 1, "unreadable": 2}
    assert "skipped 5 files" in data.describe_skipped()
    # 8 generated + gray, rgba, palette, cmyk, huge
    assert data.train.images.shape == (13, 3, 16, 16) and data.train.images.dtype == torch.uint8
    names = {p.name: i for i, p in enumerate(data.train.paths)}
    assert data.train.images[names["gray.png"]].float().std() == 0  # grayscale copied into 3 channels
    assert tuple(data.train.images[names["cmyk.jpg"]][:, 8, 8].tolist())[0] > 200  # CMYK cyan-less -> red
    assert tuple(data.train.images[names["huge.jpg"]][:, 8, 8].tolist())[2] > 200


def test_streaming_path_skips_bad_files_in_the_loader(tmp_path):
    data = load_image_data(_bad_folder(tmp_path), (3, 16, 16), val_split=0, cache=False)
    assert not data.cached
    batches = make_batches(data.train, 4, train=True, input_size=(3, 16, 16), augment=parse_augment("flip"),
                           workers=0)
    seen = sum(y.shape[0] for _, y in batches)
    assert seen == 13 and batches.skipped == {"corrupt": 1, "unreadable": 2}


def test_decompression_bomb_is_skipped(tmp_path, monkeypatch):
    make_image_folder(tmp_path, ("a", "b"), per_class=2, size=40)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # 40x40 = 1600 > 2 * 200
    images, kept, skipped = decode_many(sorted(tmp_path.glob("*/*.png")), 3, (8, 8))
    assert len(kept) == 0 and skipped == {"too large": 4}


def test_cache_budget_switches_to_streaming(tmp_path):
    make_image_folder(tmp_path, ("a", "b"), per_class=3, size=40)
    assert not load_image_data(tmp_path, (3, 64, 64), cache_budget_mb=0.01).cached
    assert load_image_data(tmp_path, (3, 8, 8)).cached
    with pytest.raises(DataError, match="budget"):
        load_image_data(tmp_path, (3, 64, 64), cache=True, cache_budget_mb=0.01)


def test_cache_keeps_small_images_at_their_stored_size(tmp_path):
    """8x8 images for a 64x64 model take 8x8 bytes each in the cache, and batches come out at 64x64."""
    from zoo.data import make_batches
    from zoo.data.decode import read_uint8

    make_image_folder(tmp_path, ("a", "b"), per_class=3, size=8)
    data = load_image_data(tmp_path, (3, 64, 64), val_split=0.0, cache_budget_mb=0.01)  # 6 x 3x64x64 would not fit
    assert data.cached and tuple(data.train.images.shape) == (6, 3, 8, 8)
    x, _ = next(iter(make_batches(data.train, 6, train=False)))
    assert x.dtype == torch.uint8 and tuple(x.shape) == (6, 3, 64, 64)
    pil = torch.from_numpy(read_uint8(data.train.paths[0], 3, (64, 64)).copy()).permute(2, 0, 1)
    assert (x[0].int() - pil.int()).abs().max() <= 1  # the batch resize is Pillow's bilinear, to one grey level


def test_mixed_sizes_are_decoded_at_the_input_size(tmp_path):
    make_image_folder(tmp_path, ("a", "b"), per_class=20, size=8)
    Image.new("RGB", (12, 10), (200, 10, 10)).save(tmp_path / "b" / "zz_odd.png")  # sorts after the probed ones
    data = load_image_data(tmp_path, (3, 16, 16), val_split=0.0)
    assert tuple(data.train.images.shape[1:]) == (3, 16, 16) and data.train.size is None


def test_preprocess_image_follows_the_contract(tmp_path):
    path = tmp_path / "x.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 30, 4), dtype=np.uint8), "RGBA").save(path)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    x = preprocess_image(path, (3, 16, 12), mean, std)
    ref = np.asarray(Image.open(path).convert("RGB").resize((12, 16), Image.BILINEAR), dtype=np.float32) / 255
    ref = (ref - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    assert x.shape == (3, 16, 12)
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), ref, atol=1e-6)
    gray = preprocess_image(path, (1, 8, 8), [0.5], [0.5])
    assert gray.shape == (1, 8, 8)


def test_mean_std_and_normalize_agree_with_torch():
    x = torch.randint(0, 256, (10, 3, 6, 6), dtype=torch.uint8)
    mean, std = compute_mean_std(x, chunk=3)
    f = x.double() / 255
    assert np.allclose(mean, f.mean(dim=(0, 2, 3)).tolist(), atol=1e-6)
    assert np.allclose(std, f.permute(1, 0, 2, 3).reshape(3, -1).std(dim=1, unbiased=False).tolist(), atol=1e-5)
    out = Normalize(mean, std)(x)
    ref = (f - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), ref, atol=1e-5)
    feats = torch.randn(4, 7)
    assert Normalize(mean, std)(feats) is feats  # float features pass through


def test_augment_spec_parsing():
    assert [(a.name, a.value) for a in parse_augment("crop=2,flip")] == [("crop", 2.0), ("flip", 0.5)]
    assert [a.name for a in parse_augment("strong")] == ["crop", "flip", "rotate", "jitter", "blur"]
    assert parse_augment("none") == []
    with pytest.raises(DataError, match="unknown augmentation"):
        parse_augment("mixup")


def test_batch_augment_is_seeded_and_keeps_shape_and_range():
    x = torch.rand(6, 3, 12, 12)
    aug = BatchAugment(parse_augment("strong"))
    a = aug(x.clone(), torch.Generator().manual_seed(1))
    b = aug(x.clone(), torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    assert a.min() >= -1e-6 and a.max() <= 1 + 1e-6
    flipped = BatchAugment(parse_augment("flip=1"))(x, torch.Generator().manual_seed(0))
    assert torch.equal(flipped, x.flip(3))
    crop = BatchAugment(parse_augment("crop=2"))(x, torch.Generator().manual_seed(0))
    for i in range(6):  # each sample is a shifted window of the zero-padded original
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        assert any(torch.equal(crop[i], padded[:, r:r + 12, c:c + 12]) for r in range(5) for c in range(5))


@pytest.mark.parametrize("spec", ["trivial", "randaugment=12"])
def test_augment_policies_are_seeded_per_image_and_leave_the_global_generator_alone(spec):
    from zoo.data.transforms import sample_transform

    x = torch.rand(8, 3, 16, 16)
    aug = BatchAugment(parse_augment(spec))
    before = torch.get_rng_state()
    a = aug(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, aug(x, torch.Generator().manual_seed(3))) and torch.equal(before, torch.get_rng_state())
    assert a.shape == x.shape and a.dtype == x.dtype and 0 <= a.min() and a.max() <= 1
    assert sum(not torch.allclose(a[i], x[i], atol=1 / 255) for i in range(8)) >= 2  # operations drawn image by image
    image = (x[0] * 255).to(torch.uint8)
    assert sample_transform(parse_augment(spec), (16, 16))(image).dtype == torch.uint8  # the streaming path
    with pytest.raises(DataError, match="must be a whole number"):
        parse_augment(spec.split("=")[0] + "=1.5")


def test_tensor_batches_shuffle_by_epoch_and_shard_by_rank():
    x = torch.arange(10).view(10, 1)
    y = torch.arange(10)
    b = TensorBatches(x, y, 4, shuffle=True, seed=1)
    b.set_epoch(1)
    first = torch.cat([yy for _, yy in b])
    b.set_epoch(1)
    assert torch.equal(first, torch.cat([yy for _, yy in b]))
    b.set_epoch(2)
    assert not torch.equal(first, torch.cat([yy for _, yy in b]))
    assert sorted(first.tolist()) == list(range(10)) and len(b) == 3
    shards = [epoch_order(10, shuffle=True, seed=1, epoch=3, rank=r, world_size=3) for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    assert set(torch.cat(shards).tolist()) == set(range(10))
    unpadded = [epoch_order(10, shuffle=False, seed=0, epoch=0, rank=r, world_size=3, pad=False) for r in range(3)]
    assert sorted(torch.cat(unpadded).tolist()) == list(range(10))  # validation: each sample once

"""Every image mode Pillow writes decodes like the same picture in 8-bit RGB, on every path.

Training (the uint8 cache and the streaming loader both call
``zoo.data.decode.decode_uint8``) and prediction (a checkpoint or an ONNX file,
both through ``zoo.runtime.Preprocessing``) must agree with the 8-bit RGB
picture, within what lossy formats change.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from zoo.data.decode import decode_uint8
from zoo.runtime.preprocess import Preprocessing

H, W = 12, 20  # not square, so a rotation that is not undone shows


def _picture() -> Image.Image:
    ys, xs = np.mgrid[0:H, 0:W]
    rgb = np.stack([xs * 12, ys * 20, 255 - (xs + ys) * 7], -1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def _gray() -> Image.Image:
    return _picture().convert("L")


def _alpha() -> Image.Image:
    return Image.fromarray((np.arange(H * W).reshape(H, W) % 256).astype(np.uint8), "L")


def _png16_rgb(path, rgb8: np.ndarray) -> None:
    """A 48-bit PNG written by hand (Pillow reads these but cannot write them)."""
    rows = (rgb8.astype(np.uint16) * 257).astype(">u2")
    raw = b"".join(b"\0" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", W, H, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _make(case: str, path):
    """Write ``case`` to ``path``; return the 8-bit RGB picture it must decode to and the tolerance."""
    pic, gray = _picture(), _gray()
    gray_rgb = gray.convert("RGB")
    g = np.asarray(gray)
    if case == "1":
        bw = gray.point(lambda v: 255 if v > 127 else 0).convert("1")
        bw.save(path)
        return bw.convert("RGB"), 0.0
    if case == "L":
        gray.save(path)
        return gray_rgb, 0.0
    if case == "LA":  # alpha is dropped: the stored grey shows
        Image.merge("LA", (gray, _alpha())).save(path)
        return gray_rgb, 0.0
    if case in ("P", "P+transparency"):
        pal = pic.quantize(64)
        if case == "P+transparency":
            pal.info["transparency"] = 0
            pal.save(path, transparency=0)
        else:
            pal.save(path)
        return pal.convert("RGB"), 0.0
    if case == "RGB":
        pic.save(path)
        return pic, 0.0
    if case == "RGBA":  # alpha is dropped: the stored colour shows
        Image.merge("RGBA", (*pic.split(), _alpha())).save(path)
        return pic, 0.0
    if case == "CMYK":
        pic.convert("CMYK").save(path)
        return pic, 1.0
    if case == "CMYK JPEG":
        pic.convert("CMYK").save(path, quality=95)
        return pic, 6.0
    if case == "YCbCr":
        pic.convert("YCbCr").save(path)
        return pic, 2.0
    if case == "I 16-bit values":  # e.g. a 16-bit scan stored as 32-bit integers
        Image.fromarray(g.astype(np.int32) * 257, "I").save(path)
        return gray_rgb, 0.0
    if case == "I 8-bit values":  # what Pillow's own convert("I") makes
        gray.convert("I").save(path)
        return gray_rgb, 0.0
    if case == "I;16":  # a 16-bit grayscale PNG: used to come out blank white
        Image.fromarray(g.astype(np.uint16) * 257).save(path)
        return gray_rgb, 0.0
    if case == "I;16 PPM":
        Image.fromarray(g.astype(np.uint16) * 257).save(path)
        return gray_rgb, 0.0
    if case == "F 0..1":
        Image.fromarray(g.astype(np.float32) / 255, "F").save(path)
        return gray_rgb, 0.0
    if case == "F 0..255":
        gray.convert("F").save(path)
        return gray_rgb, 0.0
    if case == "RGB 16-bit":
        _png16_rgb(path, np.asarray(pic))
        return pic, 0.0
    if case == "EXIF rotated":  # a phone photo stored sideways with orientation 6
        exif = Image.Exif()
        exif[0x0112] = 6
        pic.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
        return pic, 6.0
    raise AssertionError(case)


CASES = {
    "1": "png", "L": "png", "LA": "png", "P": "png", "P+transparency": "png", "RGB": "png", "RGBA": "png",
    "CMYK": "tif", "CMYK JPEG": "jpg", "YCbCr": "tif", "I 16-bit values": "tif", "I 8-bit values": "tif",
    "I;16": "png", "I;16 PPM": "ppm", "F 0..1": "tif", "F 0..255": "tif", "RGB 16-bit": "png",
    "EXIF rotated": "jpg",
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_mode_decodes_like_its_8bit_rgb_picture(case, tmp_path):
    path = tmp_path / f"image.{CASES[case]}"
    expected, tolerance = _make(case, path)
    want = np.asarray(expected, dtype=np.float32)
    # training: the cache and the streaming loader
    train = decode_uint8(path, 3, (H, W)).astype(np.float32)
    # predict and export validation, with a checkpoint or an ONNX file
    pre = Preprocessing(3, H, W, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    runtime = pre.load(path).transpose(1, 2, 0) * 255
    for name, got in (("train", train), ("runtime", runtime)):
        assert got.shape == want.shape, (name, got.shape)
        diff = float(np.abs(got - want).mean())
        assert diff <= tolerance + 0.01, f"{case} via {name}: mean difference {diff:.2f} from the RGB picture"
    # the one-channel models read the same picture's grey
    gray_train = decode_uint8(path, 1, (H, W))[:, :, 0].astype(np.float32)
    gray_want = np.asarray(expected.convert("L"), dtype=np.float32)
    assert float(np.abs(gray_train - gray_want).mean()) <= tolerance + 1.0

"""``--tta`` on zoo evaluate and zoo predict with a checkpoint: mirror-symmetric images are unchanged by a flip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import zoo
from zoo.cli import cli


@pytest.fixture(scope="module")
def checkpoint_and_mirrored(tmp_path_factory):
    """A briefly trained 'net' and a folder of left-right symmetric images (a flip changes no pixel)."""
    from zoo.testing import make_image_folder

    root = tmp_path_factory.mktemp("tta")
    data = make_image_folder(root / "data", ("cat", "dog"), per_class=8, size=32)
    result = zoo.fit("net", str(data), out=str(root / "run"), epochs=2, batch_size=8, lr=0.05, progress=False,
                     plot=False, val_split=0.0, metrics_format="none")
    mirrored = root / "mirrored"
    for path in sorted(data.glob("*/*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB")).copy()
        pixels[:, 16:] = pixels[:, :16][:, ::-1]
        (mirrored / path.parent.name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(mirrored / path.parent.name / path.name)
    return result.last_path, data, mirrored


def test_flip_tta_on_symmetric_images_equals_no_tta(checkpoint_and_mirrored):
    ckpt, data, mirrored = checkpoint_and_mirrored
    plain = zoo.evaluate(str(ckpt), str(mirrored))
    flipped = zoo.evaluate(str(ckpt), str(mirrored), tta="flip")
    assert flipped.accuracy == plain.accuracy and flipped.loss == pytest.approx(plain.loss, rel=1e-5)
    assert flipped.to_dict()["tta"] == ["flip"] and plain.to_dict()["tta"] == []
    # on ordinary images the flip is a real second view: the averaged loss moves
    assert zoo.evaluate(str(ckpt), str(data), tta="flip,crops").loss != pytest.approx(zoo.evaluate(str(ckpt), str(data)).loss)


def test_predict_tta_is_recorded_in_the_json(checkpoint_and_mirrored):
    ckpt, _, mirrored = checkpoint_and_mirrored
    image = next(mirrored.glob("cat/*.png"))

    def top(*extra):
        result = CliRunner().invoke(cli, ["predict", str(ckpt), str(image), "--json", *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["predictions"][0]

    plain, flipped = top(), top("--tta", "flip")
    assert flipped["tta"] == ["flip"] and "tta" not in plain
    assert flipped["top"][0]["probability"] == pytest.approx(plain["top"][0]["probability"], rel=1e-5)
    bad = CliRunner().invoke(cli, ["predict", str(ckpt), str(image), "--tta", "rotate"])
    assert bad.exit_code != 0 and "choose flip, crops or flip,crops" in bad.output

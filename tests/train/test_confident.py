"""zoo mistakes: confident answers on images of classes the model never saw."""

import json

import torch
from click.testing import CliRunner

import zoo
from zoo import checkpoint
from zoo.cli import cli
from zoo.testing import make_image_folder


def biased_checkpoint(path, favour=0, margin=20.0):
    """A net whose answer is always class `favour`, with probability ~1."""
    model = zoo.create_model("net", num_classes=2)
    with torch.no_grad():
        model.fc2.weight.zero_()
        model.fc2.bias.copy_(torch.tensor([0.0, 0.0]))
        model.fc2.bias[favour] = margin
    cfg = checkpoint.make_config(model, class_names=["airplane", "bird"], mean=(0.5,) * 3, std=(0.25,) * 3)
    return checkpoint.save_checkpoint(path, model, cfg)


def test_confident_mistakes_and_contact_sheet(tmp_path):
    ck = biased_checkpoint(tmp_path / "ck")
    data = make_image_folder(tmp_path / "other", classes=("airplane", "bird", "cat"), per_class=3, size=16)
    result = CliRunner().invoke(cli, ["mistakes", str(ck), "--data", str(data), "--min-prob", "0.95", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["num_images"] == 9 and report["unseen_classes"] == ["cat"]
    # everything is called airplane: the birds and the cats are the confident mistakes
    folders = sorted(m["folder"] for m in report["mistakes"])
    assert folders == ["bird"] * 3 + ["cat"] * 3
    assert all(m["predicted"] == "airplane" and m["probability"] > 0.99 for m in report["mistakes"])
    from PIL import Image

    with Image.open(report["sheet"]) as sheet:
        assert sheet.size[0] == 6 * 96


def test_threshold_above_the_models_confidence_finds_nothing(tmp_path):
    ck = biased_checkpoint(tmp_path / "ck", margin=1.0)  # p = e / (1 + e) = 0.73
    data = make_image_folder(tmp_path / "cats", classes=("cat",), per_class=2, size=16)
    result = CliRunner().invoke(cli, ["mistakes", str(ck), "--data", str(data), "--min-prob", "0.95"])
    assert result.exit_code == 0
    assert result.stdout.startswith("0 of 2 images (0.0%)")
    result = CliRunner().invoke(cli, ["mistakes", str(ck), "--data", str(data), "--min-prob", "0.7"])
    assert result.stdout.startswith("2 of 2 images (100.0%)") and "contact sheet:" in result.stdout


def test_confident_rejects_a_bad_probability(tmp_path):
    ck = biased_checkpoint(tmp_path / "ck")
    data = make_image_folder(tmp_path / "cats", classes=("cat",), per_class=1, size=16)
    result = CliRunner().invoke(cli, ["mistakes", str(ck), "--data", str(data), "--min-prob", "1.5"])
    assert result.exit_code == 1 and "probability in (0, 1]" in result.stderr


def test_mistakes_respect_the_split(tmp_path):
    ck = biased_checkpoint(tmp_path / "ck")
    root = make_image_folder(tmp_path / "pics", classes=("airplane", "bird"), per_class=4, size=16, split=True,
                             val_per_class=2)
    counts = {}
    for split in ("auto", "train", "val", "all"):
        result = CliRunner().invoke(cli, ["mistakes", str(ck), "--data", str(root), "--split", split, "--json"])
        assert result.exit_code == 0, result.output
        counts[split] = json.loads(result.stdout)["num_images"]
    assert counts == {"auto": 4, "train": 8, "val": 4, "all": 12}


def test_evaluate_confident_still_works_with_a_deprecation_line(tmp_path):
    ck = biased_checkpoint(tmp_path / "ck")
    data = make_image_folder(tmp_path / "cats", classes=("cat",), per_class=2, size=16)
    result = CliRunner().invoke(cli, ["evaluate", str(ck), "--data", str(data), "--confident", "0.7"])
    assert result.exit_code == 0 and result.stdout.startswith("2 of 2 images (100.0%)")
    assert "deprecated" in result.stderr and "zoo mistakes" in result.stderr

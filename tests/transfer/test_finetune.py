"""zoo finetune end to end: checkpoint to checkpoint, heads, dry run, unfreezing, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def pretrained_ckpt(tmp_path_factory):
    """cifar8_resnet trained briefly on 4 other classes: a checkpoint to transfer from."""
    from zoo.testing import make_image_folder

    root = tmp_path_factory.mktemp("pre")
    data = make_image_folder(root / "data", ("a", "b", "c", "d"), per_class=12, size=32, seed=3)
    result = zoo.fit("cifar8_resnet", str(data), out=str(root / "run"), epochs=2, batch_size=16, lr=0.05,
                       progress=False, plot=False, val_split=0.0, metrics_format="none")
    return result.last_path


def test_checkpoint_to_checkpoint_with_cached_features(pretrained_ckpt, tiny_folder, tmp_path):
    code, out = run("finetune", pretrained_ckpt, "--data", tiny_folder, "--out", tmp_path / "ft", "--epochs", 8,
                    "--lr", 0.02, "--batch-size", 16, "--json", "--no-plot")
    assert code == 0, out
    summary = json.loads(out[out.index("{"):])
    assert summary["cached_features"] is True
    assert summary["best"]["val_acc"] >= 0.8  # 2 classes: chance is 0.5
    config = json.loads((tmp_path / "ft" / "best" / "config.json").read_text())
    assert config["class_names"] == ["cat", "dog"] and config["finetune"]["freeze"] == "backbone"
    # The checkpoint is the whole model and scores the same on images as on cached features.
    code, report = run("evaluate", tmp_path / "ft" / "best", "--data", tiny_folder, "--json")
    assert json.loads(report)["accuracy"] == pytest.approx(summary["best"]["val_acc"])


def test_cached_and_uncached_training_agree(pretrained_ckpt, tiny_folder, tmp_path):
    from zoo.transfer.finetune import FinetuneOptions, finetune

    common = dict(epochs=2, batch_size=32, lr=0.01, progress=False, plot=False, metrics_format="none")
    cached = finetune(str(pretrained_ckpt), tiny_folder, options=FinetuneOptions(), out=str(tmp_path / "a"), **common)
    plain = finetune(str(pretrained_ckpt), tiny_folder, options=FinetuneOptions(cache_features=False),
                     out=str(tmp_path / "b"), **common)
    assert cached.cached_features and not plain.cached_features
    for a, b in zip(cached.history, plain.history):
        assert a["val_acc"] == pytest.approx(b["val_acc"]) and a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_mlp_head_checkpoint_reloads_everywhere(pretrained_ckpt, tiny_folder, tmp_path):
    code, out = run("finetune", pretrained_ckpt, "--data", tiny_folder, "--out", tmp_path / "mlp", "--epochs", 2,
                    "--head", "mlp:32", "--no-plot", "-q")
    assert code == 0, out
    model, config = zoo.load_checkpoint(tmp_path / "mlp" / "best")
    assert config["adapters"] == [{"type": "head", "head": "mlp", "hidden": [32], "dropout": 0.2}]
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    assert model.forward_head(model.forward_features(torch.zeros(1, 3, 32, 32)), pre_logits=True).shape[1] == 192


def test_dry_run_prints_groups_and_trains_nothing(pretrained_ckpt, tiny_folder, tmp_path):
    code, out = run("finetune", pretrained_ckpt, "--data", tiny_folder, "--out", tmp_path / "dry", "--freeze",
                    "layer1", "--lr", 0.1, "--dry-run")
    assert code == 0, out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    assert rows["stem"][0] == "0" and rows["layer1"][0] == "0" and rows["layer2"][1] == "0"
    assert float(rows["head"][-1]) == 0.1 and float(rows["layer3"][-1]) == 0.05 and float(rows["layer2"][-1]) == 0.025
    assert "total" in rows and not (tmp_path / "dry").exists()


def test_gradual_unfreezing(pretrained_ckpt, tiny_folder, tmp_path):
    from zoo.transfer.finetune import FinetuneOptions, finetune

    lines = []
    result = finetune(str(pretrained_ckpt), tiny_folder, options=FinetuneOptions(unfreeze_after=1),
                      epochs=3, batch_size=32, lr=0.01, out=str(tmp_path / "u"), progress=False, plot=False,
                      log=lines.append)
    unfreezing = [line for line in lines if "unfreezing" in line]
    assert unfreezing[0].startswith("epoch 2: unfreezing layer3 (lr 0.005)")
    assert unfreezing[1].startswith("epoch 3: unfreezing layer2 (lr 0.0025)")
    trainable = {n.split(".")[0] for n, p in result.model.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "fc"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--head", "mlp:0"], "head size must be a positive integer"),
        (["--freeze", "layer9"], "valid stages (input to output): stem, layer1, layer2, layer3"),
        (["--head", "conv"], "unknown head"),
        (["--layer-decay", "0"], "--layer-decay"),
    ],
)
def test_bad_options(pretrained_ckpt, tiny_folder, tmp_path, args, message):
    code, out = run("finetune", pretrained_ckpt, "--data", tiny_folder, "--out", tmp_path / "bad", *args)
    assert code == 1 and message in out and "Traceback" not in out


def test_encoder_on_a_classifier_checkpoint_is_refused(pretrained_ckpt, tiny_folder, tmp_path):
    code, out = run("finetune", "--encoder", pretrained_ckpt, "--data", tiny_folder, "--out", tmp_path / "e")
    assert code == 1 and "--encoder needs an autoencoder checkpoint" in out


def test_missing_weights_offline_is_one_clear_message(tiny_folder, tmp_path, caches, no_network):
    code, out = run("finetune", "resnet18", "--data", tiny_folder, "--out", tmp_path / "r", "--dry-run")
    assert code == 1 and "--weights" in out and "resnet18-f37072fd.pth" in out and "Traceback" not in out


def test_shipped_backbone_finetunes_offline(tiny_folder, tmp_path, no_network):
    code, out = run("finetune", "cifar8_resnet", "--data", tiny_folder, "--out", tmp_path / "s", "--epochs", 5,
                    "--lr", 0.01, "--json", "--no-plot")
    assert code == 0, out
    summary = json.loads(out[out.index("{"):])
    assert summary["best"]["val_acc"] >= 0.8


def test_finetune_reports_skipped_files_in_text_and_json(pretrained_ckpt, tiny_folder, tmp_path):
    import shutil

    from PIL import Image

    data = tmp_path / "data"
    shutil.copytree(tiny_folder, data)
    bad = data / "train" / "cat" / "broken.jpg"
    Image.new("RGB", (16, 16)).save(bad, format="JPEG")
    bad.write_bytes(bad.read_bytes()[:40])
    result = CliRunner().invoke(cli, [str(a) for a in ("finetune", pretrained_ckpt, "--data", data, "--out",
                                tmp_path / "ft", "--epochs", 1, "--quiet", "--no-plot", "--json")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped"]["by_reason"] == {"corrupt": 1}
    assert "zoo: skipped 1 file (1 corrupt): " in result.stderr and "broken.jpg (corrupt)" in result.stderr

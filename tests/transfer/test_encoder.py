"""Autoencoder pretraining and its encoder as a finetuning backbone."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli


@pytest.fixture(scope="module")
def autoencoder_ckpt(tmp_path_factory, tiny_folder):
    out = tmp_path_factory.mktemp("ae") / "ae"
    args = ["pretrain", "autoencoder", "ae_conv_32", "--data", tiny_folder, "--epochs", 10, "--batch-size", 8,
            "--lr", 0.005, "--val-split", 0, "--out", out, "--loss", "l1", "--device", "cpu", "-q"]
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (out / "last" / "training_state.pt").is_file()  # the shared loop's checkpoints: resumable
    return out / "best"


def test_pretraining_resumes_on_the_shared_loop(autoencoder_ckpt, tiny_folder, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(autoencoder_ckpt.parent, run)
    args = ["pretrain", "autoencoder", "ae_conv_32", "--data", tiny_folder, "--epochs", 12, "--batch-size", 8,
            "--lr", 0.005, "--val-split", 0, "--out", run, "--loss", "l1", "--resume", run / "last", "--json"]
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["best_loss"] > 0
    from zoo.io import load_config

    assert load_config(run / "last")["metrics"]["epoch"] == 12


def test_old_pretrain_spellings_still_work_with_a_warning(tiny_folder, tmp_path):
    args = ["pretrain", "autoencoder", "--arch", "ae_conv_32", "--val-fraction", "0", "--data", tiny_folder,
            "--epochs", 1, "--batch-size", 8, "--out", tmp_path / "ae", "-q"]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "--arch NAME is deprecated" in result.stderr and "--val-fraction is deprecated" in result.stderr


def test_pretraining_reduces_reconstruction_loss(autoencoder_ckpt, tiny_folder):
    from torch.nn import functional as F

    from zoo.data.transforms import Normalize
    from zoo.transfer.encoder import unlabelled_images

    spec = zoo.get_spec("ae_conv_32")
    images, _ = unlabelled_images(tiny_folder, spec.input_size)
    x = Normalize(spec.mean, spec.std)(images)
    torch.manual_seed(0)
    fresh = zoo.create_model("ae_conv_32").eval()
    trained = zoo.load(autoencoder_ckpt)
    with torch.no_grad():
        before, after = F.l1_loss(fresh(x), x).item(), F.l1_loss(trained(x), x).item()
    assert trained(x[:2]).shape == x[:2].shape
    assert after < 0.8 * before


def test_finetune_from_the_encoder(autoencoder_ckpt, tiny_folder, tmp_path):
    from zoo.io import load_config, load_state_dict

    config = load_config(autoencoder_ckpt)
    assert config["architecture"] == "ae_conv_32" and config["num_classes"] == 0
    result = CliRunner().invoke(cli, ["finetune", "--encoder", str(autoencoder_ckpt), "--data", str(tiny_folder),
                                      "--out", str(tmp_path / "ft"), "--epochs", "10", "--lr", "0.01", "--json",
                                      "--no-plot"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["best"]["val_acc"] >= 0.8
    model, ft_config = zoo.load_checkpoint(tmp_path / "ft" / "best")
    assert type(model).__name__ == "EncoderClassifier" and ft_config["num_classes"] == 2
    encoder = {k: v for k, v in load_state_dict(autoencoder_ckpt).items() if k.startswith("encoder.")}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in encoder.items())  # frozen: unchanged


def test_autoencoder_checkpoint_is_not_a_finetune_source(autoencoder_ckpt, tiny_folder, tmp_path):
    result = CliRunner().invoke(cli, ["finetune", str(autoencoder_ckpt), "--data", str(tiny_folder)])
    assert result.exit_code == 1 and "--encoder" in result.output


def test_pretrain_rejects_a_classifier_arch(tiny_folder):
    result = CliRunner().invoke(cli, ["pretrain", "autoencoder", "--data", str(tiny_folder), "--arch", "net"])
    assert result.exit_code == 1 and "not an autoencoder" in result.output and "ae_conv_32" in result.output

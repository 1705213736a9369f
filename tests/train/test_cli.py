"""``zoo train`` and ``zoo evaluate`` on the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.testing import make_image_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return make_image_folder(root, ("cat", "dog"), per_class=20, size=32, split=True, val_per_class=6)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_train_evaluate_and_resume(folder, tmp_path):
    out = tmp_path / "run"
    res = run("train", "net", "--data", folder, "--out", out, "--epochs", 3, "--lr", 0.05, "--batch-size", 16,
              "--quiet", "--no-plot", "--model-arg", "kernel_size=5", "--augment", "crop=2,flip", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["stopped"] == "completed" and summary["best"]["val_acc"] > 0.8
    res = run("evaluate", out / "best", "--data", folder, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["num_images"] == 12 and len(report["confusion_matrix"]) == 2
    assert "confusion matrix" in run("evaluate", out / "best", "--data", folder).stdout
    res = run("train", "net", "--data", folder, "--out", out, "--epochs", 4, "--lr", 0.05, "--batch-size", 16,
              "--quiet", "--no-plot", "--model-arg", "kernel_size=5", "--augment", "crop=2,flip", "--resume")
    assert res.exit_code == 0, res.output
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3, 4]
    # A finished run: resuming it to as many (or fewer) epochs has nothing to do and says so.
    for epochs in (4, 2):
        res = run("train", "net", "--data", folder, "--out", out, "--epochs", epochs, "--quiet", "--no-plot",
                  "--model-arg", "kernel_size=5", "--resume")
        assert res.exit_code == 1 and "best" not in res.output, res.output
        assert "has trained 4 epochs" in res.output and "--epochs N with N > 4" in res.output
    with pytest.raises(zoo.errors.NothingToResumeError, match="trained 4 epochs"):
        zoo.fit("net", str(folder), out=out, resume=str(out / "last"), epochs=4, progress=False,
                model_args={"kernel_size": 5})
    # Without --resume it is never overwritten; --overwrite moves it aside whole, then trains afresh.
    res = run("train", "net", "--data", folder, "--out", out, "--epochs", 1, "--quiet", "--no-plot")
    assert res.exit_code == 1 and "already holds an earlier run" in res.output
    res = run("train", "net", "--data", folder, "--out", out, "--epochs", 1, "--quiet", "--no-plot", "--overwrite")
    assert res.exit_code == 0, res.output
    (aside,) = tmp_path.glob("run.old-*")
    assert f"aside to {aside}" in res.output
    assert len((aside / "metrics.jsonl").read_text().splitlines()) == 4 and (aside / "best").is_dir()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "cuda:57"], "cuda:57"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--mean", "0.5,0.5,0.5"], "give --mean and --std together"),
        (["--milestones", "a,b"], "comma-separated integers"),
    ],
)
def test_train_bad_options(folder, tmp_path, args, message):
    res = run("train", "net", "--data", folder, "--out", tmp_path, "--quiet", *args)
    assert res.exit_code != 0 and message in res.output
    assert "Traceback" not in res.output


def test_train_bad_data_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run("train", "net", "--data", tmp_path / "empty", "--out", tmp_path / "o", "--quiet")
    assert res.exit_code == 1 and res.output.startswith("Error: no images found")
    res = run("evaluate", tmp_path / "nothing", "--data", tmp_path / "empty")
    assert res.exit_code == 1 and "does not exist" in res.output


def test_help_texts():
    for command in ("train", "evaluate"):
        res = run(command, "--help")
        assert res.exit_code == 0 and "--data" in res.output

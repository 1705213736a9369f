"""``zoo compare`` on tiny backbones: a shipped one and a checkpoint compared, the rest skipped with a way out."""

from __future__ import annotations

import json

from click.testing import CliRunner

import zoo
from zoo.cli import cli


def test_compare_ranks_backbones_and_lists_the_skipped(tiny_folder, tmp_path):
    from zoo.testing import make_image_folder, torch_threads

    other = make_image_folder(tmp_path / "other", ("a", "b", "c"), per_class=6, size=32, seed=5)
    with torch_threads(1):
        ckpt = zoo.fit("net", str(other), out=str(tmp_path / "net"), epochs=1, batch_size=8, progress=False,
                       plot=False, val_split=0.0, metrics_format="none").last_path
        result = CliRunner().invoke(cli, ["compare", "--data", str(tiny_folder), "cifar8_resnet", str(ckpt), "net",
                                          "nosuch_*", "--epochs", "6", "--lr", "0.02", "--batch-size", "16",
                                          "--runs", "3", "--out", str(tmp_path / "cmp"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # progress goes to stderr
    rows = {r["model"]: r for r in report["models"]}
    compared = [r for r in report["models"] if r["skipped"] is None]
    assert [r["model"] for r in compared] == sorted([r["model"] for r in compared],
                                                    key=lambda m: -rows[m]["val_acc"]) and len(compared) == 2
    shipped = rows["cifar8_resnet"]
    assert shipped["val_acc"] >= 0.8  # 2 classes: chance is 0.5
    assert shipped["latency_ms"] > 0 and shipped["feature_seconds"] > 0 and shipped["params"] > 800_000
    assert rows[str(ckpt)]["params"] < shipped["params"]
    assert "no pretrained weights are registered for net" in rows["net"]["skipped"]
    assert "matches no registered model" in rows["nosuch_*"]["skipped"]
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "cmp" / "cifar8_resnet" / "best" / "config.json").exists()

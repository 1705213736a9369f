"""A smoke run of benchmarks/book_cifar2.py on generated airplane/bird images.

The full 100-epoch table runs outside CI (docs/results.md); this checks the
script end to end, including the 100-block shared-weight net, in seconds.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from zoo.testing import make_image_folder

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "book_cifar2.py"


@pytest.fixture(scope="module")
def book():
    spec = importlib.util.spec_from_file_location("book_cifar2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_learns_and_reports(book, tmp_path, monkeypatch):
    source = make_image_folder(tmp_path / "cifar", classes=("airplane", "bird"), per_class=120, fmt="jpg", noise=30)
    out = tmp_path / "out"
    argv = ["book_cifar2.py", "--data-root", str(source), "--out", str(out), "--epochs", "4", "--deep-epochs", "1",
            "--per-class", "96", "--val-per-class", "24", "--configs", "baseline,dropout,res_deep", "--threads", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    book.main()
    rows = {r["config"]: r for r in json.loads((out / "results.json").read_text())}
    assert set(rows) == {"baseline", "dropout", "res_deep"}
    # colour-separable data: even the book's plain SGD learns it in a few epochs
    assert rows["baseline"]["val_acc"] >= 0.9
    assert rows["res_deep"]["epochs"] == 1 and rows["res_deep"]["options"] == {"lr": 0.003}
    assert rows["res_deep"]["params"] == 75_810  # 100 blocks, one shared set of weights
    for row in rows.values():
        assert (out / row["config"] / "last" / "model.safetensors").is_file()
        assert row["per_class"] == 96 and 0.0 <= row["book_val_acc"] <= 1.0

    md, png = tmp_path / "results.md", tmp_path / "chart.png"
    md.write_text("# Results\n<!-- book-table:start -->\nold\n<!-- book-table:end -->\ntail\n")
    book.write_report(list(rows.values()), md, png)
    text = md.read_text()
    assert "old" not in text and text.endswith("tail\n") and "| baseline | `net` | 4 |" in text
    assert png.stat().st_size > 1000


def test_split_uses_first_images_for_train_and_last_for_val(book, tmp_path):
    source = make_image_folder(tmp_path / "cifar", classes=("airplane", "bird"), per_class=10, size=8, fmt="jpg")
    split = book.make_split(source, tmp_path / "split", per_class=6, val_per_class=3)
    assert sorted(p.name for p in (split / "train" / "bird").iterdir()) == [f"{i:04d}.jpg" for i in range(6)]
    assert sorted(p.name for p in (split / "val" / "bird").iterdir()) == [f"{i:04d}.jpg" for i in range(7, 10)]

"""zoo finetune sets glibc's mmap threshold for what the run does: low for a feature pass, high for a whole network."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.data import budget
from zoo.testing import make_image_folder


@pytest.fixture
def calls(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(budget, "keep_batches_off_the_heap", lambda *a, **k: seen.append("off the heap") or True)
    monkeypatch.setattr(budget, "let_batches_on_the_heap", lambda: seen.append("on the heap") or True)
    return seen


@pytest.mark.parametrize("options, expected", [
    ([], ["off the heap"]),                                                   # frozen: a feature pass
    (["--freeze", "none"], []),                                               # a whole network: left as glibc has it
    (["--recipe", "lp-ft", "--epochs", "1"], ["off the heap", "on the heap"]),  # features, then the whole network
])
def test_the_threshold_follows_the_run(tmp_path, calls, options, expected):
    data = make_image_folder(tmp_path / "d", ("cat", "dog"), per_class=8, size=32)
    result = CliRunner().invoke(cli, ["finetune", "cifar8_resnet", "--data", str(data), "--out", str(tmp_path / "run"),
                                      "--no-plot", "-q", *(options if "--epochs" in options else [*options, "--epochs", "1"])])
    assert result.exit_code == 0, result.output
    assert calls == expected

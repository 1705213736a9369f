"""A second run never destroys the first: --out that holds a run is refused, resumed, or moved aside."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo
from zoo.cli import cli
from zoo.errors import OutputExistsError
from zoo.io import RUN_ENTRIES, claim_run_dir


def fake_run(out, entry="last"):
    """A folder that holds what a run leaves (no training needed to test the rule)."""
    out.mkdir(parents=True, exist_ok=True)
    if entry.startswith("metrics"):
        (out / entry).write_text('{"epoch": 1}\n')
    else:
        (out / entry).mkdir()
        (out / entry / "config.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    return out


@pytest.mark.parametrize("entry", RUN_ENTRIES)
def test_each_trace_of_a_run_is_refused_with_the_ways_out(tmp_path, entry):
    out = fake_run(tmp_path / "o", entry)
    with pytest.raises(OutputExistsError) as err:
        claim_run_dir(out)
    text = str(err.value)
    assert str(out) in text and entry in text and "\n" not in text
    assert "--resume" in text and "--out" in text and "--overwrite" in text
    assert sorted(os.listdir(out)) == sorted([entry, "notes.txt"])  # untouched


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@settings(max_examples=30, deadline=None)
@given(run=st.sets(st.sampled_from(RUN_ENTRIES)), other=st.sets(st.sampled_from(
    ["curves.png", "notes.txt", "export", "best.txt", "lastly", "metrics.json"])), overwrite=st.booleans())
def test_refused_exactly_when_a_run_is_there_and_overwrite_loses_nothing(run, other, overwrite):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "o"
        out.mkdir()
        for name in run | other:
            if "." in name.strip("."):
                (out / name).write_text(name)
            else:  # best/, last/, export/, lastly/
                (out / name).mkdir()
        before = _tree(out)
        if not run:
            assert claim_run_dir(out, overwrite=overwrite) is None and _tree(out) == before
        elif not overwrite:
            with pytest.raises(OutputExistsError):
                claim_run_dir(out)
            assert _tree(out) == before
        else:
            aside = claim_run_dir(out, overwrite=True, log=lambda line: None)
            assert _tree(aside) == before and not out.exists() and claim_run_dir(out) is None


def test_an_empty_missing_or_unrelated_folder_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "readme.txt").write_text("x")
    for out in ("empty", "missing", "other"):
        assert claim_run_dir(tmp_path / out) is None
    assert claim_run_dir(None, overwrite=True) is None


def test_overwrite_moves_the_whole_run_aside_and_says_where(tmp_path):
    out = fake_run(tmp_path / "o")
    lines: list[str] = []
    first = claim_run_dir(out, overwrite=True, log=lines.append)
    assert not out.exists() and sorted(os.listdir(first)) == ["last", "notes.txt"]
    assert first.parent == tmp_path and first.name.startswith("o.old-") and str(first) in lines[0]
    fake_run(out)
    second = claim_run_dir(out, overwrite=True, log=lines.append)  # the same second: another name
    assert second != first and first.is_dir() and second.is_dir()


def test_overwrite_of_the_working_directory_moves_only_the_run(tmp_path, monkeypatch):
    out = fake_run(tmp_path / "o", "best")
    monkeypatch.chdir(out)
    aside = claim_run_dir(".", overwrite=True, log=lambda line: None)
    assert sorted(os.listdir(out)) == ["notes.txt"] and os.listdir(aside) == ["best"]


def test_resume_continues_its_own_run_only(tmp_path):
    out = fake_run(tmp_path / "o")
    assert claim_run_dir(out, resume=out / "last") is None
    with pytest.raises(OutputExistsError, match="other than the one --resume"):
        claim_run_dir(out, resume=fake_run(tmp_path / "elsewhere") / "last")
    with pytest.raises(OutputExistsError, match="drop one of them"):
        claim_run_dir(out, resume=out / "last", overwrite=True)
    assert (out / "last").is_dir()


def test_only_the_main_process_moves_a_run_aside(tmp_path):
    out = fake_run(tmp_path / "o")
    assert claim_run_dir(out, overwrite=True, main=False) is None and (out / "last").is_dir()
    with pytest.raises(OutputExistsError):
        claim_run_dir(out, main=False)


def test_every_entry_point_refuses_before_reading_data(tmp_path):
    """zoo.fit, finetune, pretraining and a bare Trainer: the rule comes first (the data does not even exist)."""
    from zoo.transfer.encoder import pretrain_autoencoder
    from zoo.transfer.finetune import finetune

    out = fake_run(tmp_path / "o")
    missing = str(tmp_path / "no-such-data")
    calls = [
        lambda: zoo.fit("net", missing, out=out, progress=False),
        lambda: finetune("net", missing, out=str(out), progress=False),
        lambda: pretrain_autoencoder("ae_conv_32", missing, out=out),
        lambda: zoo.Trainer("net", (torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])),
                            out=str(out), progress=False).fit(),
    ]
    for call in calls:
        with pytest.raises(OutputExistsError, match="already holds an earlier run"):
            call()
    assert sorted(os.listdir(out)) == ["last", "notes.txt"]


@pytest.mark.parametrize("command", [["train", "net"], ["finetune", "net"], ["pretrain", "autoencoder"]])
def test_cli_refuses_in_one_line_and_overwrite_is_an_option(tmp_path, command):
    out = fake_run(tmp_path / "o")
    res = CliRunner().invoke(cli, [*command, "--data", str(tmp_path / "nothing"), "--out", str(out), "--quiet"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1 and "--overwrite" in res.output
    help_text = CliRunner().invoke(cli, [*command, "--help"]).output
    assert "--overwrite" in help_text

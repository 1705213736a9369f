"""Data-parallel training: two CPU processes with gloo under torchrun, and its failure modes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoo.checkpoint import load_checkpoint
from zoo.data import load_image_data
from zoo.errors import DataError
from zoo.testing import make_image_folder
from zoo.train import Trainer
from zoo.train.distributed import DistContext, DistributedError, needs_rewrap, strip_option, wrap_model

WORKER = Path(__file__).with_name("dist_worker.py")
# Two ranks with batch 8 see, step by step, the same 16 samples as one process with
# batch 16, and DDP averages their gradients: only the summation order differs.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    return make_image_folder(root, ("red", "green", "blue"), per_class=16, size=32, split=True, val_per_class=5)


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", ZOO_DIST_TIMEOUT="60")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _torchrun(*args, timeout=120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *map(str, args)]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


def test_two_gloo_ranks_agree_learn_and_match_one_process(folder, tmp_path):
    out, weights = tmp_path / "out", tmp_path / "weights"
    res = _torchrun(WORKER, folder, out, weights, 2, 8)
    assert res.returncode == 0, res.stderr[:6000]
    rank0, rank1 = (torch.load(weights / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # identical weights on every rank
    assert sorted(p.name for p in out.iterdir()) == ["best", "last", "metrics.jsonl"]  # rank 0 wrote, once
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    _, config = load_checkpoint(out / "last")
    assert config["train_args"]["world_size"] == 2

    single = Trainer("net", load_image_data(folder, (3, 32, 32)), epochs=2, batch_size=16, lr=0.05,
                     progress=False, plot=False).fit()
    diff = max(float((single.model.state_dict()[k] - rank0[k]).abs().max()) for k in rank0)
    assert diff < TOLERANCE
    for a, b in zip(rows, single.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=TOLERANCE)
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=1e-9)


def test_a_rank_dying_mid_epoch_then_resuming_with_nproc(folder, tmp_path):
    out = tmp_path / "out"
    res = _torchrun(WORKER, folder, out, tmp_path / "w", 3, 8, "--die-at", 2)
    assert res.returncode != 0
    text = res.stdout + res.stderr
    assert "lost contact with the other ranks" in text or "stopped by the launcher" in text, text[-3000:]
    model, config = load_checkpoint(out / "last")  # epoch 1's checkpoint survives
    assert config["metrics"]["epoch"] == 1
    assert not any(p.name.startswith(".") for p in out.iterdir())

    # zoo train --nproc 2 starts torchrun itself, and --resume works with two ranks.
    cmd = [sys.executable, "-m", "zoo", "train", "net", "--data", str(folder), "--out", str(out), "--epochs", "3",
           "--batch-size", "8", "--lr", "0.05", "--threads", "1", "--quiet", "--no-plot", "--nproc", "2", "--resume"]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[:6000]
    assert res.stdout.count("last checkpoint:") == 1  # only rank 0 prints
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    _, config = load_checkpoint(out / "last")
    assert config["train_args"]["world_size"] == 2 and config["metrics"]["epoch"] == 3


def test_world_size_larger_than_the_dataset(tmp_path):
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 0])
    trainer = Trainer(torch.nn.Linear(4, 2), (x, y), epochs=1, progress=False,
                      dist=DistContext(rank=0, world_size=4))
    with pytest.raises(DataError, match="4 processes but only 3 training samples"):
        trainer.fit()


def test_port_already_taken_is_a_clear_error(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", str(busy.getsockname()[1]))
        with pytest.raises(DistributedError, match="already taken"):
            DistContext(rank=0, world_size=2).init(torch.device("cpu"))


def test_frozen_parameters_are_left_out_of_the_sync(tmp_path, monkeypatch):
    import torch.distributed as dist

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    ctx = DistContext(rank=0, world_size=1)
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
        model[0].requires_grad_(False)
        net = wrap_model(model, torch.device("cpu"))
        synced = {id(p) for p in net.parameters() if p.requires_grad}
        assert synced == {id(p) for p in model[1].parameters()}
        assert not needs_rewrap(net)
        model[0].requires_grad_(True)  # a stage unfrozen by a callback
        assert needs_rewrap(net)
    finally:
        dist.destroy_process_group()
    assert ctx.world_size == 1


def test_strip_option():
    assert strip_option(["train", "net", "--nproc", "2", "--epochs", "3"], "--nproc") == ["train", "net", "--epochs", "3"]
    assert strip_option(["--nproc=4", "x"], "--nproc") == ["x"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_relaunch_keeps_global_options_before_the_command():
    from zoo.train.distributed import relaunch_args

    argv = ["--debug", "--no-plugins", "train", "net", "--data", "d", "--nproc", "2"]
    assert relaunch_args(argv, "train") == argv
    assert relaunch_args(["net", "--data", "train"], "train") == ["train", "net", "--data", "train"]


def test_a_data_error_under_nproc_is_printed_once_without_a_traceback(tmp_path):
    # --no-plugins before the command used to be relaunched as 'zoo train --no-plugins train ...'
    cmd = [sys.executable, "-m", "zoo", "--no-plugins", "train", "net", "--data", str(tmp_path / "missing"),
           "--out", str(tmp_path / "out"), "--nproc", "2"]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"Error: data directory '{tmp_path / 'missing'}' does not exist"]

"""Data-parallel training under torchrun: process group, DDP wrapping, the ``--nproc`` launcher.

``torchrun --nproc_per_node N -m zoo train ...`` starts N copies of the same
command; each reads its place from the environment torchrun sets (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). :func:`from_env` turns
that into a :class:`DistContext`; the Trainer joins the process group once it
knows its device (nccl on CUDA, gloo on CPU), wraps the model in
DistributedDataParallel, shards every split by rank, all-reduces the epoch's
sums, and lets only rank 0 print and write. ``--batch-size`` is per process:
the global batch is ``batch_size * world_size``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Sequence

from zoo.errors import ZooError
from zoo.text import first_line

TIMEOUT_ENV = "ZOO_DIST_TIMEOUT"  # seconds a collective may wait for the other ranks
STOPPED_BY_LAUNCHER = "was stopped by the launcher"


class DistributedError(ZooError):
    """The process group could not start, or lost one of its ranks."""


@dataclass
class DistContext:
    """Who this process is in a (possibly one-process) training job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints and writes."""
        return self.rank == 0

    def init(self, device: Any) -> None:
        """Join the process group (idempotent): nccl for CUDA devices, gloo otherwise."""
        if not self.enabled:
            return
        import datetime

        import torch.distributed as dist

        if dist.is_initialized():
            return
        backend = "nccl" if getattr(device, "type", "cpu") == "cuda" else "gloo"
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "1800")))
        addr = os.environ.get("MASTER_ADDR", "?")
        port = os.environ.get("MASTER_PORT", "?")
        try:
            dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world_size, timeout=timeout)
        except Exception as exc:  # the store and the backends raise several types
            text = str(exc)
            if "EADDRINUSE" in text or "address already in use" in text.lower():
                raise DistributedError(
                    f"port {port} on {addr} is already taken: pick another MASTER_PORT (torchrun --master-port),"
                    " or let torchrun --standalone / zoo train --nproc choose a free one"
                ) from None
            raise DistributedError(
                f"rank {self.rank} of {self.world_size} could not join the process group at {addr}:{port}"
                f" ({backend}): {first_line(text)}"
            ) from None
        self.initialized_here = True

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.initialized_here:
            import torch.distributed as dist

            if dist.is_initialized():
                # Leave together: a rank tearing gloo down while rank 0 still
                # writes its checkpoint can abort the job at the very end.
                dist.barrier()
                dist.destroy_process_group()
            self.initialized_here = False

    def all_reduce_sum(self, tensor: Any) -> Any:
        """Sum ``tensor`` over ranks in place (a no-op in one process)."""
        if self.enabled:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        """Wait until every rank got here (a no-op in one process)."""
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


def single_process() -> DistContext:
    """The context of an ordinary, one-process run."""
    return DistContext()


def from_env() -> DistContext:
    """The context torchrun describes through RANK/WORLD_SIZE/LOCAL_RANK, or one process."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise DistributedError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)") from None
    if world <= 1:
        return DistContext()
    if not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} is outside WORLD_SIZE={world}")
    _stop_cleanly_on_sigterm(rank)
    return DistContext(rank=rank, world_size=world, local_rank=local)


def _stop_cleanly_on_sigterm(rank: int) -> None:
    # torchrun sends SIGTERM to the surviving ranks when one fails; turn it
    # into an error with a message instead of a silent kill.
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        raise DistributedError(
            f"rank {rank} {STOPPED_BY_LAUNCHER} (signal {signum}), most likely because another rank"
            " failed; the last checkpoint written before it is intact, continue with --resume"
        )

    signal.signal(signal.SIGTERM, handler)


def wrap_model(model: Any, device: Any) -> Any:
    """DistributedDataParallel around ``model``; frozen parameters are not synchronised.

    DDP registers only parameters with ``requires_grad`` at construction, so a
    model with a frozen backbone syncs just its trainable part. With nothing to
    train there is nothing to sync and the model is returned as it is.
    """
    from torch.nn.parallel import DistributedDataParallel

    trainable = frozenset(id(p) for p in model.parameters() if p.requires_grad)
    if not trainable:
        return model
    device_ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    net = DistributedDataParallel(model, device_ids=device_ids)
    net.zoo_trainable = trainable
    return net


def needs_rewrap(net: Any) -> bool:
    """True when the set of trainable parameters changed since ``net`` was wrapped (a stage was unfrozen)."""
    module = getattr(net, "module", net)
    now = frozenset(id(p) for p in module.parameters() if p.requires_grad)
    return now != getattr(net, "zoo_trainable", frozenset())


def is_comm_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a collective that lost its peers."""
    try:
        import torch.distributed as dist

        if isinstance(exc, getattr(dist, "DistError", ())):
            return True
    except ImportError:  # pragma: no cover
        pass
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        key in text for key in ("gloo", "nccl", "connection closed", "connection reset", "broken pipe", "timed out")
    )


def launch_nproc(nproc: int, argv: Sequence[str]) -> int:
    """Re-run this command under ``torchrun --standalone --nproc_per_node NPROC`` and return its exit status.

    ``argv`` is the zoo command line with its global options (``--debug``,
    ``--no-plugins``) before the command. The ranks do not print their
    errors: they leave them in a folder, and the launcher prints each
    distinct one once, after torchrun (whose own traceback is kept quiet).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise DistributedError("--nproc cannot be used inside torchrun; drop it or run zoo directly")
    if nproc < 1:
        raise DistributedError(f"--nproc must be at least 1, got {nproc}")
    args = strip_option(list(argv), "--nproc")
    cmd = [sys.executable, "-m", "zoo.train.distributed", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "zoo", *args]
    env = dict(os.environ)
    # torchrun would set OMP_NUM_THREADS=1 with a warning; say so once ourselves.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    with tempfile.TemporaryDirectory(prefix="zoo-nproc-") as errors:
        env[CHILD_ERRORS_ENV] = errors
        try:
            code = subprocess.call(cmd, env=env)
        except KeyboardInterrupt:  # torchrun forwards the signal; its ranks save 'last'
            return 130
        for message in child_errors(errors):
            print(f"Error: {message}", file=sys.stderr)
    return code


def relaunch_args(argv: Sequence[str], command: str) -> list[str]:
    """The zoo arguments for the ranks: the global options, then ``command`` and its own arguments.

    ``argv`` is ``sys.argv[1:]``: ``--debug train net ...`` stays as it is,
    ``net ...`` (the command's arguments alone) gets ``command`` in front.
    """
    argv = list(argv)
    if command in argv:
        i = argv.index(command)
        if all(arg.startswith("-") for arg in argv[:i]):  # the root group's options are all flags
            return argv
    return [command, *argv]


CHILD_ERRORS_ENV = "ZOO_NPROC_ERRORS"  # where the ranks started by --nproc leave their error messages


def record_child_error(message: str) -> bool:
    """Under ``--nproc``, leave this rank's error for the launcher to print once; False elsewhere."""
    folder = os.environ.get(CHILD_ERRORS_ENV)
    if not folder or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    rank = os.environ.get("RANK", "0")
    try:
        with open(os.path.join(folder, f"rank{int(rank):05d}.txt"), "w", encoding="utf-8") as f:
            f.write(message)
    except (OSError, ValueError):
        return False
    return True


def child_errors(folder: str) -> list[str]:
    """The ranks' distinct messages, by rank; a rank stopped because another failed only when none other said more."""
    messages = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read().strip()
        if text and text not in messages:
            messages.append(text)
    first_hand = [m for m in messages if STOPPED_BY_LAUNCHER not in m]
    return first_hand or messages[:1]


def _torchrun(argv: Sequence[str]) -> int:
    """torchrun itself, without the traceback it prints when a rank fails (the rank said why)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # Its log lines ("Sending process ... SIGTERM", "failed (exitcode: 1)") repeat what the ranks say.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(get_args_parser().parse_args(list(argv)))
    except ChildFailedError as exc:
        _, failure = exc.get_first_failure()
        code = getattr(failure, "exitcode", 1)
        return code if isinstance(code, int) and code > 0 else 1
    return 0


def strip_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out


def release_group(dist: DistContext) -> None:
    """Leave the process group once the DDP wrapper is dropped (its reducer holds the group until collected)."""
    import gc

    gc.collect()
    dist.close()


def raise_lost_rank(trainer: Any, exc: Exception) -> None:
    """Turn a communication failure mid-run into one line that says what is intact."""
    if trainer.dist.enabled and is_comm_error(exc) and not isinstance(exc, ZooError):
        last = f"; the last checkpoint {trainer.out / 'last'} is intact" if trainer.out is not None else ""
        raise DistributedError(
            f"rank {trainer.dist.rank} lost contact with the other ranks during epoch {trainer.epoch + 1}"
            f" (did one of them fail?){last}; continue with --resume"
        ) from None


if __name__ == "__main__":  # the launcher above runs torchrun through here
    sys.exit(_torchrun(sys.argv[1:]))

"""What a library call changes in the process, put back when it returns; and weights swapped in for a while.

A run sets torch's intra-op thread count (one thread for small networks,
``threads=``) and seeds the global random generators (model initialisation,
dropout, mixup draws); :class:`ProcessState` records both before and restores
them after, so a notebook is left as it was. ``zoo.fit``, ``Trainer.fit`` and
``zoo.finetune`` do this.

glibc's ``mallopt`` setting (:func:`zoo.data.budget.keep_batches_off_the_heap`)
cannot be read back, so it cannot be restored: only the ``zoo finetune``
command, which owns its process, sets it.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class ProcessState:
    """Torch's thread count and global RNG states at creation; :meth:`restore` puts them back."""

    def __init__(self) -> None:
        import torch

        self.threads = torch.get_num_threads()
        self.cpu_rng = torch.get_rng_state()
        # CUDA's generators exist once CUDA is initialised; one created during the run has no "before".
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    def restore(self) -> None:
        import torch

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


@contextmanager
def process_restored() -> Iterator[ProcessState]:
    """Run a block, then put torch's thread count and global RNGs back as they were."""
    saved = ProcessState()
    try:
        yield saved
    finally:
        saved.restore()


def restores_process(fn: F) -> F:
    """Decorate a library entry point so it leaves threads and global RNGs as it found them."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with process_restored():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def swapped_weights(target: Any, source: Any) -> Iterator[Any]:
    """``target`` holding ``source``'s weights (a module of the same structure) inside the block, exactly its own after."""
    if source is None or source is target:
        yield target
        return
    kept = {k: v.detach().clone() for k, v in target.state_dict().items()}
    target.load_state_dict(source.state_dict())
    try:
        yield target
    finally:
        target.load_state_dict(kept)

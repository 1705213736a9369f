"""Checking up front that a model takes an input size: one forward pass of a dummy image.

A network whose classifier is sized for one input (the course's ``net``: a
512-wide ``fc1`` after two poolings of 32x32) fails deep inside its first
batch with a matmul error; probing before any data is decoded turns that into
a message naming the size the model takes.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from zoo.errors import ZooError
from zoo.registry import model_info
from zoo.text import first_line


def check_input_size(model: Any, input_size: Sequence[int], model_args: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ZooError` when ``model`` (a registry name or a built model) cannot take ``input_size``.

    A name is built (with ``model_args``) only when the size differs from its
    spec's; a built model is probed in eval mode and put back in the mode it
    was in. Nothing else changes: no parameters, no buffers, no RNG.
    """
    import torch

    from zoo.plugins import get_spec

    info = None if isinstance(model, str) else model_info(model)
    spec = get_spec(model if isinstance(model, str) else info.name) if (isinstance(model, str) or info) else None
    size = tuple(int(v) for v in input_size)
    if spec is not None and size[1:] == tuple(spec.input_size[1:]):
        return  # the size the architecture is defined at
    if isinstance(model, str):
        from zoo.factory import create_model

        with torch.random.fork_rng(devices=[]):  # building initialises weights from the global RNG
            model = create_model(model, **dict(model_args or {}))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *size), device=device))
    except (RuntimeError, ValueError, AssertionError) as exc:
        name = spec.name if spec is not None else type(model).__name__
        takes = "x".join(str(v) for v in spec.input_size) if spec is not None else "another size"
        raise ZooError(
            f"{name} takes {takes} input (its layers are sized for it); --input-size {'x'.join(map(str, size))}"
            f" does not fit it ({first_line(exc)}); use --input-size {takes}, or a model that adapts to the size"
        ) from None
    finally:
        model.train(was_training)

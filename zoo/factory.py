"""create_model(): from a registry name to an ``nn.Module`` under the classifier contract."""

from __future__ import annotations

from typing import Any

from zoo._lazy import resolve
from zoo.errors import ZooError
from zoo.plugins import get_spec
from zoo.registry import ModelInfo, ModelSpec


def create_model(
    name: str | ModelSpec,
    num_classes: int | None = None,
    in_chans: int | None = None,
    pretrained: bool | str = False,
    weights: str | None = None,
    **kwargs: Any,
):
    """Build the model registered as ``name``.

    ``num_classes`` and ``in_chans`` default to the spec's; other keyword
    arguments go to the family's builder (``kernel_size=5``, ``n_blocks=10``).
    ``pretrained=True`` loads the spec's first pretrained weights (a tag
    string picks another), found offline first; ``weights`` names a file or
    checkpoint directory to load instead. With another ``num_classes`` than
    the weights', the old classifier is dropped and a fresh one kept.
    """
    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 0):
        raise ZooError(f"num_classes must be a non-negative integer, got {num_classes!r}")
    if in_chans is not None and (not isinstance(in_chans, int) or in_chans < 1):
        raise ZooError(f"in_chans must be a positive integer, got {in_chans!r}")
    nc = spec.num_classes if num_classes is None else num_classes
    ic = spec.in_chans if in_chans is None else in_chans
    builder = resolve(spec.builder)
    arguments = {**dict(spec.kwargs), **kwargs}
    try:
        model = builder(num_classes=nc, in_chans=ic, **arguments)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise ZooError(f"{spec.name}: {exc}; see 'zoo info {spec.name}' for its arguments") from exc
        raise
    # What checkpoints need to rebuild this model later.
    model.zoo_info = ModelInfo(name=spec.name, kwargs=dict(kwargs), num_classes=nc, in_chans=ic)
    if pretrained or weights:
        from zoo.pretrained import load_pretrained

        tag = pretrained if isinstance(pretrained, str) else None
        load_pretrained(model, spec, tag=tag, weights=weights)
    return model

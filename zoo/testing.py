"""Helpers for testing zoo and zoo plugins.

``check_plugin(module)`` is the conformance kit for plugin authors: it runs a
plugin's hooks against a private registry and checks that every spec is
well-formed and every model builds, honours ``num_classes`` and follows the
classifier contract. ``make_image_folder`` writes a small, learnable image
folder for tests that train.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

# -- test settings -------------------------------------------------------------


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run with ``n`` intra-op threads, then restore. Tiny models on a shared 2-core
    machine run many times slower with two spinning OpenMP threads than with one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- tiny datasets -------------------------------------------------------------

# Saturated colours that stay far apart after JPEG coding and resizing.
_PALETTE = [
    (220, 40, 40), (40, 200, 60), (50, 70, 220), (230, 210, 40),
    (200, 50, 210), (40, 210, 210), (240, 140, 30), (120, 120, 120),
    (255, 255, 255), (20, 20, 20),
]


def make_image_folder(
    root: str | Path,
    classes: Sequence[str] = ("cat", "dog"),
    per_class: int = 16,
    size: int | tuple[int, int] = 32,
    *,
    split: bool = False,
    val_per_class: int = 6,
    fmt: str = "png",
    noise: int = 40,
    seed: int = 0,
) -> Path:
    """Write an image folder whose classes differ by colour and stripe direction.

    The task is easy on purpose, so a test can demand accuracy well above
    chance after a few epochs. With ``split=True`` it writes ``train/`` and
    ``val/`` sub-folders (``val_per_class`` images each). Returns ``root``.
    """
    from PIL import Image

    root = Path(root)
    w, h = (size, size) if isinstance(size, int) else size
    rng = random.Random(seed)
    parts = [("train", per_class), ("val", val_per_class)] if split else [("", per_class)]
    for part, count in parts:
        for index, name in enumerate(classes):
            folder = root / part / name if part else root / name
            folder.mkdir(parents=True, exist_ok=True)
            base = _PALETTE[index % len(_PALETTE)]
            horizontal = (index // len(_PALETTE)) % 2 == 1
            for i in range(count):
                img = Image.new("RGB", (w, h))
                px = img.load()
                for y in range(h):
                    for x in range(w):
                        stripe = ((y if horizontal else x) // max(1, w // 8)) % 2
                        shade = 0.75 if stripe else 1.0
                        px[x, y] = tuple(
                            max(0, min(255, int(c * shade) + rng.randint(-noise, noise))) for c in base
                        )
                img.save(folder / f"{i:04d}.{fmt}")
    return root


# -- the plugin conformance kit ------------------------------------------------


@dataclass
class PluginReport:
    """What :func:`check_plugin` found."""

    models: list[str] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)  # "model.tag" attached by register_weights
    weight_sources: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    exporters: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_plugin(
    plugin: Any,
    *,
    name: str = "plugin-under-test",
    build: bool = True,
    models: Iterable[str] | None = None,
    num_classes: int = 3,
    raise_on_problem: bool = True,
) -> PluginReport:
    """Check a plugin module (or object) the way the zoo will use it.

    Runs its hooks in a private plugin manager (the built-ins are loaded too,
    so name clashes with them show up), then for each model it registered
    (or those named in ``models``): the spec validates, the model builds with
    ``num_classes``, a forward pass at the spec's input size gives
    ``(2, num_classes)``, ``forward == forward_head(forward_features)``, and
    ``reset_classifier`` changes the output width. Raises ``AssertionError``
    listing every problem unless ``raise_on_problem=False``.
    """
    from zoo.plugins import DEFAULT_PLUGINS, ZooPluginManager

    manager = ZooPluginManager()
    manager.load(allow=[], defaults=DEFAULT_PLUGINS)
    info = manager.register_plugin(plugin, name=name)
    report = PluginReport()
    report.problems.extend(info.errors)
    for kind in ("models", "weights", "weight_sources", "datasets", "exporters", "commands"):
        getattr(report, kind).extend(info.registered.get(kind, []))
    if not any(info.registered.values()) and not info.errors:
        report.problems.append(f"{name}: implements no hook that registered anything")
    if build:
        for model_name in models if models is not None else report.models:
            try:
                spec = manager.models.get(model_name)
            except Exception as exc:
                report.problems.append(f"{model_name}: {exc}")
                continue
            report.problems.extend(check_model(spec, num_classes=num_classes, check_params=True))
    if build:
        for attached in report.weights:
            model_name, _, tag = attached.rpartition(".")
            report.problems.extend(check_weights(manager.models.get(model_name), tag))
    if raise_on_problem and report.problems:
        raise AssertionError("plugin check failed:\n  " + "\n  ".join(report.problems))
    return report


def check_weights(spec: Any, tag: str) -> list[str]:
    """Problems with one set of a spec's weights (empty when fine).

    The record must be consistent (class names for its class count, mean and
    std of one length). When the file is on this machine it is loaded into
    the model, which must then give one logit per class name.
    """
    import torch

    from zoo.factory import create_model
    from zoo.pretrained import locate_weights, pick_weights

    label = f"{spec.name}.{tag}"
    weights = pick_weights(spec, tag)
    problems = []
    if weights.class_names is not None and weights.num_classes not in (None, len(weights.class_names)):
        problems.append(f"{label}: {len(weights.class_names)} class names for {weights.num_classes} classes")
    if (weights.mean is None) != (weights.std is None) or (weights.mean and len(weights.mean) != len(weights.std)):
        problems.append(f"{label}: mean and std must both be given, with the same length")
    if problems or locate_weights(spec, weights) is None:
        return problems
    try:
        model = create_model(spec, num_classes=weights.num_classes, pretrained=tag).eval()
        size = weights.input_size or spec.input_size
        with torch.no_grad():
            out = model(torch.randn(1, *size))
    except Exception as exc:
        return [f"{label}: does not load: {type(exc).__name__}: {exc}"]
    width = len(weights.class_names) if weights.class_names else weights.num_classes
    if width is not None and out.shape[-1] != width:
        problems.append(f"{label}: the model gives {out.shape[-1]} logits, the weights name {width} classes")
    return problems


def check_model(spec: Any, *, num_classes: int = 3, batch: int = 2, check_params: bool = False) -> list[str]:
    """Problems with one spec's model under the classifier contract (empty when fine).

    ``check_params`` also builds the model at its defaults and compares the
    parameter count with ``spec.params`` (a second build, so off by default).
    """
    import torch

    from zoo.factory import create_model
    from zoo.summary import count_parameters

    problems: list[str] = []
    label = spec.name
    if check_params and spec.params is not None:
        try:
            actual = count_parameters(create_model(spec))
        except Exception as exc:
            return [f"{label}: does not build at its defaults: {type(exc).__name__}: {exc}"]
        if actual != spec.params:
            problems.append(f"{label}: spec says {spec.params:,} parameters, the model has {actual:,}")
    try:
        model = create_model(spec, num_classes=num_classes)
    except Exception as exc:
        return [f"{label}: does not build: {type(exc).__name__}: {exc}"]
    for attr in ("num_features", "forward_features", "forward_head", "get_classifier", "reset_classifier"):
        if not hasattr(model, attr):
            problems.append(f"{label}: missing {attr} (the classifier contract)")
    if problems:
        return problems
    model.eval()
    x = torch.randn(batch, *spec.input_size)
    with torch.no_grad():
        try:
            out = model(x)
            feats = model.forward_features(x)
            via_head = model.forward_head(feats)
            pre = model.forward_head(feats, pre_logits=True)
        except Exception as exc:
            return [f"{label}: forward pass failed: {type(exc).__name__}: {exc}"]
    if tuple(out.shape) != (batch, num_classes):
        problems.append(f"{label}: output shape {tuple(out.shape)}, expected {(batch, num_classes)}")
    if not torch.allclose(out, via_head, atol=1e-5):
        problems.append(f"{label}: forward(x) differs from forward_head(forward_features(x))")
    # timm calls the pre-logits width head_hidden_size where the head has a hidden layer
    width = getattr(model, "head_hidden_size", None) or model.num_features
    if pre.ndim != 2 or pre.shape[1] != width:
        problems.append(f"{label}: pre-logits shape {tuple(pre.shape)} does not match its width {width}")
    model.reset_classifier(num_classes + 2)
    with torch.no_grad():
        out2 = model(x)
        feats2 = model.forward_features(x)
    if tuple(out2.shape) != (batch, num_classes + 2):
        problems.append(f"{label}: reset_classifier({num_classes + 2}) gives output {tuple(out2.shape)}")
    if not _same(feats, feats2):
        problems.append(f"{label}: reset_classifier changed forward_features")
    return problems


def _same(a: Any, b: Any) -> bool:
    """Tensors, or lists/tuples of them (some timm models return several feature maps)."""
    import torch

    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return torch.allclose(a, b)

"""Write the data files behind the ``timm/*`` and ``torchvision/*`` pass-through models.

``zoo list 'timm/vit_*'`` must not import timm or torch, so the pass-through
plugins read what they register from two JSON files committed next to them.
This script regenerates those files from the installed libraries::

    python -m zoo.tools.passthrough            # rewrite both files
    python -m zoo.tools.passthrough --check    # exit 1 when they are stale

Parameter counts come from building each model on the ``meta`` device (no
memory, no init; on the CPU where a builder cannot run on ``meta``). Takes a
few minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "default_plugins"
TIMM_FILE = DATA_DIR / "timm_models.json"
TORCHVISION_FILE = DATA_DIR / "torchvision_models.json"

# torchvision weight enum names -> the short tags timm uses for the same files
_TV_TAGS = {"IMAGENET1K_V1": "tv_in1k", "IMAGENET1K_V2": "tv2_in1k"}


def _first(value: Any) -> str | None:
    # timm names two heads (head, head_dist) for distilled models: the first is the classifier.
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _floats(values: Any) -> list[float]:
    return [round(float(v), 6) for v in values]


def _meta_params(build: Any) -> int | None:
    import torch

    try:
        with torch.device("meta"):
            model = build()
    except Exception:  # some builders compute on tensors and cannot run on meta
        return None
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def timm_rows() -> list[dict[str, Any]]:
    """One row per ``timm.list_models()`` architecture, from its default pretrained config."""
    import timm
    from timm.models import get_pretrained_cfg
    from timm.models._registry import _model_to_module

    rows = []
    for name in timm.list_models():
        cfg = get_pretrained_cfg(name)
        row: dict[str, Any] = {
            "name": name,
            "family": _model_to_module.get(name, ""),
            "input_size": list(cfg.input_size),
            "num_classes": cfg.num_classes,
            "mean": _floats(cfg.mean),
            "std": _floats(cfg.std),
            "first_conv": _first(cfg.first_conv),
            "classifier": _first(cfg.classifier),
            "params": _meta_params(lambda: timm.create_model(name, pretrained=False)),
        }
        if cfg.hf_hub_id:
            row["weights"] = [{"tag": cfg.tag or "default", "hf_hub_id": cfg.hf_hub_id}]
        rows.append(row)
    return rows


def torchvision_rows() -> list[dict[str, Any]]:
    """One row per torchvision classification model; every weight enum member as a weight entry."""
    import torch
    from torchvision import models

    from zoo.models.torchvision_models import TorchvisionClassifier, find_first_conv

    rows = []
    for name in models.list_models(module=models):
        extra = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        try:
            with torch.device("meta"):
                model = models.get_model(name, weights=None, **extra)
        except Exception:
            model = models.get_model(name, weights=None, **extra)
        wrapped = TorchvisionClassifier(model, name)
        enum = list(models.get_model_weights(name))
        first = enum[0].transforms()
        size = getattr(model, "image_size", None) or first.crop_size[0]
        layout = "torchvision_densenet" if name.startswith("densenet") else "torchvision"
        # Built without transform_input, these two expect inputs normalised to mean = std = 0.5.
        half = name in ("googlenet", "inception_v3")
        weights = []
        for member in enum:
            t = member.transforms()
            categories = member.meta.get("categories")
            weights.append({
                "tag": _TV_TAGS.get(member.name, member.name.lower()),
                "url": member.url,
                "filename": member.url.rsplit("/", 1)[-1],
                "layout": layout,
                "num_classes": len(categories) if categories else None,
                "mean": [0.5, 0.5, 0.5] if half else _floats(t.mean),
                "std": [0.5, 0.5, 0.5] if half else _floats(t.std),
                "description": f"torchvision {member.name}" + (" (expects mean=std=0.5 inputs)" if half else ""),
            })
        rows.append({
            "name": name,
            "family": models.get_model_builder(name).__module__.rsplit(".", 1)[-1],
            "input_size": [3, size, size],
            "num_classes": 1000,
            "mean": _floats(first.mean),
            "std": _floats(first.std),
            "first_conv": find_first_conv(model)[0],
            "classifier": wrapped.classifier_path,
            # Counted, not torchvision's figure: Inception v3's includes the auxiliary head we leave out.
            "params": sum(p.numel() for p in wrapped.parameters()),
            "weights": weights,
        })
    return rows


def render(rows: list[dict[str, Any]], library: str, version: str) -> str:
    """JSON with one model per line, so regenerations diff well."""
    head = json.dumps({"library": library, "version": version, "generator": "python -m zoo.tools.passthrough"})
    body = ",\n".join(json.dumps(row, separators=(",", ":")) for row in rows)
    return f'{{"about": {head},\n"models": [\n{body}\n]}}\n'


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Regenerate (or with --check, verify) the pass-through data files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import timm
    import torchvision

    outputs = {
        TIMM_FILE: render(timm_rows(), "timm", timm.__version__),
        TORCHVISION_FILE: render(torchvision_rows(), "torchvision", torchvision.__version__),
    }
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path} is stale: run python -m zoo.tools.passthrough", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        _write(path, text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

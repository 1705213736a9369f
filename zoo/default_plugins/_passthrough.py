"""Specs for the pass-through plugins, read from the JSON files next to this module.

The files are written by ``python -m zoo.tools.passthrough`` from the
installed timm and torchvision; reading them costs a few milliseconds and
imports neither library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.registry import ModelSpec, PretrainedWeights

_HERE = Path(__file__).resolve().parent


def load_rows(filename: str) -> list[dict[str, Any]]:
    """The model rows of one data file."""
    with open(_HERE / filename, encoding="utf-8") as handle:
        return json.load(handle)["models"]


def _weights(row: dict[str, Any], layout: str) -> tuple[PretrainedWeights, ...]:
    out = []
    for w in row.get("weights", ()):
        mean, std = w.get("mean", row["mean"]), w.get("std", row["std"])
        out.append(
            PretrainedWeights(
                tag=w["tag"],
                url=w.get("url"),
                filename=w.get("filename"),
                hf_hub_id=w.get("hf_hub_id"),
                layout=w.get("layout", layout),
                num_classes=w.get("num_classes", row["num_classes"]),
                mean=tuple(mean),
                std=tuple(std),
                description=w.get("description", ""),
            )
        )
    return tuple(out)


def passthrough_specs(filename: str, library: str, builder: str, layout: str) -> list[ModelSpec]:
    """One spec per row, named ``<library>/<name>``, built by ``builder(arch=<name>, ...)``."""
    specs = []
    for row in load_rows(filename):
        weights = _weights(row, layout)
        specs.append(
            ModelSpec(
                name=f"{library}/{row['name']}",
                builder=builder,
                family=row["family"],
                tags=(library, "pretrained") if weights else (library,),
                input_size=tuple(row["input_size"]),
                num_classes=row["num_classes"],
                mean=tuple(row["mean"]),
                std=tuple(row["std"]),
                first_conv=row["first_conv"],
                classifier=row["classifier"],
                params=row["params"],
                kwargs={"arch": row["name"]},
                weights=weights,
                description=f"{library}'s {row['name']} (pass-through)",
            )
        )
    return specs

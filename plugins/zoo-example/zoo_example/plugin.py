"""The hooks zoo calls. Nothing heavy is imported here: torch loads only in builders."""

from __future__ import annotations

import zoo
from zoo import ExportFormat, ModelSpec


@zoo.hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="example_tinynet",
            builder="zoo_example.models:tinynet",
            family="example",
            tags=("cifar", "example"),
            input_size=(3, 32, 32),
            num_classes=10,
            mean=(0.5, 0.5, 0.5),
            std=(0.25, 0.25, 0.25),
            first_conv="features.0",
            classifier="fc",
            params=24_458,
            description="three conv blocks and a linear classifier",
        )
    )


@zoo.hookimpl
def register_exporters(register):
    register(
        ExportFormat(
            name="torchscript",
            export="zoo_example.exporters:export_torchscript",
            suffix=".pt",
            description="TorchScript via torch.jit.trace",
        )
    )


@zoo.hookimpl
def register_commands(register):
    from zoo_example.commands import count_params

    register(count_params)

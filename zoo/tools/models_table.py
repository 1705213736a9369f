"""Generate docs/models.md, the table of built-in architectures, from the registry.

    python -m zoo.tools.models_table            # rewrite docs/models.md
    python -m zoo.tools.models_table --check    # exit 1 when it is stale

Reads specs only (``spec.params``), so it builds no model and imports no torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo.registry import ModelSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
PASSTHROUGH = ("timm/", "torchvision/")

INTRO = """\
# Models

Every built-in architecture, generated from the registry by
`python -m zoo.tools.models_table` (do not edit by hand). Parameter counts
are at the default number of classes and input channels; the normalisation
is the default mean / std a model is trained and evaluated with.

Beyond these, every timm architecture is available as `timm/<name>`
({timm} models) and torchvision's classification models as
`torchvision/<name>` ({tv} models): `zoo list 'timm/vit_*'`. Their specs come
from data files generated from the installed libraries by
`python -m zoo.tools.passthrough` (re-run it after upgrading timm or torchvision).

Conventions:
- Every model follows the classifier contract (`forward_features`,
  `forward_head(pre_logits=...)`, `get_classifier`, `reset_classifier`).
- `net_res_deep` reproduces the book's code, whose 100 residual blocks are one
  module repeated (shared weights); `shared_blocks=False` makes them independent.
- NiN has no dense layer: its classifier is the last 1x1 conv, one map per class,
  followed by global average pooling.
- The `ae_*` autoencoders have 0 classes; built with `num_classes > 0` they give an
  `EncoderClassifier` on their encoder (`zoo finetune --encoder CKPT`).
- GoogLeNet is built without auxiliary heads; its torchvision weights expect
  inputs normalised with mean = std = 0.5.
"""


def _fmt_norm(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _row(spec: ModelSpec) -> str:
    cells = [
        f"`{spec.name}`" + (f" ({', '.join(spec.aliases)})" if spec.aliases else ""),
        spec.family,
        str(spec.year or ""),
        spec.paper.replace("|", "/"),
        "x".join(map(str, spec.input_size)),
        f"{spec.params:,}" if spec.params else "?",
        str(spec.num_classes),
        f"({_fmt_norm(spec.mean)}) / ({_fmt_norm(spec.std)})",
        ", ".join(w.tag for w in spec.weights),
    ]
    return "| " + " | ".join(cells) + " |"


def render() -> str:
    """The whole page, from the built-in specs of the loaded registry."""
    from zoo.plugins import list_specs

    specs = list_specs(source="builtin")
    own = sorted((s for s in specs if not s.name.startswith(PASSTHROUGH)), key=lambda s: (s.family, s.year or 0))
    timm_count = sum(s.name.startswith("timm/") for s in specs)
    tv_count = sum(s.name.startswith("torchvision/") for s in specs)
    header = [
        "| name (aliases) | family | year | paper | input | params | classes | mean / std | pretrained weights |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    body = "\n".join([*header, *(_row(s) for s in own)])
    return INTRO.format(timm=timm_count, tv=tv_count) + "\n" + body + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/models.md, or with --check report whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether docs/models.md is up to date")
    args = parser.parse_args(argv)
    from zoo import plugins

    plugins.configure(no_plugins=True)  # third-party plugins do not belong in the built-in table
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is stale: run python -m zoo.tools.models_table", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(DOC)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""docs/models.md is current, and listing models never imports torch."""

from __future__ import annotations

import subprocess
import sys

from zoo.tools.models_table import DOC, render


def test_models_table_is_up_to_date(fresh_plugins):
    assert DOC.read_text(encoding="utf-8") == render(), "docs/models.md is stale: run python -m zoo.tools.models_table"


def test_models_table_lists_every_builtin(fresh_plugins):
    from zoo.default_plugins.models import builtin_specs

    text = DOC.read_text(encoding="utf-8")
    for spec in builtin_specs():
        assert f"`{spec.name}`" in text
    assert "18,090" in text and "21,797,672" in text


LIST_WITHOUT_TORCH = """
import sys
from zoo.cli import main
for args in (["list"], ["list", "timm/vit_*"], ["list", "--all", "--json"]):
    try:
        main(args)
    except SystemExit as exc:
        assert not exc.code, (args, exc.code)
import zoo.cli.models
heavy = [m for m in ("torch", "timm", "torchvision") if m in sys.modules]
assert not heavy, heavy
"""


def test_zoo_list_imports_no_torch():
    result = subprocess.run([sys.executable, "-c", LIST_WITHOUT_TORCH], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "timm/vit_base_patch16_224" in result.stdout
    assert "resnet34" in result.stdout

"""The house's layers hold: import-linter's contracts in pyproject.toml pass, with no exceptions."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_contracts_have_no_exceptions():
    contracts = _contracts()
    assert {c["type"] for c in contracts} == {"layers", "forbidden"}
    for contract in contracts:
        assert not contract.get("ignore_imports"), contract["name"]


def test_every_top_level_module_has_a_layer():
    layered = {part.strip() for c in _contracts() if c["type"] == "layers"
               for layer in c["layers"] for part in layer.replace("|", ":").split(":")}
    modules = {f"zoo.{p.stem}" for p in (ROOT / "zoo").glob("*.py") if p.stem not in ("__init__", "__main__")}
    modules |= {f"zoo.{p.name}" for p in (ROOT / "zoo").iterdir() if (p / "__init__.py").is_file()}
    modules.discard("zoo.runtime")  # apart, held by its own contract
    assert modules - layered == set()


def test_lint_imports_passes():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout

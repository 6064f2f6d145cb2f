"""Packaging: the package list and the LM code under the selftrain namespace."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

# tomllib is Python >= 3.11 (the tested version); on 3.10 these checks are skipped.
tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# Where the repository's own Python code lives (benchmarks and recipes import the library too).
SOURCE_ROOTS = ["selftrain", "lm", "tests", "benchmarks", "recipes", "scripts", "cli.py"]


def test_every_package_under_selftrain_is_listed_and_lm_is_selftrain_lm():
    setuptools = PYPROJECT["tool"]["setuptools"]
    folders = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "selftrain").rglob("__init__.py")}
    assert set(setuptools["packages"]) == folders | {"selftrain.lm"}
    assert setuptools["package-dir"] == {"selftrain.lm": "lm"}
    assert not list((REPO / "lm").rglob("*/__init__.py"))  # a sub-package of lm/ would need its own entry


def test_the_lm_code_is_imported_as_selftrain_lm():
    import selftrain.lm
    import selftrain.lm.build

    assert Path(selftrain.lm.__file__).resolve() == REPO / "lm" / "__init__.py"
    assert selftrain.lm.build_lm is selftrain.lm.build.build_lm and selftrain.lm.build.log.name == "selftrain.lm.build"


def test_no_code_imports_a_top_level_lm_package():
    offenders = []
    for root in SOURCE_ROOTS:
        path = REPO / root
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                if any(name == "lm" or name.startswith("lm.") for name in names):
                    offenders.append(f"{source.relative_to(REPO)}:{node.lineno}")
    assert offenders == []

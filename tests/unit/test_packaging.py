"""Packaging: the package list, the LM code under the selftrain namespace, the pins inside the ranges."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# Where the repository's own Python code lives (benchmarks and recipes import the library too).
SOURCE_ROOTS = ["selftrain", "lm", "tests", "benchmarks", "recipes", "scripts", "cli.py"]


def _constraints() -> dict[str, Requirement]:
    lines = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = [Requirement(line) for line in (raw.split("#")[0].strip() for raw in lines) if line]
    return {canonicalize_name(pin.name): pin for pin in pins}


def _declared() -> dict[str, Requirement]:
    project = PYPROJECT["project"]
    texts = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    return {canonicalize_name(req.name): req for req in map(Requirement, texts)}


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


def test_each_pinned_version_lies_inside_the_declared_range():
    declared, pins = _declared(), _constraints()
    assert set(pins) <= set(declared), sorted(set(pins) - set(declared))
    for name, pin in pins.items():
        exact = [spec.version for spec in pin.specifier if spec.operator == "=="]
        assert len(exact) == 1, f"{pin}: constraints.txt pins exact versions"
        assert declared[name].specifier.contains(exact[0], prereleases=True), f"{pin} is outside {declared[name]}"
    # The core stack the README names is pinned.
    assert {"torch", "torchaudio", "speechbrain", "kenlm", "pyctcdecode", "numpy", "jiwer"} <= set(pins)

"""Guardrails on the shape of the code, checked on the source (AST), without importing it.

- ``core/`` stays QGIS-free: no ``qgis``, ``PyQt*``, ``sip`` import anywhere under it.
- ``processing_provider/base.py`` never imports its children (no sibling module import).
- every module that defines an ``SmAlgorithm`` subclass is imported by ``provider.py``
  (otherwise the algorithm silently never reaches the toolbox).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = {"qgis", "PyQt", "PyQt4", "PyQt5", "PyQt6", "sip"}


def _imports(path: Path) -> list[tuple[int, str, int]]:
    """``(level, module, line)`` for every import in ``path``; ``from . import x`` gives module ``x``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(0, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module:
                out.append((node.level, node.module, node.lineno))
            else:
                out += [(node.level, alias.name, node.lineno) for alias in node.names]
    return out


CORE_FILES = sorted((ROOT / "core").rglob("*.py"))


def test_core_has_python_files():
    assert CORE_FILES, "core/ has no Python file: the guardrail below would check nothing"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_does_not_import_qgis_or_qt(path: Path):
    bad = [
        f"{path.relative_to(ROOT)}:{line}: import {module}"
        for level, module, line in _imports(path)
        if level == 0 and module.split(".")[0] in FORBIDDEN_IN_CORE
    ]
    assert not bad, "core/ must stay QGIS-free (numpy, GDAL, scikit-learn, onnxruntime only):\n" + "\n".join(bad)


def test_base_does_not_import_its_children():
    base = ROOT / "processing_provider" / "base.py"
    siblings = [f"line {line}: from .{module}" for level, module, line in _imports(base) if level == 1]
    absolute = [f"line {line}: {module}" for level, module, line in _imports(base)
                if level == 0 and module.split(".")[0] == "processing_provider"]
    assert not siblings + absolute, "base.py must not know the algorithms: " + "; ".join(siblings + absolute)


def _defines_algorithm(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                if name == "SmAlgorithm":
                    return True
    return False


def test_every_algorithm_module_is_registered_in_provider():
    folder = ROOT / "processing_provider"
    imported = {module for level, module, _ in _imports(folder / "provider.py") if level == 1}
    modules = [p.stem for p in sorted(folder.glob("*.py")) if p.stem != "base" and _defines_algorithm(p)]
    assert modules, "no algorithm module found: the check would be vacuous"
    missing = [m for m in modules if m not in imported]
    assert not missing, f"provider.py does not import algorithm module(s) {missing}: add them to ALGORITHMS"

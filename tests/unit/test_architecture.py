"""Guardrails on the shape of the code, checked on the source (AST), without importing it.

- ``core/`` stays QGIS-free: no ``qgis``, ``PyQt*``, ``sip`` import anywhere under it.
- ``core/`` is a few rooms, each importing only from rooms below it (:data:`ROOMS`):
  raster < inputs < io < evaluation < learn < methods; the top-level modules (errors, deps) are
  below every room.
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


#: The rooms of core/, lowest first: a module may import from its own room and from rooms below.
ROOMS = ("raster", "inputs", "io", "evaluation", "learn", "methods")
#: Modules allowed at the top of core/ (below every room, importing no room).
TOP_LEVEL = {"__init__", "errors", "deps"}


def _room_of(module_path: tuple[str, ...]) -> int:
    """Rank of a core module given as path parts below core/ (-1 for the top-level modules)."""
    return ROOMS.index(module_path[0]) if module_path and module_path[0] in ROOMS else -1


def _core_target(path: Path, level: int, module: str) -> tuple[str, ...]:
    """Parts below core/ of the module an import in ``path`` names ('' parts dropped)."""
    here = list(path.relative_to(ROOT / "core").with_suffix("").parts)
    package = here if here[-1] == "__init__" else here[:-1]
    if here[-1] == "__init__":
        package = here[:-1]
    if level == 0:
        parts = module.split(".")
        return tuple(parts[1:]) if parts[0] == "core" else ("<outside>",)
    base = package[: len(package) - (level - 1)] if level > 1 else package
    if len(package) < level - 1:
        return ("<outside>",)
    return tuple(base + (module.split(".") if module else []))


def test_core_is_rooms_and_few_top_level_modules():
    top = {p.stem for p in (ROOT / "core").glob("*.py")}
    assert top <= TOP_LEVEL, f"modules at the top of core/ beyond {sorted(TOP_LEVEL)}: {sorted(top - TOP_LEVEL)}"
    rooms = {p.name for p in (ROOT / "core").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms == set(ROOMS), f"core/ rooms {sorted(rooms)} differ from the declared {ROOMS}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_only_from_its_room_or_below(path: Path):
    own = _room_of(path.relative_to(ROOT / "core").parts)
    bad = []
    for level, module, line in _imports(path):
        if level == 0 and module.split(".")[0] != "core":
            continue
        target = _core_target(path, level, module)
        if target == ("<outside>",):
            bad.append(f"line {line}: imports outside core/ ({'.' * level}{module})")
            continue
        rank = _room_of(target)
        if rank > own:
            bad.append(f"line {line}: {'/'.join(path.relative_to(ROOT / 'core').parts[:1])} imports from the higher "
                       f"room '{ROOMS[rank]}' ({'.' * level}{module})")
    assert not bad, f"{path.relative_to(ROOT)}: rooms are {' < '.join(ROOMS)}:\n" + "\n".join(bad)


def test_the_room_guardrail_catches_an_upward_import(tmp_path):
    """The check above must be able to fail: an io module importing methods is flagged."""
    fake = ROOT / "core" / "io" / "output.py"
    assert _room_of(_core_target(fake, 2, "methods.regression")) > _room_of(fake.relative_to(ROOT / "core").parts)
    assert _room_of(_core_target(fake, 1, "atomic")) == _room_of(fake.relative_to(ROOT / "core").parts)
    assert _core_target(fake, 2, "errors") == ("errors",) and _room_of(("errors",)) == -1

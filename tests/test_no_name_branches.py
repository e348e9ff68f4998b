"""Callers branch on declared method capabilities, never on method names or families.

Scans the orchestration code (the app's helpers, the CLI, evaluation, the engine and the robustness
loops) for comparisons with a registered method name or a family string, and for any comparison
involving ``.family``. The scanner itself is checked on planted violations.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from explorer.recon.base import available_methods

ROOT = Path(__file__).resolve().parents[1] / "explorer"
LAYERS = ("ui", "cli", "engine", "robustness", "study", "teaching", "viewer", "training", "figures", "readers")
SCANNED = [*sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")),
           *sorted((ROOT.parent / "pages").glob("*.py"))]
FORBIDDEN = {m.name for m in available_methods()} | {m.family for m in available_methods()}


def _strings(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_strings(e) for e in node.elts)) if node.elts else set()
    return set()


def _mentions_family(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "family" for n in ast.walk(node))


def violations(source: str, filename: str = "<string>") -> list[str]:
    """``file:line: text`` of every comparison that branches on a method name or family."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        names = set().union(*(_strings(o) for o in operands)) & FORBIDDEN
        if names or any(_mentions_family(o) for o in operands):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scanner_catches_planted_branches():
    assert violations('if spec.family == "untrained": pass')
    assert violations('if name in ("unet", "varnet"): pass')
    assert violations('ok = kind != "varnet"')
    assert violations('x = [s for s in specs if s.family in FAMILIES]')
    assert not violations('if caps.cost == "long": pass')
    assert not violations('if mask.type == "poisson": pass')


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_orchestration_code_never_branches_on_method_names_or_families(path):
    assert violations(path.read_text(), str(path)) == []


ORCHESTRATION = ("explorer.engine", "explorer.cli", "explorer.ui", "explorer.training", "explorer.robustness",
                 "explorer.study")


@pytest.mark.parametrize("path", sorted((ROOT / "recon").glob("*.py")), ids=lambda p: p.name)
def test_the_method_layer_never_imports_the_orchestration_layer(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not [m for m in imported if m.startswith(ORCHESTRATION)]

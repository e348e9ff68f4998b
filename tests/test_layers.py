"""The layout holds: the import graph of ``explorer/`` (lazy imports included) has no cycle and no import against the
layer order of CONTRIBUTING.md; the root keeps the MRI core only; only explorer/resources.py builds paths from
``__file__``. The checker itself is tested on planted violations."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.study.provenance import graph, imports, modules

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "explorer"
#: Lowest first: a module may import from its own layer and the layers before it.
ORDER = ("core", "data", "figures", "viewer", "recon", "engine", "robustness", "training", "teaching", "study", "readers",
         "cli", "ui", "entry")
CORE = {"__init__", "__main__", "device", "errors", "espirit", "export", "masks", "metrics", "physics", "resources"}


def layer(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "entry" if name == "explorer.__main__" else "core"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle reached by a depth-first walk (one per back edge)."""
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node, [])
    return found


def back_arrows(edges: dict[str, set[str]]) -> list[str]:
    """Imports from a later layer into an earlier one."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return [f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a, targets in sorted(edges.items()) for b in sorted(targets)
            if rank[layer(b)] > rank[layer(a)]]


def test_the_checker_finds_planted_cycles_and_back_arrows():
    edges = {"explorer.data.a": {"explorer.ui.b"}, "explorer.ui.b": {"explorer.ui.c"}, "explorer.ui.c": {"explorer.ui.b"}}
    assert cycles(edges) == [["explorer.ui.b", "explorer.ui.c", "explorer.ui.b"]]
    assert back_arrows(edges) == ["explorer.data.a (data) imports explorer.ui.b (ui)"]
    lazy = "def f():\n    from explorer.ui import cache  # noqa\n"
    assert imports("explorer.ui.state", lazy, {"explorer.ui.cache", "explorer.ui.state"}) == {"explorer.ui.cache"}


def test_every_folder_is_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders <= set(ORDER)


def test_no_import_cycle():
    assert cycles(graph(modules())) == []


def test_no_import_against_the_layer_order():
    assert back_arrows(graph(modules())) == []


def test_the_root_keeps_the_mri_core():
    root = {p.stem for p in PACKAGE.glob("*.py")}
    assert root <= CORE and len(root - {"__init__", "__main__"}) <= 10


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_resources_locates_files_from_its_own_path(path):
    uses = "__file__" in path.read_text()
    assert not uses or path == PACKAGE / "resources.py"

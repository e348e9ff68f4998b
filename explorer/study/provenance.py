"""What a measured number depends on: the static import graph of ``explorer/`` and a hash of the code a command runs.

A results file records :func:`code_hash` of its command's modules: the modules it names and every ``explorer`` module
they import, at the top level or inside functions (the static graph; modules loaded by name, such as a registry's
``BUILTIN_MODULES``, are named explicitly by the measurement), plus data files such as checkpoints. Python sources are
hashed by their syntax tree without docstrings, so editing a comment or a docstring does not make a result stale; any
change to the code does.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from explorer.resources import import_root


def modules(package: Path | None = None) -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package (``explorer/`` by default)."""
    package = package or import_root() / "explorer"
    out = {}
    for path in sorted(package.rglob("*.py")):
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(name: str, source: str, known: set[str], package: bool = False) -> set[str]:
    """The modules of ``known`` that ``source`` (module ``name``; ``package``: an ``__init__``) imports anywhere in it,
    at the top level or inside functions."""
    parts = name.split(".") if package else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = parts[:len(parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
            for alias in node.names:
                full = f"{module}.{alias.name}"
                out.add(full if full in known else module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in known and m != name}


def script_imports(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` a script outside the package (e.g. ``bench/bench_x.py``) imports anywhere in it."""
    return imports("__script__", path.read_text(), known)


def graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """The import graph ``{module: modules it imports}`` of the modules ``found`` (:func:`modules`)."""
    known = set(found)
    return {name: imports(name, path.read_text(), known, path.name == "__init__.py") for name, path in found.items()}


def closure(entries: tuple[str, ...] | list[str], found: dict[str, Path] | None = None) -> list[str]:
    """``entries`` (dotted module names) and every module they import, directly or not, sorted.

    Raises:
        KeyError: an entry that is not a module of the package.
    """
    found = found or modules()
    edges = graph(found)
    missing = [e for e in entries if e not in found]
    if missing:
        raise KeyError(f"not a module of the package: {', '.join(missing)}")
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges[name] - seen)
    return sorted(seen)


def _canonical(node) -> object:
    """A syntax tree as plain nested lists, the same on every Python version: node type and its non-empty fields
    (Python 3.12 adds ``type_params``, 3.13 drops empty fields from ``ast.dump``)."""
    if isinstance(node, ast.AST):
        fields = [(name, _canonical(value)) for name, value in ast.iter_fields(node)
                  if name not in ("type_params", "type_comment") and value not in (None, [])]
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [_canonical(item) for item in node]
    return repr(node)


def source_digest(source: str) -> str:
    """The sha256 of a Python source's syntax tree without docstrings (comments and layout do not count; the same on
    every Python version)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(repr(_canonical(tree)).encode()).hexdigest()


def code_hash(entries: tuple[str, ...], files: tuple[str, ...] = (), root: Path | None = None) -> tuple[str, list[str]]:
    """One hash of the modules ``entries`` import (:func:`closure`) and of the data ``files`` (paths relative to
    ``root``, by default the folder holding the app and ``assets/``, e.g. ``assets/checkpoints/unet_knee.pt``; a
    ``.py`` script by its syntax tree like a module; an absent file hashes as absent).

    Returns:
        ``(hex digest, the modules and files it covers)``.
    """
    from explorer.resources import root as data_root  # noqa: PLC0415

    root = root or data_root()
    found = modules()
    parts = []
    names = closure(entries, found)
    for name in names:
        parts.append(f"{name}:{source_digest(found[name].read_text())}")
    for rel in sorted(files):
        path = root / rel
        if not path.is_file():
            digest = "absent"
        elif path.suffix == ".py":  # a script: its syntax tree, as for modules
            digest = source_digest(path.read_text())
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        parts.append(f"{rel}:{digest}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest(), names + sorted(files)


__all__ = ["closure", "code_hash", "graph", "imports", "modules", "source_digest"]

"""One rule for every path a user or a file names in the app (spec data and checkpoints, reference checkpoints,
the Models page's local paths, zoo and study folders): resolved (``..`` and symlinks) and inside the folders the
server was started with (:func:`explorer.ui.state.data_roots`), or the session's own uploads where a file of its
own is meant. A path outside gets the same answer whether it exists or not, so the app is no existence oracle,
and no route reaches another session's uploads (the upload store is never a data root).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from explorer.errors import ExplorerError
from explorer.ui import state, uploads

_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".h5", ".hdf5", ".mat", ".npy", ".cfl", ".json", ".yaml", ".yml")


def confine_output(text: str, what: str) -> Path:
    """A folder the app will write into, resolved and confined to the output root (:func:`explorer.ui.state.output_root`:
    the configured data directory, else the per-user folder; relative paths start there), never the upload store.

    Raises:
        ExplorerError: outside the output root (the same message whether the path exists or not).
    """
    root = state.output_root()
    path = Path(text.strip()).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    store = uploads.root().resolve()
    if not (path == root or path.is_relative_to(root)) or path == store or path.is_relative_to(store):
        where = "the data directory" if state.outputs_configured() else "the app's output folder"
        raise ExplorerError(f"{what} {text.strip()!r} is outside {where} {root}; the app writes only under it "
                            "(start it with `-- --data-dir DIR` to write elsewhere)")
    return path


def confine_path(text: str, what: str, base: str | Path | None = None, own_uploads: bool = False) -> Path:
    """``text`` resolved and confined: inside a data root (relative paths: under ``base``, default the first data
    root), or with ``own_uploads`` inside this session's upload folder.

    Raises:
        ExplorerError: outside every allowed folder (the message does not depend on whether the path exists),
            or inside the upload store but not this session's folder.
    """
    roots = state.data_roots()
    path = Path(text.strip()).expanduser()
    path = (path if path.is_absolute() else Path(base or roots[0]) / path).resolve()
    allowed = list(roots)
    if own_uploads:
        allowed.append(uploads.folder(state.upload_token()).resolve())
    store = uploads.root().resolve()
    inside = any(path == root or path.is_relative_to(root) for root in allowed)
    in_store = path == store or path.is_relative_to(store)
    if not inside or (in_store and not (own_uploads and path.is_relative_to(allowed[-1]))):
        raise ExplorerError(f"{what} {text.strip()!r} is outside the data directory {roots[0]}; the app reads only "
                            "files under it (start it with `-- --data-dir DIR`) and your own uploads")
    return path


def is_path(value: str) -> bool:
    """Whether a setting's string names a file (rather than a shipped name such as ``knee`` or ``auto``)."""
    text = value.strip()
    return bool(text) and not text.startswith("sample:") and (
        "/" in text or "\\" in text or text.startswith(("~", ".")) or text.lower().endswith(_FILE_SUFFIXES))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def spec_paths(spec) -> list[tuple[str, str]]:
    """``[(where, path text)]``: every data source and every file-valued setting a parsed study spec names (its
    data, each experiment's data and slice groups, the methods' parameters, the experiments' settings)."""
    from explorer.robustness.registry import get_experiment  # noqa: PLC0415

    found = [(f"data[{i}]", item.source) for i, item in enumerate(spec.data) if not item.source.startswith("sample:")]
    methods = list(spec.methods)
    for n, experiment in enumerate(spec.experiments):
        where = f"experiments[{n}]"
        params = experiment.params
        items = list(experiment.data or ())
        for group in get_experiment(experiment.kind).groups(params):
            items += list(group.data or ())
        found += [(f"{where}.data", item.source) for item in items if not item.source.startswith("sample:")]
        found += [(f"{where}.{experiment.kind}", text) for text in _strings(params) if is_path(text)]
        methods += list(experiment.methods or ())
    for method in methods:
        found += [(f"methods {method.label}", text) for text in _strings(method.values) if is_path(text)]
    return found


def confine_spec(spec) -> None:
    """Refuse a study spec that names a file or folder outside the data roots (relative paths: under the spec's
    base), with one line naming the entry.

    Raises:
        ExplorerError: the first such entry.
    """
    for where, text in spec_paths(spec):
        try:
            confine_path(text, "the path", base=spec.base)
        except ExplorerError as exc:
            raise ExplorerError(f"{where}: {exc}") from None


__all__ = ["confine_output", "confine_path", "confine_spec", "is_path", "spec_paths"]

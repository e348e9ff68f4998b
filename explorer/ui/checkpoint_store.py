"""Checkpoints the user added in this session (Models page): validated paths and saved uploads; and the shipped
checkpoints beyond the ``knee`` / ``brain`` slots (e.g. ``unet_brain-real.pt``: trained on real brain scans), which
the app offers by name (``brain-real``) in a network's ``checkpoint`` parameter.

A checkpoint is added only after :func:`explorer.recon.model_store.summary` has read it with
``torch.load(weights_only=True)`` and recognised its architecture, so a file holding pickled
objects, or weights of an unknown architecture, is refused before it is listed.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer.errors import ExplorerError
from explorer.ui import paths, uploads
from explorer.ui.state import store_bytes

_ADDED = "explorer.checkpoints.added"  # {path: summary row}
_UPLOADED = "explorer.checkpoints.uploaded"  # {uploader file_id: path}: each upload is validated once
SUFFIXES = (".pt", ".pth", ".ckpt")


def shipped_extras(kind: str) -> dict[str, Path]:
    """The shipped checkpoints of network ``kind`` beyond its anatomy slots: ``{name: file}`` for every
    ``<checkpoint dir>/<kind>_<name>.pt`` whose name is not an anatomy (``{"brain-real": .../unet_brain-real.pt}``)."""
    from explorer.recon.checkpoints import ANATOMIES  # noqa: PLC0415
    from explorer.recon.model_store import checkpoint_dir  # noqa: PLC0415

    folder = checkpoint_dir()
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob(f"{kind}_*.pt")):
        name = path.stem[len(kind) + 1:]
        if name and name not in ANATOMIES and not path.name.endswith(".part"):
            found[name] = path
    return found


def shipped_file(kind: str, value: str) -> Path | None:
    """The file of a shipped extra checkpoint named ``value`` (:func:`shipped_extras`), or of a path inside the
    shipped checkpoint folder; None for anything else (``auto``, ``knee``, a user's file)."""
    from explorer.recon.model_store import checkpoint_dir  # noqa: PLC0415

    text = (value or "").strip()
    extras = shipped_extras(kind)
    if text in extras:
        return extras[text]
    if not paths.is_path(text):
        return None
    path = Path(text).expanduser()
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    folder = checkpoint_dir().resolve()
    return path if path.parent == folder and path in {p.resolve() for p in shipped_extras(kind).values()} else None


def added() -> dict[str, dict]:
    """The checkpoints added in this session, ``{path: summary row}`` in the order they were added."""
    return st.session_state.setdefault(_ADDED, {})


def add_path(text: str) -> dict:
    """Validate the checkpoint file at ``text`` and add it; returns its summary row.

    Raises:
        ExplorerError: empty, missing, unreadable, refused or unrecognised file.
    """
    from explorer.recon.model_store import summary  # noqa: PLC0415

    text = (text or "").strip()
    if not text:
        raise ExplorerError("enter the path of a checkpoint file (.pt)")
    path = paths.confine_path(text, "checkpoint", own_uploads=True)  # outside: the same answer, existing or not
    if not path.is_file():
        raise ExplorerError(f"no such file: {text}")
    row = summary(path)
    added()[row["file"]] = row
    return row


def add_upload(name: str, data: bytes | memoryview, file_id: str | None = None) -> dict:
    """Save uploaded bytes under a content-hash name, validate them and add them; returns the summary row.

    With the uploader's ``file_id``, an upload already added returns its row at once (Streamlit
    re-delivers the file on every rerun while it stays in the widget).

    Raises:
        ExplorerError: wrong suffix, empty, or a file :func:`add_path` refuses (the saved copy is removed).
    """
    known = st.session_state.setdefault(_UPLOADED, {})
    if file_id is not None and known.get(file_id) in added():
        return added()[known[file_id]]
    if not name.lower().endswith(SUFFIXES):
        raise ExplorerError(f"{name}: upload a PyTorch checkpoint ({', '.join(SUFFIXES)})")
    path = store_bytes(name, data)
    try:
        row = add_path(str(path))
    except ExplorerError:
        uploads.discard(path)
        raise
    if file_id is not None:
        known[file_id] = row["file"]
    return row

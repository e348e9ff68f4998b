"""Which reading sessions were built from a study folder: each is registered in the folder's ``readers/`` subfolder,
so the study's report can show their analysis (:mod:`explorer.readers.report`).

A session built from a study folder (``python -m explorer readers build --study DIR``, or the Reader studies page
with a study folder) records the folder in its settings (``meta["study"]``: the absolute path) and is registered
there: ``DIR/readers/<session file name>-<8 hex>.json``, a small link holding the session file's absolute path and
its path relative to ``DIR`` (so a study folder moved together with its sessions still finds them). A session file
placed in ``DIR/readers/`` itself counts as well. The session stays where it was built (readers keep answering into
it); nothing is copied. ``python -m explorer readers register SESSION [--study DIR]`` registers a session built
before this existed, or moved.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.readers.store import SUFFIX, now, opened, read_meta

FOLDER = "readers"
LINK_FORMAT = "mri-explorer reading session link"


def _study_folder(study: str | Path) -> Path:
    """``study`` resolved, checked to be a study folder (its spec and results table).

    Raises:
        ExplorerError: not a study folder.
    """
    from explorer.study.runner import RESULTS, SPEC  # noqa: PLC0415

    folder = Path(study).expanduser()
    if not (folder / SPEC).is_file() or not (folder / RESULTS).is_file():
        raise ExplorerError(f"{folder} is not a study folder (it needs {SPEC} and {RESULTS}: python -m explorer study)")
    return folder.resolve()


def link_file(session: str | Path, study: str | Path) -> Path:
    """Where ``session``'s link in ``study`` goes: ``<study>/readers/<name>-<8 hex of its absolute path>.json`` (the
    same session always gets the same link; two sessions of one name in different folders get two)."""
    target = Path(session).expanduser().resolve()
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:8]
    return Path(study).expanduser().resolve() / FOLDER / f"{target.name}-{digest}.json"


def register(session: str | Path, study: str | Path) -> Path:
    """Register ``session`` with the study folder ``study`` (again: the link is rewritten); returns the link file.

    Raises:
        ExplorerError: ``study`` is not a study folder; ``session`` is not a reading session
            (:func:`~explorer.readers.store.connect`); the link cannot be written (one line naming the folder).
    """
    folder = _study_folder(study)
    target = Path(session).expanduser().resolve()
    with opened(target) as conn:  # a reading session, of this format
        name = read_meta(conn).get("name", "")
    link = link_file(target, folder)
    if link.parent.resolve() == target.parent:
        return target  # the session lies in the study's readers/ folder itself: nothing to link
    doc = {"format": LINK_FORMAT, "session": str(target), "relative": os.path.relpath(target, folder), "name": name,
           "registered": now()}
    try:
        link.parent.mkdir(exist_ok=True)
        tmp = link.with_name(f".{link.name}.part")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, link)
    except OSError as exc:
        raise ExplorerError(f"cannot register the session in {link.parent} ({exc.strerror or exc})") from None
    return link


def _linked(link: Path, folder: Path) -> Path | None:
    """The session file a link names (its absolute path, else its path relative to the study folder), if either is
    a file; ``None`` when the link is not one of ours or names no file."""
    try:
        doc = json.loads(link.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != LINK_FORMAT:
        return None
    for candidate in (doc.get("session"), doc.get("relative")):
        if isinstance(candidate, str) and candidate.endswith(SUFFIX):
            path = (folder / candidate) if not Path(candidate).is_absolute() else Path(candidate)
            if path.is_file():
                return path.resolve()
    return None


def study_sessions(study: str | Path) -> tuple[list[Path], list[str]]:
    """The reading sessions registered with a study folder, and notes on links whose session is gone.

    Returns:
        ``(sessions, notes)``: resolved session files (each once, sorted by file name; none when the folder has no
        ``readers/`` subfolder), and one line per link that names no session file any more.
    """
    base = Path(study).expanduser().resolve() / FOLDER
    if not base.is_dir():
        return [], []
    found: dict[Path, None] = {}
    notes = []
    for path in sorted(base.iterdir()):
        if path.name.endswith(SUFFIX) and path.is_file():
            found[path.resolve()] = None
        elif path.suffix == ".json" and not path.name.startswith("."):
            target = _linked(path, base.parent)
            if target is not None:
                found[target] = None
            else:
                notes.append(f"{FOLDER}/{path.name} names no reading session that exists here (moved or deleted?)")
    return sorted(found, key=lambda p: (p.name, str(p))), notes


__all__ = ["FOLDER", "LINK_FORMAT", "link_file", "register", "study_sessions"]

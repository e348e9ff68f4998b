"""The upload store: every browser session's uploads in a private folder, bounded in time and size.

Layout: ``<root>/<session token>/<content hash>/<name>`` (messages name the file as uploaded); ``root`` is ``$EXPLORER_UPLOAD_DIR`` or
``<tempdir>/mri-explorer-uploads`` (folders created with mode 0700). Rules:

* private: a session's token is a random 128-bit id kept in its own session state; it opens only files
  under its own folder, and the data-directory browser never lists the store;
* deleted when the session ends (:func:`sweep` removes the folder of a session the Streamlit runtime no
  longer knows, once it has been idle for :data:`ENDED_GRACE_S`) or when unused for the time-to-live
  (``$EXPLORER_UPLOAD_TTL_H``, default 6 hours);
* the whole store holds at most ``$EXPLORER_UPLOAD_STORE_MB`` (default 8192 MB): saving evicts the least
  recently used files of any session first; a file larger than the whole bound is refused;
* a failed upload is removed at once (:func:`discard`).

Streamlit itself holds an upload in memory while it stays in the widget; its size limit is
``server.maxUploadSize`` in ``.streamlit/config.toml`` (see README "Reliability").
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from explorer.errors import ExplorerError

DEFAULT_TTL_H = 6.0
DEFAULT_STORE_MB = 8192
ENDED_GRACE_S = 600.0  # a session the runtime no longer knows may still reconnect for a while
_LOCK = threading.Lock()


def root() -> Path:
    """The store's folder (resolved)."""
    env = os.environ.get("EXPLORER_UPLOAD_DIR", "").strip()
    return (Path(env).expanduser() if env else Path(tempfile.gettempdir()) / "mri-explorer-uploads").resolve()


def _number(var: str, default: float) -> float:
    text = os.environ.get(var, "").strip() or str(default)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ExplorerError(f"{var}={text!r}: give a positive number")
    return value


def ttl_s() -> float:
    """Seconds an unused upload is kept: ``$EXPLORER_UPLOAD_TTL_H`` hours (default 6)."""
    return _number("EXPLORER_UPLOAD_TTL_H", DEFAULT_TTL_H) * 3600.0


def store_limit() -> int:
    """Bytes the whole store may hold: ``$EXPLORER_UPLOAD_STORE_MB`` (default 8192)."""
    return int(_number("EXPLORER_UPLOAD_STORE_MB", DEFAULT_STORE_MB) * 2**20)


def new_token() -> str:
    """A fresh session token (random, unguessable)."""
    return uuid.uuid4().hex


def folder(token: str) -> Path:
    """The private folder of session ``token`` (created, mode 0700)."""
    if not re.fullmatch(r"[0-9a-f]{32}", token):
        raise ExplorerError("invalid upload session token")
    path = root() / token
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    root().chmod(0o700)
    return path


def _files(base: Path) -> list[Path]:
    return [p for p in base.glob("*/*/*") if p.is_file()]


def _remove(path: Path) -> None:
    """Delete a stored file and its content-hash folder when that is left empty."""
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # not empty (a .part being written) or already gone


def _evict(limit: int, incoming: int, keep: Path) -> None:
    """Delete the least recently used files until the store plus ``incoming`` bytes fit ``limit``."""
    files = sorted(_files(root()), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    for p in files:
        if total + incoming <= limit:
            break
        if p != keep:
            total -= p.stat().st_size
            _remove(p)


def save(token: str, name: str, data: bytes | memoryview) -> Path:
    """Write ``data`` into session ``token``'s folder as ``<content hash>/<safe name>`` (idempotent, atomic).

    Raises:
        ExplorerError: empty data; larger than the whole store.
    """
    size = len(data)
    if size == 0:
        raise ExplorerError(f"{name}: the uploaded file is empty")
    limit = store_limit()
    if size > limit:
        raise ExplorerError(f"{name}: {size / 2**20:.0f} MB is more than the upload store holds "
                            f"({limit / 2**20:.0f} MB, EXPLORER_UPLOAD_STORE_MB); put it in the data directory instead")
    digest = hashlib.sha256(data).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name)[:80].lstrip(".") or "upload"
    base = folder(token) / digest
    path = base / safe
    with _LOCK:
        base.mkdir(mode=0o700, exist_ok=True)
        if path.is_file() and path.stat().st_size == size:
            path.touch()
            return path
        _evict(limit, size, keep=path)
        with tempfile.NamedTemporaryFile(dir=base, prefix=path.name, suffix=".part", delete=False) as tmp:
            tmp.write(data)  # a private name: concurrent saves of the same file cannot collide
        Path(tmp.name).chmod(0o600)
        Path(tmp.name).replace(path)
    return path


def owns(token: str, path: str | Path) -> bool:
    """Whether ``path`` lies in session ``token``'s folder."""
    return Path(path).resolve().parent.parent == root() / token


def discard(path: str | Path) -> None:
    """Remove a saved upload (a file that failed to open)."""
    _remove(Path(path))


def sweep(active: Callable[[str], bool] | None = None, now: float | None = None) -> list[Path]:
    """Delete expired uploads and the folders of ended sessions; returns what was removed.

    Args:
        active: ``token -> bool``: whether that session still runs (``None``: unknown, only the
            time-to-live applies).
        now: the time (default ``time.time()``).
    """
    now = time.time() if now is None else now
    base, ttl, removed = root(), ttl_s(), []
    if not base.is_dir():
        return removed
    with _LOCK:
        for session in (p for p in base.iterdir() if p.is_dir()):
            files = [p for p in session.glob("*/*") if p.is_file()]
            last = max([p.stat().st_mtime for p in files] + [session.stat().st_mtime])
            ended = active is not None and not active(session.name) and now - last > ENDED_GRACE_S
            if ended or now - last > ttl:
                shutil.rmtree(session, ignore_errors=True)
                removed.append(session)
                continue
            for p in files:
                if now - p.stat().st_mtime > ttl or (p.suffix == ".part" and now - p.stat().st_mtime > 3600):
                    _remove(p)
                    removed.append(p)
    return removed


def usage() -> tuple[int, int]:
    """``(files, bytes)`` held by the store."""
    files = _files(root()) if root().is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


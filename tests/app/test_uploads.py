"""The upload store: private per session, removed on failure, expiry and session end, bounded in size."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer.errors import ExplorerError
from explorer.ui import uploads

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_UPLOAD_DIR", str(tmp_path / "store"))
    return tmp_path / "store"


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_save_is_private_idempotent_and_refuses_empty(store):
    a, b = uploads.new_token(), uploads.new_token()
    first = uploads.save(a, "my scan.h5", b"123")
    assert first == uploads.save(a, "my scan.h5", b"123") and first.name == "my_scan.h5"  # messages name it so
    assert first.parent.parent == store.resolve() / a and uploads.owns(a, first) and not uploads.owns(b, first)
    for folder in (first.parent, first.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert uploads.owns(b, uploads.save(b, "my scan.h5", b"123"))  # the same bytes, a separate private copy
    assert uploads.save(a, "../../.hidden", b"x").name == "hidden"
    with pytest.raises(ExplorerError, match="empty"):
        uploads.save(a, "x.h5", b"")
    with pytest.raises(ExplorerError, match="invalid upload session token"):
        uploads.folder("../etc")


def test_store_is_bounded_evicting_least_recently_used(store, monkeypatch):
    monkeypatch.setenv("EXPLORER_UPLOAD_STORE_MB", str(2.5 * 1000 / 2**20))  # 2500 bytes
    a, b = uploads.new_token(), uploads.new_token()
    old = uploads.save(a, "old.h5", b"o" * 1000)
    mid = uploads.save(b, "mid.h5", b"m" * 1000)
    _age(old, 30), _age(mid, 20)
    new = uploads.save(a, "new.h5", b"n" * 1000)  # 3000 > 2500: the oldest goes, of whichever session
    assert not old.exists() and mid.exists() and new.exists()
    assert uploads.usage() == (2, 2000)
    with pytest.raises(ExplorerError, match="more than the upload store holds"):
        uploads.save(a, "huge.h5", b"h" * 3000)
    monkeypatch.setenv("EXPLORER_UPLOAD_STORE_MB", "-1")
    with pytest.raises(ExplorerError, match="EXPLORER_UPLOAD_STORE_MB"):
        uploads.save(a, "x.h5", b"x")


def test_sweep_removes_expired_files_and_ended_sessions(store, monkeypatch):
    monkeypatch.setenv("EXPLORER_UPLOAD_TTL_H", "1")
    live, ended, idle = uploads.new_token(), uploads.new_token(), uploads.new_token()
    fresh = uploads.save(live, "fresh.h5", b"f")
    stale = uploads.save(live, "stale.h5", b"s")
    _age(stale, 2 * 3600)
    gone = uploads.save(ended, "a.h5", b"a")
    recent = uploads.save(idle, "b.h5", b"b")  # its session ended a moment ago: it may still reconnect
    _age(gone, uploads.ENDED_GRACE_S + 5), _age(gone.parent.parent, uploads.ENDED_GRACE_S + 5)
    removed = uploads.sweep(active=lambda token: token == live)
    assert not stale.exists() and fresh.exists() and recent.exists()
    assert not gone.parent.parent.exists() and gone.parent.parent in removed
    _age(fresh, 2 * 3600), _age(fresh.parent.parent, 2 * 3600)
    uploads.sweep(active=None)  # unknown liveness: only the time-to-live applies
    assert not fresh.parent.parent.exists() and recent.exists()


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.sidebar.file_uploader(key="src.upload").upload(name, data).run()
    assert not at.exception, at.exception
    return at


def test_app_sessions_keep_uploads_apart_and_failed_uploads_are_removed(store, multicoil_file, monkeypatch):
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "64")
    st.cache_resource.clear()
    sessions = []
    for _ in range(2):
        at = AppTest.from_file(APP, default_timeout=90)
        at.session_state["src.kind"] = "upload"
        sessions.append(_upload(at.run(), "multi.h5", multicoil_file.read_bytes()))
    tokens = [at.session_state["explorer.upload_token"] for at in sessions]
    assert tokens[0] != tokens[1]
    for at, token in zip(sessions, tokens):
        assert not at.sidebar.error
        assert "3 slices" in " ".join(c.value for c in at.sidebar.caption)
        assert [p.name for p in (store / token).iterdir()] == [f.name for f in (store / tokens[0]).iterdir()]
    # a broken file: a one-line error, and nothing of it stays in the store (also not on the next rerun)
    at = _upload(sessions[0], "broken.h5", b"\x89HDF\r\n garbage")
    assert [e.value for e in at.sidebar.error] and "broken.h5" in at.sidebar.error[0].value
    at.run()
    assert "broken.h5" in at.sidebar.error[0].value
    assert not any("broken" in p.name for p in store.rglob("*"))
    # the other session's upload is still there and still opens
    assert "3 slices" in " ".join(c.value for c in sessions[1].run().sidebar.caption)

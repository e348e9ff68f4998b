"""The generated bad-input corpus (tests/corpus.py) through the app with AppTest: every bad data file, uploaded
and picked from the data directory, on Home and Reconstruct (with Run pressed); every bad checkpoint uploaded
on the Models page. Never an exception element; a file that must be refused shows its one-line st.error."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests import corpus

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ("pages/home.py", "pages/reconstruct.py")


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    return corpus.volumes(tmp_path_factory.mktemp("bad_volumes"))


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "64")
    monkeypatch.setenv("EXPLORER_MAX_SLICE_MB", "64")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_data.clear()
    st.cache_resource.clear()


def _messages(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _visit_pages(at: AppTest, case: corpus.Case) -> None:
    """Home, then Reconstruct with Run pressed: no exception; a refused file shows its error on every page."""
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, f"{case.name} on {page}: {at.exception[0].value}"
        if page.endswith("reconstruct.py") and not at.sidebar.error:
            run = [b for b in at.button if b.key == "reconstruct.run"]
            if run:
                run[0].click().run()
                assert not at.exception, f"{case.name} after Run: {at.exception[0].value}"
        errors = _messages(at)
        if case.must_fail:
            assert errors, f"{case.name} on {page}: no error shown"
        assert all("Traceback" not in e and len(e.splitlines()) == 1 for e in errors), (case.name, errors)


def test_every_bad_file_uploaded(volumes):
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["src.kind"] = "upload"
    at.run()
    refused_at_open: set[str] = set()
    for case in volumes:
        data = case.path.read_bytes()
        if not data:  # Streamlit's uploader never delivers an empty file; the store refuses one (tests/app/test_uploads.py)
            continue
        at.sidebar.file_uploader(key="src.upload").upload(case.path.name, data).run()
        assert not at.exception, f"{case.name}: {at.exception[0].value}"
        if at.sidebar.error:  # refused when opened (others, e.g. NaN k-space, are refused when a slice is read)
            assert case.path.name in at.sidebar.error[0].value, (case.name, _messages(at))
            refused_at_open.add(case.path.name)
        _visit_pages(at, case)
    from explorer.ui import uploads

    names = {p.name for p in uploads.root().rglob("*") if p.is_file()}
    assert not names & refused_at_open, f"failed uploads left in the store: {names & refused_at_open}"


def test_every_bad_file_from_the_data_directory(volumes, monkeypatch):
    folder = volumes[0].path.parent
    (folder / "loop.h5").symlink_to(folder / "loop.h5")  # a symlink loop and a folder named like a volume
    (folder / "folder.h5").mkdir()
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(folder))
    at = AppTest.from_file(APP, default_timeout=90).run()
    assert not at.exception, at.exception
    listed = at.sidebar.selectbox(key="src.file").options
    assert {c.path.name for c in volumes} <= set(listed)
    for case in volumes:
        at.sidebar.selectbox(key="src.file").set_value(case.path.name).run()
        assert not at.exception, f"{case.name}: {at.exception[0].value}"
        if at.sidebar.error:
            assert case.path.name in at.sidebar.error[0].value, (case.name, _messages(at))
        _visit_pages(at, case)


def test_every_bad_checkpoint_uploaded_on_the_models_page(tiny_checkpoints, tmp_path):
    sentinel = tmp_path / "PWNED"
    cases = corpus.checkpoints(tmp_path / "bad", tiny_checkpoints, sentinel)
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/models.py").run()
    at.radio(key="models.how").set_value("Upload").run()
    for case in cases:
        data = case.path.read_bytes()
        if not data:
            continue
        at.file_uploader(key="models.upload").upload(case.path.name, data).run()
        assert not at.exception, f"{case.name}: {at.exception[0].value}"
        assert any(case.path.name in e for e in _messages(at)), (case.name, _messages(at))
    assert not sentinel.exists()

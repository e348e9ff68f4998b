"""Server start-up (explorer.ui.startup, app.py as an ``st.App``): the preload and its waits.

The real ``streamlit run`` path (uvicorn + lifespan + preload) is exercised by the browser
test, which also checks the server log for the preload line.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from pathlib import Path

import pytest
from streamlit.web.server.app_discovery import discover_asgi_app

from explorer.data import sample
from explorer.data.sample import SampleSpec, sample_path
from explorer.ui import startup

APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture()
def fresh(monkeypatch, tmp_path):
    """A freshly loaded startup module (its events unset), a private sample cache, 32x32 sample."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "32")
    monkeypatch.delenv("EXPLORER_DATA_DIR", raising=False)
    monkeypatch.delenv("EXPLORER_PRELOAD", raising=False)
    monkeypatch.setattr("sys.argv", ["app.py"])
    return importlib.reload(startup)


def test_app_py_declares_an_st_app_for_streamlit_run():
    found = discover_asgi_app(APP)
    assert found.is_asgi_app and found.import_string == "app:app"


def test_lifespan_preloads_the_default_sample_and_wait_blocks_until_done(fresh, tmp_path):
    target = tmp_path / "cache" / f"{Path(sample.file_name(SampleSpec(family='knee', size=32))).stem}_g{sample.GENERATOR_VERSION}.h5"
    assert not target.exists()
    fresh.wait()  # not started: returns at once

    async def serve():
        async with fresh.lifespan(None):
            fresh.wait(charts_only=True)
            fresh.wait()

    asyncio.run(serve())
    assert fresh._done.is_set() and fresh._charts_ready.is_set()
    assert target.is_file()
    assert sample_path(SampleSpec(family="knee", size=32)) == target


def test_preload_can_be_turned_off(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_PRELOAD", "0")

    async def serve():
        async with fresh.lifespan(None):
            pass

    asyncio.run(serve())
    assert not fresh._started.is_set()
    assert not (tmp_path / "cache").exists()


def test_preload_failure_is_logged_not_raised(fresh, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(blocker / "cache"))
    warnings = []
    monkeypatch.setattr(fresh._LOG, "warning", lambda msg, *args: warnings.append(msg % args))
    fresh._started.set()
    fresh.preload()  # must not raise
    fresh.wait()  # and must not hang
    assert fresh._done.is_set()
    assert len(warnings) == 1 and "preload failed" in warnings[0] and "cannot write the sample cache" in warnings[0]


def test_concurrent_callers_generate_the_sample_once(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    calls = []
    real = sample.write_sample

    def counting(directory, spec):
        calls.append(spec)
        return real(directory, spec)

    monkeypatch.setattr(sample, "write_sample", counting)
    spec = SampleSpec(family="brain", size=24, slices=2)
    paths, barrier = [], threading.Barrier(3)

    def ask():
        barrier.wait()
        paths.append(sample_path(spec))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(set(paths)) == 1 and paths[0].is_file()

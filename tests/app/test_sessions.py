"""Jobs belong to the browser session that started them: no cross-talk between sessions.

Unit tests of :class:`explorer.ui.jobs.Jobs` with real threads, and an AppTest with two sessions
of the Reconstruct page sharing one process (one job registry, one result cache).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from explorer.physics import ifft2c, rss
from explorer.recon import base
from explorer.ui.jobs import Jobs

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90


@dataclass(frozen=True)
class R:
    value: str
    stopped: bool = False


def _jobs():
    store = {}

    def get(key):
        return store[key]

    def put(key, result):
        store[key] = result
        return result

    return Jobs(get, put, stopped=lambda r: r.stopped), store


def test_a_stopped_result_stays_with_its_session_and_a_finished_one_is_shared():
    jobs, store = _jobs()
    assert jobs.run("A", "k", lambda: R("a", stopped=True)) == R("a", stopped=True)
    assert jobs.cached("A", "k") == R("a", stopped=True) and jobs.cached("B", "k") is None and store == {}
    computed = []
    assert jobs.run("B", "k", lambda: computed.append(1) or R("b")) == R("b") and computed == [1]
    assert jobs.cached("A", "k") == R("b")  # the shared, complete result now serves everyone
    assert jobs.run("C", "k", lambda: computed.append(1) or R("c")) == R("b") and computed == [1]


def test_a_second_session_computes_its_own_while_the_first_is_stopped_midway():
    jobs, _ = _jobs()
    started, release = threading.Event(), threading.Event()
    out = {}

    def slow_a():
        started.set()
        release.wait(10)
        return R("a", stopped=True)  # the user of session A pressed Stop

    thread = threading.Thread(target=lambda: out.setdefault("A", jobs.run("A", "k", slow_a)))
    thread.start()
    assert started.wait(10)
    out["B"] = jobs.run("B", "k", lambda: R("b"))  # does not wait for A's job, never sees its stopped result
    release.set()
    thread.join(10)
    assert out == {"A": R("a", stopped=True), "B": R("b")}
    assert jobs.running("A") == [] and jobs.running("B") == []


def test_a_session_waits_for_its_own_job_instead_of_computing_twice():
    jobs, _ = _jobs()
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow():
        calls.append(1)
        started.set()
        release.wait(10)
        return R("x")

    thread = threading.Thread(target=lambda: jobs.run("A", "k", slow))
    thread.start()
    assert started.wait(10)
    threading.Timer(0.2, release.set).start()
    assert jobs.run("A", "k", lambda: calls.append(2) or R("y")) == R("x") and calls == [1]
    thread.join(10)


def test_speculation_of_one_session_never_cancels_anothers():
    jobs, _ = _jobs()
    gate = threading.Event()
    jobs.speculate("A", {"busy": lambda: gate.wait(10) and R("busy")})  # occupies the one worker
    jobs.speculate("A", {"busy": lambda: R("-"), "a1": lambda: R("a1")})
    jobs.speculate("B", {"b1": lambda: R("b1")})
    jobs.speculate("A", {"a2": lambda: R("a2")})  # A moved on: its queued a1 is cancelled, B's b1 is not
    gate.set()
    jobs.wait(timeout=10)
    assert jobs.cached("B", "b1") == R("b1") and jobs.cached("A", "a2") == R("a2")
    assert jobs.cached("A", "a1") is None


# ----------------------------------------------------------------------------- two browser sessions


@dataclass(frozen=True)
class _FitConfig:
    steps: int = field(default=4, metadata={"help": "steps", "min": 1, "max": 50})


COMPUTED: list[str] = []


def _fit(config: _FitConfig):
    def recon(y, op, progress=None):
        COMPUTED.append("fit")
        for i in range(config.steps):
            if progress is not None and progress(i + 1, config.steps, {"loss": 1.0 / (i + 1)}):
                break
        return rss(ifft2c(y * op.mask), dim=1).to(y.dtype)

    return recon


@pytest.fixture
def two_sessions(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "64")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("EXPLORER_DATA_DIR", raising=False)
    base.available_methods()
    monkeypatch.setitem(base.REGISTRY, "test_fit", base.MethodSpec(
        "test_fit", "Test fit", "test", _FitConfig, _fit, "a stoppable fit", lambda c: False,
        capabilities=base.Capabilities(gradient="none", cost="long")))
    st.cache_data.clear()
    st.cache_resource.clear()
    COMPUTED.clear()
    sessions = []
    for _ in range(2):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
        at.run()
        at.switch_page("pages/reconstruct.py").run()
        at.multiselect(key="reconstruct.methods").set_value(["test_fit"]).run()
        at.checkbox(key="reconstruct.confirm_long").check().run()  # a long fit: confirmed before it runs
        assert not at.exception, at.exception
        sessions.append(at)
    yield sessions
    st.cache_data.clear()
    st.cache_resource.clear()


def test_stop_in_one_session_does_not_reach_another(two_sessions, monkeypatch):
    from explorer.ui import widgets

    a, b = two_sessions
    real = widgets._Throttled.__call__
    stop = {"on": True}

    def pressing_stop(self, step, total, info):  # session A's user clicks Stop during the fit
        real(self, step, total, info)
        return True if stop["on"] and step >= 2 else None

    monkeypatch.setattr(widgets._Throttled, "__call__", pressing_stop)
    a.button(key="reconstruct.run").click().run()
    assert not a.exception and any("was stopped" in w.value for w in a.warning)
    assert COMPUTED == ["fit"]
    stop["on"] = False
    b.button(key="reconstruct.run").click().run()  # the same settings in session B: its own complete fit
    assert not b.exception and not any("was stopped" in w.value for w in b.warning)
    assert COMPUTED == ["fit", "fit"]
    a.run()  # A now finds B's complete result in the shared cache: better than its own stopped one
    assert not a.exception and not any("was stopped" in w.value for w in a.warning)
    b.run()
    assert not any("was stopped" in w.value for w in b.warning) and COMPUTED == ["fit", "fit"]


def test_a_session_keeps_its_own_stopped_result(two_sessions, monkeypatch):
    from explorer.ui import widgets

    a, b = two_sessions
    real = widgets._Throttled.__call__
    monkeypatch.setattr(widgets._Throttled, "__call__",
                        lambda self, step, total, info: real(self, step, total, info) or (True if step >= 2 else None))
    a.button(key="reconstruct.run").click().run()
    assert any("was stopped" in w.value for w in a.warning) and COMPUTED == ["fit"]
    a.run()  # A keeps showing its own stopped result (until it presses Run again)
    assert any("was stopped" in w.value for w in a.warning) and COMPUTED == ["fit"]


def test_a_complete_result_is_shared_between_sessions(two_sessions):
    a, b = two_sessions
    a.button(key="reconstruct.run").click().run()
    b.button(key="reconstruct.run").click().run()
    assert not a.exception and not b.exception and COMPUTED == ["fit"]
    assert list(a.dataframe[0].value["Method"]) == list(b.dataframe[0].value["Method"]) == ["Test fit"]

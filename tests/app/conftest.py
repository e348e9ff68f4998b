"""Shared set-up of the page tests: the 64x64 embedded sample, a private cache directory, fresh caches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture(scope="module")
def small_sample_app(tmp_path_factory):
    """Module-wide: ``EXPLORER_SAMPLE_SIZE=64``, a private cache dir, no data dir or device from the environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_SAMPLE_SIZE", "64")
        mp.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.delenv("EXPLORER_DATA_DIR", raising=False)
        mp.delenv("EXPLORER_DEVICE", raising=False)
        st.cache_data.clear()
        st.cache_resource.clear()
        yield
        st.cache_data.clear()
        st.cache_resource.clear()


def open_page(page: str, timeout: float = 120, family: str | None = None) -> AppTest:
    """The app switched to ``pages/<page>.py`` (with the sample of ``family``), checked for exceptions."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if family is not None:
        at.sidebar.selectbox(key="src.family").set_value(family).run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def figure(at: AppTest, key: str) -> dict:
    """The plotly figure of the chart with ``key`` (its JSON spec)."""
    charts = [c for c in at.main.get("plotly_chart") if getattr(c, "key", None) == key]
    assert charts, f"no plotly chart {key!r}"
    return json.loads(charts[-1].proto.spec)


def viewer(at: AppTest, key: str) -> tuple[dict, dict]:
    """The browser viewer ``key`` (its ``show`` key) as sent: ``(header, {frame id: {label: float32 (h, w)}})``;
    a frame the browser already holds is sent as its header only (``explorer.viewer.payload``)."""
    from explorer.viewer.payload import decode  # noqa: PLC0415

    found = [e.proto for e in at.main if type(getattr(e, "proto", None)).__name__ == "BidiComponent"
             and e.proto.id.endswith(f"{key}.view")]
    assert found, f"no viewer {key!r}"
    return decode(found[-1].bytes)


def viewer_images(at: AppTest, key: str) -> dict:
    """``{label: image}`` of the viewer's shown frame, sent again in full (the session forgets what it sent)."""
    from explorer.viewer.payload import Sent  # noqa: PLC0415

    at.session_state[f"{key}.sent"] = Sent()
    at.run()
    header, frames = viewer(at, key)
    return frames[header["current"]]

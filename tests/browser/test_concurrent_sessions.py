"""Four browser sessions at once on one server, each running different methods on a different slice.

Every session's metrics (downloaded as CSV: exact floats) and images (.npy) must equal those of the same
four runs done one at a time on a fresh server; each session shows only its own methods; the server's
memory stays bounded. Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, SERVER_PIDS, add_method, open_reconstruct, streamlit_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
SESSIONS = [(0, []), (1, ["SENSE (CG)"]), (3, ["Total variation"]), (4, ["SENSE (CG)", "Total variation"])]
DEFAULTS = ["zero_filled", "l1", "unet"]  # the page's defaults: a classical, a sparse and a trained method
NAMES = {"SENSE (CG)": "sense", "Total variation": "tv"}
HUMAN = {"zero_filled": "Zero-filled", "l1": "l1-wavelet", "unet": "U-net", "sense": "SENSE (CG)", "tv": "Total variation"}


def _start(context, url: str, index: int, extra: list[str]):
    """Open the Reconstruct page, choose the slice and add ``extra`` methods, press Run; returns the page."""
    page = context.new_page()
    open_reconstruct(page, url)
    thumb = page.locator(".st-key-reconstruct-slice input[type='range']")
    thumb.focus()
    thumb.press("Home")
    for _ in range(index):
        thumb.press("ArrowRight")
    page.wait_for_function(f"() => document.querySelector(\".st-key-reconstruct-slice input[type='range']\")"
                           f".value === '{index}'", timeout=30_000)
    for label in extra:
        add_method(page, label)
    page.wait_for_timeout(1500)  # the rerun with the new choices finishes before Run
    page.locator(".st-key-reconstruct-run button").click()
    return page


def _collect(page, methods: list[str]) -> dict:
    """Wait for the results; download the metrics CSV and each method's .npy."""
    csv_button = page.locator(".st-key-reconstruct-dl-csv button")
    csv_button.wait_for(timeout=300_000)
    with page.expect_download() as info:
        csv_button.click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    images = {}
    for name in methods:
        with page.expect_download() as info:
            page.locator(f".st-key-reconstruct-dl-npy-{name} button").click()
        images[name] = np.load(info.value.path())
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    return {"rows": [{k: v for k, v in r.items() if not k.endswith("(s)")} for r in rows], "images": images}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_four_concurrent_sessions_match_serial_runs(tmp_path):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    methods = [DEFAULTS + [NAMES[m] for m in extra] for _, extra in SESSIONS]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            with streamlit_server(tmp_path / "cache_a", 64, tmp_path / "a.log") as url:
                contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
                            for _ in SESSIONS]
                pages = [_start(c, url, i, extra) for c, (i, extra) in zip(contexts, SESSIONS)]  # all four run at once
                together = [_collect(page, m) for page, m in zip(pages, methods)]
                memory_together = _rss_mib(SERVER_PIDS[url])
                for c in contexts:
                    c.close()
            with streamlit_server(tmp_path / "cache_b", 64, tmp_path / "b.log") as url:
                alone = []
                for (i, extra), m in zip(SESSIONS, methods):  # one at a time, each in a new browser session
                    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
                    alone.append(_collect(_start(context, url, i, extra), m))
                    context.close()
                memory_alone = _rss_mib(SERVER_PIDS[url])
        finally:
            browser.close()
    for m, mine, serial in zip(methods, together, alone):
        assert [r["Algorithm"] for r in mine["rows"]] == [HUMAN[name] for name in m]  # only this session's methods
        assert mine["rows"] == serial["rows"]  # exact: the CSV holds every digit
        for name in m:
            np.testing.assert_array_equal(mine["images"][name], serial["images"][name])
    ssims = {r["SSIM"] for t in together for r in t["rows"]}
    assert len(ssims) == sum(len(m) for m in methods)  # different slices: different numbers everywhere
    # memory bounded: four sessions at once cost the server about what the same four one after another do
    assert memory_together < memory_alone + 512, (memory_together, memory_alone)

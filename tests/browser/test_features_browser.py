"""Real-browser flow of the Small features page (streamlit server + headless Chromium, 64x64 sample).

A box dragged on the reference image adds a feature at its centre; the run shows the browser viewer (the reference
with the feature and every method) and the detectability tiles. Screenshot in
tests/browser/artifacts/. Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
VIEWER = "[data-testid=mrxv-viewer]"


def test_drag_a_box_to_place_a_feature_then_reconstruct(tmp_path):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with streamlit_server(tmp_path / "cache", 64, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/features")
            page.wait_for_selector(".st-key-features-run button", timeout=180_000)
            panel = page.locator(".st-key-features-reference .nsewdrag").first
            panel.wait_for(timeout=30_000)
            box = panel.bounding_box()
            # a small box around (row 32, col 26) of the 64x64 reference
            page.mouse.move(box["x"] + 0.36 * box["width"], box["y"] + 0.45 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + 0.46 * box["width"], box["y"] + 0.55 * box["height"], steps=5)
            page.mouse.up()
            page.wait_for_function("() => document.querySelector('.st-key-features-positions input')?.value !== ''",
                                   timeout=30_000)
            row, col = (int(v) for v in page.locator(".st-key-features-positions input").input_value().split(","))
            assert abs(row - 32) <= 2 and abs(col - 26) <= 2, (row, col)
            page.locator(".st-key-features-run button:not([disabled])").click(timeout=30_000)
            page.locator(f"{VIEWER}[data-ready='1']").wait_for(timeout=180_000)
            n = page.locator(".mrxv-image canvas").count()
            assert n >= 3  # the reference with the feature and every method, one view (zoom, window) for all
            # the feature's box is drawn on every panel: its cyan outline is in each image canvas's pixels
            cyan = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] < 60 && d[i + 1] > 200 && d[i + 2] > 220) k++; return k; }"""
            counts = [page.locator(".mrxv-image canvas").nth(i).evaluate(cyan) for i in range(n)]
            assert all(c > 20 for c in counts), counts
            page.wait_for_selector(".st-key-features-tiles .js-plotly-plot", timeout=30_000)
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.set_viewport_size({"width": 1600, "height": 2600})
            page.wait_for_timeout(800)
            page.screenshot(path=str(ARTIFACTS / "features.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()

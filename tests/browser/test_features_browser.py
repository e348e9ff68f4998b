"""Real-browser flow of the Small features page (streamlit server + headless Chromium, 64x64 sample).

A box dragged on the reference image adds a feature at its centre; the run shows the comparison figure with the
feature's box on every panel and one zoom for all panels, and the detectability tiles. Screenshot in
tests/browser/artifacts/. Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
FIGURE = ".st-key-features-figure .js-plotly-plot"


def test_drag_a_box_to_place_a_feature_then_reconstruct(tmp_path):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with streamlit_server(tmp_path / "cache", 64, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/features")
            page.wait_for_selector(".st-key-features-run button", timeout=60_000)
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
            page.wait_for_function(f"() => document.querySelector('{FIGURE}')?.data?.length === 5", timeout=120_000)
            layout = page.evaluate(f"() => document.querySelector('{FIGURE}').layout")
            assert len(layout["shapes"]) == 5  # the feature's box on each of the 5 panels
            assert all(layout[f"xaxis{i}"]["matches"] == "x" for i in range(2, 6))
            page.wait_for_selector(".st-key-features-tiles .js-plotly-plot", timeout=30_000)
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.set_viewport_size({"width": 1600, "height": 2600})
            page.wait_for_timeout(800)
            page.screenshot(path=str(ARTIFACTS / "features.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()

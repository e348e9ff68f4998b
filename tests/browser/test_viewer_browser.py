"""Real-browser flow of the viewer (streamlit server + headless Chromium) on the full-size 320x320 sample.

Reconstruct's default methods in the browser viewer at 1600x1000: the reference and every reconstruction in one
row that fits the screen; window/level by right-drag (the centre/width readout moves), invert and reset by keys;
Ctrl + wheel zoom kept through a layout change; an ROI box drawn with the ROI tool fills the ROI inputs and the
statistics table; a line drawn with the Line tool gives the profile; ``f`` opens 1 + thumbnails and ``→`` flips
the large image; ``b`` blinks it against the reference; the wheel goes to the next slice (computed on the server,
with progress) and back (held by the browser). Screenshots in tests/browser/artifacts/
(``EXPLORER_UPDATE_SCREENSHOT=1`` also refreshes assets/viewer.png for the README).

Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.browser.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
VIEWER = "[data-testid=mrxv-viewer]"


def _drag(page, canvas, start: tuple[float, float], end: tuple[float, float], button: str = "left", steps: int = 10):
    """Press at ``start``, move to ``end`` and release; both as fractions of ``canvas``'s box."""
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down(button=button)
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=steps)
    page.mouse.up(button=button)


def _value(page, key: str) -> int:
    return int(page.locator(f".st-key-reconstruct-{key} input").input_value())


def _wl(page) -> tuple[float, float]:
    text = page.locator("[data-testid=mrxv-wl]").inner_text()
    centre, width = (float(v) for v in re.findall(r"([0-9.]+)%", text))
    return centre, width


def test_viewer_reading_in_the_browser(tmp_path):
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

    with streamlit_server(tmp_path / "cache", 320, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/reconstruct")
            page.locator(".st-key-reconstruct-run button").click(timeout=90_000)
            page.wait_for_selector(f"{VIEWER}[data-ready='1']", timeout=240_000)
            viewer = page.locator(VIEWER)
            viewer.scroll_into_view_if_needed()
            images = page.locator(".mrxv-image canvas")
            n = images.count()
            assert n >= 3  # the reference and the default methods
            boxes = [images.nth(i).bounding_box() for i in range(n)]
            assert len({round(b["y"]) for b in boxes}) == 1  # one row
            assert min(b["width"] for b in boxes) >= 200
            whole = viewer.bounding_box()
            assert whole["height"] <= 1000  # the row, its error maps and the toolbar fit one screen

            # window / level: right-drag on any image; the readout is in % of the reference max
            assert _wl(page) == (50.0, 100.0)
            _drag(page, images.nth(1), (0.4, 0.4), (0.6, 0.3), button="right")
            centre, width = _wl(page)
            assert width > 100 and centre < 50  # wider (dragged right), lower centre (dragged up)
            viewer.focus()
            page.keyboard.press("i")
            expect(page.locator("[data-testid=mrxv-status]")).to_contain_text("inverted")
            page.keyboard.press("r")
            assert _wl(page) == (50.0, 100.0)
            expect(page.locator("[data-testid=mrxv-status]")).not_to_contain_text("inverted")
            # Ctrl + wheel zooms every panel; the zoom stays through a layout change
            box = images.nth(0).bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.keyboard.down("Control")
            page.mouse.wheel(0, -300)
            page.keyboard.up("Control")
            status = page.locator("[data-testid=mrxv-status]")
            expect(status).not_to_contain_text("zoom 1.00×")
            zoom = re.search(r"zoom ([0-9.]+)×", status.inner_text()).group(1)
            page.locator("[data-testid=mrxv-layout-2xn]").click()
            assert re.search(r"zoom ([0-9.]+)×", status.inner_text()).group(1) == zoom
            page.locator("[data-testid=mrxv-layout-row]").click()
            page.keyboard.press("r")

            # ROI box drawn on the first reconstruction -> the inputs, the table (one row per image)
            page.locator("[data-testid=mrxv-tool-roi]").click()
            _drag(page, images.nth(1), (0.30, 0.30), (0.55, 0.50))
            table = page.locator(".st-key-reconstruct-roi_views [data-testid='stDataFrame']")
            table.wait_for(timeout=60_000)
            top, left, bottom, right = (_value(page, f"roi-{k}") for k in ("top", "left", "bottom", "right"))
            assert abs(top - 96) <= 4 and abs(left - 96) <= 4 and abs(bottom - 160) <= 4 and abs(right - 176) <= 4
            heading = page.locator(".st-key-reconstruct-roi_views", has_text="Inside the ROI").inner_text()
            assert f"rows {top}–{bottom}, columns {left}–{right}" in heading
            page.wait_for_selector(".st-key-reconstruct-roi_tiles .js-plotly-plot", timeout=30_000)

            # A line drawn on the reference -> the profile of every image
            page.wait_for_selector(f"{VIEWER}[data-ready='1']", timeout=60_000)
            page.locator("[data-testid=mrxv-tool-line]").click()
            _drag(page, page.locator(".mrxv-image canvas").nth(0), (0.20, 0.70), (0.80, 0.75), steps=14)
            page.wait_for_selector(".st-key-reconstruct-profile .js-plotly-plot", timeout=60_000)
            r0, c0, r1, c1 = (_value(page, f"line-{k}") for k in ("r0", "c0", "r1", "c1"))
            assert abs(r0 - 224) <= 6 and abs(c0 - 64) <= 6 and abs(r1 - 240) <= 6 and abs(c1 - 256) <= 6
            names = page.evaluate("() => document.querySelector('.st-key-reconstruct-profile .js-plotly-plot')"
                                  ".data.map(d => d.name)")
            assert names[0] == "reference" and len(names) == n
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.locator(VIEWER).scroll_into_view_if_needed()
            shot = ARTIFACTS / "viewer.png"
            page.screenshot(path=str(shot), full_page=False)
            if os.environ.get("EXPLORER_UPDATE_SCREENSHOT") == "1":
                shutil.copyfile(shot, ROOT / "assets" / "viewer.png")

            # f: one large image and thumbnails; -> flips it; b: blink against the reference
            page.locator("[data-testid=mrxv-tool-wl]").click()
            page.locator(VIEWER).focus()
            page.keyboard.press("f")
            expect(page.locator(".mrxv-thumb")).to_have_count(n)
            large = page.locator(".mrxv-stage .mrxv-image .mrxv-title").first
            first = large.inner_text()
            page.keyboard.press("ArrowRight")
            expect(large).not_to_have_text(first)
            page.keyboard.press("b")
            seen = set()
            for _ in range(20):
                seen.add(page.locator(".mrxv-stage .mrxv-image .mrxv-title").first.inner_text())
                page.wait_for_timeout(150)
            assert len(seen) == 2 and "Target (reference)" in seen  # both images were shown
            page.keyboard.press("g")

            # the wheel: the next slice, reconstructed on the server (with progress), then back (held by the browser)
            slice_text = page.locator("[data-testid=mrxv-slice]")
            current = int(slice_text.inner_text().split()[1])
            box = page.locator(".mrxv-image canvas").nth(0).bounding_box()
            page.mouse.move(box["x"] + 30, box["y"] + 30)
            page.mouse.wheel(0, 120)
            expect(slice_text).to_contain_text(f"slice {current + 1} ", timeout=120_000)
            expect(status).not_to_contain_text("computing", timeout=180_000)
            page.wait_for_timeout(1500)
            box = page.locator(".mrxv-image canvas").nth(0).bounding_box()
            page.mouse.move(box["x"] + 30, box["y"] + 30)
            page.mouse.wheel(0, -120)
            expect(slice_text).to_contain_text(f"slice {current} ", timeout=5_000)
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            assert not errors, errors
        finally:
            browser.close()

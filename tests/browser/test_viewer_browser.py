"""Real-browser flow of the viewer (streamlit server + headless Chromium) on the full-size 320x320 sample.

At a 1600-pixel-wide window the grid shows each 320x320 image at >= 320 screen pixels; a box drawn with
"Drag to: ROI box" fills the ROI inputs, the ROI table (read from the grid's accessible table) and the
magnified tiles; a line drawn with "Drag to: Line" gives the
profile; the flip buttons switch images in the browser and keep the zoom; blink alternates the frames and keeps
the zoom too. Screenshots in
tests/browser/artifacts/ (``EXPLORER_UPDATE_SCREENSHOT=1`` also refreshes assets/viewer.png for the README).

Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, _axis_ranges, streamlit_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
FIGURE = ".st-key-reconstruct-figure .js-plotly-plot"


def _drag(page, panel, start: tuple[float, float], end: tuple[float, float], steps: int = 10) -> None:
    """Press at ``start``, move to ``end`` and release; both as fractions of ``panel``'s box."""
    panel.scroll_into_view_if_needed()
    box = panel.bounding_box()
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=steps)
    page.mouse.up()


def _tool(page, name: str, mode: str) -> None:
    page.locator(".st-key-reconstruct-tool button", has_text=name).click()
    page.wait_for_function(f"() => document.querySelector('{FIGURE}')._fullLayout.dragmode === '{mode}'",
                           timeout=30_000)


def _value(page, key: str) -> int:
    return int(page.locator(f".st-key-reconstruct-{key} input").input_value())


def test_viewer_grid_roi_line_flip_and_blink(tmp_path):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with streamlit_server(tmp_path / "cache", 320, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/reconstruct")
            page.locator(".st-key-reconstruct-run button").click(timeout=60_000)
            page.wait_for_function(f"() => document.querySelector('{FIGURE}')?._fullLayout?.xaxis5 !== undefined",
                                   timeout=180_000)

            # Grid (3 columns by default): every 320x320 image at >= 1 screen pixel per image pixel.
            sizes = page.evaluate(f"""() => {{ const l = document.querySelector('{FIGURE}')._fullLayout;
                return Object.keys(l).filter(k => /^xaxis\\d*$/.test(k)).map(k => l[k]._length); }}""")
            assert len(sizes) == 5 and min(sizes) >= 320, sizes

            # ROI box drawn on the Zero-filled panel -> the inputs, the box on every panel, the table, the tiles.
            _tool(page, "ROI box", "select")
            _drag(page, page.locator(".st-key-reconstruct-figure .nsewdrag").nth(1), (0.30, 0.30), (0.55, 0.50))
            table = page.locator(".st-key-reconstruct-roi_views [data-testid='stDataFrame']")
            table.wait_for(timeout=60_000)
            top, left, bottom, right = (_value(page, f"roi-{k}") for k in ("top", "left", "bottom", "right"))
            assert abs(top - 96) <= 4 and abs(left - 96) <= 4 and abs(bottom - 160) <= 4 and abs(right - 176) <= 4
            page.wait_for_function("() => document.querySelectorAll("
                                   "'.st-key-reconstruct-roi_views [data-testid=stDataFrame] table td').length >= 15",
                                   timeout=30_000)
            cells = page.evaluate("""() => [...document.querySelectorAll(
                '.st-key-reconstruct-roi_views [data-testid=stDataFrame] table tr')].map(
                tr => [...tr.querySelectorAll('td')].map(td => td.innerText))""")
            rows = [c for c in cells if c]  # the grid's accessible table: one row per image, header apart
            assert [r[0] for r in rows] == ["reference", "Zero-filled", "SENSE (CG)"], cells
            for label, mean, std, ssim, psnr in rows[1:]:
                assert float(mean) > 0 and float(std) > 0 and 0 < float(ssim) <= 1 and 5 < float(psnr) < 80
            heading = page.locator(".st-key-reconstruct-roi_views", has_text="Inside the ROI").inner_text()
            assert f"rows {top}–{bottom}, columns {left}–{right}" in heading
            tiles = ".st-key-reconstruct-roi_tiles .js-plotly-plot"
            page.wait_for_selector(tiles, timeout=30_000)
            # reference, Zero-filled, SENSE, and the two error maps, each cut to the box
            shapes = page.evaluate(f"() => document.querySelector('{tiles}')._fullData.map(d => [d.z.length, d.z[0].length])")
            assert shapes == [[bottom - top + 1, right - left + 1]] * 5
            rects = page.evaluate(f"() => document.querySelector('{FIGURE}').layout.shapes.filter(s => s.type === 'rect')")
            assert len(rects) == 5 and rects[0]["x0"] == left - 0.5 and rects[0]["y1"] == bottom + 0.5

            # A line drawn on the reference -> the profile of the reference and both methods.
            _tool(page, "Line", "lasso")
            _drag(page, page.locator(".st-key-reconstruct-figure .nsewdrag").nth(0), (0.20, 0.70), (0.80, 0.75), 14)
            profile = ".st-key-reconstruct-profile .js-plotly-plot"
            page.wait_for_selector(profile, timeout=60_000)
            r0, c0, r1, c1 = (_value(page, f"line-{k}") for k in ("r0", "c0", "r1", "c1"))
            assert abs(r0 - 224) <= 6 and abs(c0 - 64) <= 6 and abs(r1 - 240) <= 6 and abs(c1 - 256) <= 6
            names = page.evaluate(f"() => document.querySelector('{profile}').data.map(d => d.name)")
            assert names == ["reference", "Zero-filled", "SENSE (CG)"]
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.set_viewport_size({"width": 1600, "height": 3000})
            page.wait_for_timeout(1000)
            page.locator(".st-key-reconstruct-layout").scroll_into_view_if_needed()
            shot = ARTIFACTS / "viewer.png"
            page.screenshot(path=str(shot), full_page=False)
            if os.environ.get("EXPLORER_UPDATE_SCREENSHOT") == "1":
                shutil.copyfile(shot, ROOT / "assets" / "viewer.png")
            page.set_viewport_size({"width": 1600, "height": 1200})

            _tool(page, "Zoom", "zoom")
            # Flip: one large panel; the buttons above it flip in the browser, so a zoom made there stays.
            page.locator(".st-key-reconstruct-layout button", has_text="Flip").click()
            page.wait_for_function(f"() => document.querySelector('{FIGURE}')?.layout?.updatemenus?.length === 1",
                                   timeout=30_000)
            assert page.evaluate(f"() => document.querySelector('{FIGURE}')._fullLayout.xaxis._length") > 400
            _drag(page, page.locator(".st-key-reconstruct-figure .nsewdrag").nth(0), (0.25, 0.25), (0.60, 0.55))
            page.wait_for_function(f"() => document.querySelector('{FIGURE}')._fullLayout.xaxis.range[1] < 250",
                                   timeout=10_000)
            zoomed = _axis_ranges(page, FIGURE)
            visible = f"() => document.querySelector('{FIGURE}')._fullData.filter(d => d.visible === true).map(d => d.name)"
            assert page.evaluate(visible) == ["Zero-filled", "error Zero-filled"]
            page.locator(f"{FIGURE} .updatemenu-button", has_text="SENSE").click()
            page.wait_for_function(f"() => ({visible})().includes('SENSE (CG)')", timeout=10_000)
            assert page.evaluate(visible) == ["SENSE (CG)", "error SENSE (CG)"]
            assert _axis_ranges(page, FIGURE) == zoomed  # flipped, the zoom stays
            page.locator(f"{FIGURE} .updatemenu-button", has_text="Target").click()
            page.wait_for_function(f"() => ({visible})()[0] === 'Target (reference)'", timeout=10_000)
            assert _axis_ranges(page, FIGURE) == zoomed

            # Blink: the reference and Zero-filled alternate; a zoom made there stays while it blinks.
            page.locator(".st-key-reconstruct-layout button", has_text="Blink").click()
            page.wait_for_function(f"() => document.querySelector('{FIGURE}')._transitionData?._frames?.length === 2",
                                   timeout=30_000)
            _drag(page, page.locator(".st-key-reconstruct-figure .nsewdrag").nth(0), (0.25, 0.25), (0.60, 0.55))
            page.wait_for_function(f"() => document.querySelector('{FIGURE}')._fullLayout.xaxis.range[1] < 250",
                                   timeout=10_000)
            zoomed = _axis_ranges(page, FIGURE)
            page.locator(f"{FIGURE} .updatemenu-button").first.click()
            seen = set()
            for _ in range(30):
                seen.add(page.evaluate(f"() => document.querySelector('{FIGURE}')._fullLayout.sliders[2].active"))
                page.wait_for_timeout(150)
            assert seen == {0, 1}  # both frames were shown
            assert _axis_ranges(page, FIGURE)["xaxis"] == pytest.approx(zoomed["xaxis"], abs=1e-6)
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            assert not errors, errors
        finally:
            browser.close()

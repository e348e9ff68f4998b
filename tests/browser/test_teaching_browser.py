"""The teaching mode's sampling masks in a real browser (headless Chromium, Playwright): every sampled column stays
visible at any panel size.

A 320-column mask drawn as a heatmap into a ~240-pixel panel loses whole columns (the browser keeps one column in
four or so; for an equispaced mask that can be every sampled line, and the panel goes black). The teaching figures
draw sampled columns as lines of at least one screen pixel (:func:`explorer.figures.teaching.mask_traces`); these
tests render them at 120-240 px and read back the pixels of every sampled column.

``EXPLORER_UPDATE_SCREENSHOT=1`` also renders the README screenshots of the Home primer's equispaced mask at R = 4
and R = 8 (320x320 sample): ``assets/primer_mask_r4.png`` and ``assets/primer_mask_r8.png``.

Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.browser.test_browser import ARTIFACTS, CHROMIUM, ROOT, browser, streamlit_server  # noqa: F401, F811 (the shared browser fixture)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
BRIGHT = 100  # a sampled column's pixel must be at least this bright (0-255 luminance); black is 0
PRIMER_MASK = ".st-key-home-mask_fig .js-plotly-plot"


def column_brightness(page, selector: str, columns, rows=(0.25, 0.5, 0.75)) -> np.ndarray:
    """The luminance (0-255) of the screen pixel under column ``c`` (data coordinates of the figure's first x axis)
    for each ``c`` of ``columns``, the darkest over the heights ``rows`` (fractions of the plot's height), read
    from a screenshot of the page."""
    from PIL import Image  # noqa: PLC0415

    page.locator(selector).first.scroll_into_view_if_needed()
    where = page.evaluate("""([sel, cols, rows]) => {
        const gd = document.querySelector(sel), box = gd.getBoundingClientRect();
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return {x: cols.map(c => box.left + xa._offset + xa.l2p(c)),
                y: rows.map(f => box.top + ya._offset + f * ya._length)}; }""",
                          [selector, [float(c) for c in columns], list(rows)])
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("L"), dtype=np.float64)
    xs = np.floor(np.asarray(where["x"])).astype(int)
    ys = np.floor(np.asarray(where["y"])).astype(int)
    return shot[ys][:, xs].min(0)


def _render(page, fig, path: Path, width: int) -> None:
    fig.update_layout(width=width, height=width + 40)
    path.write_text(fig.to_html(include_plotlyjs=True, full_html=True, config={"displayModeBar": False}))
    page.set_viewport_size({"width": width + 40, "height": width + 80})
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullLayout?.xaxis?._length > 0")


@pytest.mark.parametrize("kind,accel", [("equispaced", 4), ("equispaced", 8), ("random", 4)])
def test_every_sampled_column_is_visible_in_small_panels(browser, tmp_path, kind, accel):
    from explorer.figures import images as image_figures
    from explorer.figures import teaching as teaching_figures
    from explorer.masks import MaskConfig, make_mask

    pattern = make_mask(MaskConfig(kind, accel), (320, 320)).pattern((320, 320))
    sampled = np.flatnonzero(pattern[0])
    page = browser.new_page()
    try:
        for width in (120, 180, 240):
            _render(page, teaching_figures.mask_figure(pattern, f"R {accel}"), tmp_path / f"mask{width}.html", width)
            plot = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.xaxis._length")
            assert plot < 320  # the panel is narrower than the mask: columns must share pixels
            seen = column_brightness(page, ".js-plotly-plot", sampled)
            assert (seen >= BRIGHT).all(), (width, sampled[seen < BRIGHT].tolist())
        if kind == "equispaced" and accel == 8:  # at 240 px the lines are ~6 px apart: the gaps between stay black
            gaps = [c + 4 for c in sampled if c + 4 < 320 and not pattern[0, c + 1:c + 8].any()]
            assert gaps and (column_brightness(page, ".js-plotly-plot", gaps) < 60).all()
        if kind == "equispaced" and accel == 4:  # what the check catches: the same mask as a 320-column heatmap
            _render(page, image_figures.mask_figure(pattern, "heatmap"), tmp_path / "heatmap.html", 240)
            assert (column_brightness(page, ".js-plotly-plot", sampled) < BRIGHT).any()
    finally:
        page.close()


def test_mask_tiles_keep_every_line(browser, tmp_path):
    from explorer.figures import teaching as teaching_figures
    from explorer.masks import MaskConfig, make_mask

    patterns = [make_mask(MaskConfig("equispaced", r), (320, 320)).pattern((320, 320)) for r in (4, 8)]
    fig = teaching_figures.mask_tiles_figure(patterns, ["R 4", "R 8"], cols=2, panel_px=180)
    fig.update_layout(width=420)
    path = tmp_path / "tiles.html"
    path.write_text(fig.to_html(include_plotlyjs=True, full_html=True, config={"displayModeBar": False}))
    page = browser.new_page(viewport={"width": 460, "height": 260})
    try:
        page.goto(path.as_uri())
        page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullLayout?.xaxis2?._length > 0")
        assert page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.xaxis._length") < 320
        seen = column_brightness(page, ".js-plotly-plot", np.flatnonzero(patterns[0][0]))  # the first tile
        assert (seen >= BRIGHT).all()
    finally:
        page.close()


@pytest.mark.skipif(not os.environ.get("EXPLORER_UPDATE_SCREENSHOT"), reason="set EXPLORER_UPDATE_SCREENSHOT=1")
def test_readme_primer_mask_screenshots(browser, tmp_path):
    """Renders assets/primer_mask_r4.png and assets/primer_mask_r8.png: the Home primer (320x320 knee sample) with
    fastMRI's equispaced mask at R = 4 and R = 8, 1600 px wide: the controls, the four panels and the caption that explains the actual
    R; every sampled column of the mask panel is checked to be visible in the screenshot."""
    from explorer.masks import MaskConfig, make_mask

    with streamlit_server(tmp_path / "cache", 320, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1600, "height": 1400})
        try:
            page.goto(url)
            page.wait_for_selector(PRIMER_MASK, timeout=120_000)
            page.locator(".st-key-home-mask label", has_text="equispaced").click()
            for accel in (4, 8):
                if accel == 8:
                    thumb = page.locator(".st-key-home-acceleration input")
                    thumb.focus()
                    for _ in range(4):
                        page.keyboard.press("ArrowRight")
                caption = page.get_by_text(f"every {accel}th column gives about")  # the equispaced mask's note
                caption.wait_for(timeout=120_000)
                page.wait_for_function(
                    f"() => document.querySelector('{PRIMER_MASK}')?._fullLayout?.title?.text?.includes('R = {accel} ')",
                    timeout=60_000)
                page.wait_for_timeout(1500)  # the other panels of the rerun
                assert page.locator("[data-testid='stAlertContentError']").count() == 0
                sampled = np.flatnonzero(make_mask(MaskConfig("equispaced", accel), (320, 320)).pattern((320, 320))[0])
                seen = column_brightness(page, PRIMER_MASK, sampled)
                assert (seen >= BRIGHT).all(), (accel, sampled[seen < BRIGHT].tolist())
                top = page.locator(".st-key-home-acceleration").bounding_box()
                bottom = caption.bounding_box()
                main = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
                clip = {"x": main["x"], "y": max(top["y"] - 16, 0), "width": main["width"],
                        "height": bottom["y"] + bottom["height"] - top["y"] + 32}
                shot = ARTIFACTS / f"primer_mask_r{accel}.png"
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), clip=clip)
                shutil.copyfile(shot, ROOT / "assets" / f"primer_mask_r{accel}.png")
                assert (ROOT / "assets" / f"primer_mask_r{accel}.png").stat().st_size > 20_000
        finally:
            page.close()

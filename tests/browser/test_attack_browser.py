"""Real-browser flow of the Attack page (streamlit server + headless Chromium, 64x64 sample).

An eps sweep of zero-filled and SENSE: the clean/perturbed/difference figure has one zoom for all its panels
(a drag on one panel zooms all six), the sweep plot renders; then an endless attack is stopped with Stop and
the worst perturbation so far is scored and shown. Screenshots go to tests/browser/artifacts/.
Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _axis_ranges, streamlit_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
FIGURE = ".st-key-attack-figure .js-plotly-plot"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    tmp = tmp_path_factory.mktemp("attack_browser")
    with streamlit_server(tmp / "cache", 64, tmp / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.errors = []
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            page.goto(f"{url}/attack")
            page.wait_for_selector(".st-key-attack-run button", timeout=60_000)
            yield page
        finally:
            browser.close()


def _fill(page, key: str, value: str) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(value)
    box.press("Enter")
    page.wait_for_timeout(600)


def test_attack_sweep_figure_has_one_zoom(page):
    _fill(page, "attack-eps", "0.02,0.08")
    page.locator(".st-key-attack-run button").click()
    page.wait_for_selector(FIGURE, timeout=120_000)
    page.wait_for_function(f"() => document.querySelector('{FIGURE}')?._fullLayout?.xaxis6 !== undefined", timeout=60_000)
    page.wait_for_selector(".st-key-attack-sweep .js-plotly-plot", timeout=30_000)
    assert page.evaluate(f"() => document.querySelector('{FIGURE}').data.length") == 6
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    full = _axis_ranges(page, FIGURE)
    panel = page.locator(".st-key-attack-figure .nsewdrag").nth(4)  # SENSE, perturbed
    panel.scroll_into_view_if_needed()
    box = panel.bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.6 * box["height"], steps=10)
    page.mouse.up()
    page.wait_for_function(f"() => document.querySelector('{FIGURE}')._fullLayout.xaxis.range[1] < 55", timeout=10_000)
    zoomed = _axis_ranges(page, FIGURE)
    for letter in "xy":
        names = sorted(k for k in zoomed if k.startswith(letter))
        assert len(names) == 6
        first = zoomed[names[0]]
        assert abs(first[1] - first[0]) < 0.6 * abs(full[names[0]][1] - full[names[0]][0])
        for name in names[1:]:
            assert zoomed[name] == pytest.approx(first, abs=1e-6), name
    page.set_viewport_size({"width": 1600, "height": 2400})
    page.wait_for_timeout(800)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "attack.png"), full_page=True)
    page.set_viewport_size({"width": 1600, "height": 1200})
    assert not page.errors, page.errors


def test_stop_keeps_the_worst_perturbation_so_far(page):
    _fill(page, "attack-eps", "0.08")
    _fill(page, "attack-steps", "2000")
    page.get_by_text("More settings").click()
    _fill(page, "attack-patience", "0")
    page.locator(".st-key-attack-run button").click()
    page.wait_for_selector("text=/SENSE \\(CG\\) · eps 0.08 \\(1\\/1\\) · attack step [0-9]{2,}/", timeout=120_000)
    page.locator(".st-key-attack-stop button").first.click()
    page.wait_for_selector("text=The attack was stopped", timeout=60_000)
    page.wait_for_function(f"() => document.querySelector('{FIGURE}')?.data?.length === 6", timeout=60_000)
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=30_000)  # the stopped run's table
    # SENSE's search ended long before its 2000 steps (no patience): its worst iterate was scored.
    warning = page.locator("[data-testid='stAlertContentWarning']", has_text="was stopped").inner_text()
    steps = int(warning.split("SENSE (CG) at eps 0.08 after ")[1].split(" ")[0])
    assert 10 <= steps < 2000
    subtitle = page.evaluate(f"() => document.querySelector('{FIGURE}').layout.annotations[4].text")
    assert "SENSE (CG): perturbed" in subtitle and "SSIM" in subtitle
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    assert not page.errors, page.errors

"""Real-browser flow of the Attack page (streamlit server + headless Chromium, 64x64 sample).

An eps sweep of the default methods: the browser viewer shows each method's clean and perturbed images, opens on
|perturbed − clean|, zooms every panel at once and keeps the zoom while it blinks a perturbed image against its
clean one; the sweep plot renders; then a long attack is stopped with Stop and the worst perturbation so far is
scored and shown. Screenshots go to tests/browser/artifacts/.
Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playwright.sync_api import expect

from tests.browser.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")
VIEWER = "[data-testid=mrxv-viewer]"


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


def test_attack_viewer_shows_clean_and_perturbed_with_one_zoom(page):
    _fill(page, "attack-eps", "0.02,0.08")
    page.locator(".st-key-attack-run button").click()
    page.locator(f"{VIEWER}[data-ready='1']").wait_for(timeout=240_000)
    page.wait_for_selector(".st-key-attack-sweep .js-plotly-plot", timeout=60_000)
    titles = page.locator(".mrxv-image .mrxv-title").all_inner_texts()
    assert len(titles) >= 4 and all(t.endswith((": clean", ": perturbed")) for t in titles), titles
    assert "mrxv-on" in page.locator("[data-testid=mrxv-error-pair]").get_attribute("class")  # |perturbed − clean|
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    # Ctrl + wheel zooms every panel at once (one view); the zoom holds through a layout change and blink
    status = page.locator("[data-testid=mrxv-status]")
    page.locator(".mrxv-image canvas").nth(1).scroll_into_view_if_needed()
    box = page.locator(".mrxv-image canvas").nth(1).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    expect(status).not_to_contain_text("zoom 1.00×")
    zoom = re.search(r"zoom ([0-9.]+)×", status.inner_text()).group(1)
    page.locator("[data-testid=mrxv-layout-blink]").click()
    seen = set()
    for _ in range(20):
        seen.add(page.locator(".mrxv-stage .mrxv-image .mrxv-title").first.inner_text())
        page.wait_for_timeout(150)
    assert len(seen) == 2 and any(t.endswith(": clean") for t in seen)  # blink pairs perturbed with its clean image
    assert re.search(r"zoom ([0-9.]+)×", status.inner_text()).group(1) == zoom
    page.locator("[data-testid=mrxv-layout-row]").click()
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
    page.wait_for_selector("text=/l1-wavelet · eps 0.08 \\(1\\/1\\) · attack step [0-9]{2,}/", timeout=180_000)
    page.locator(".st-key-attack-stop button").first.click()
    page.wait_for_selector("text=The attack was stopped", timeout=60_000)
    page.locator(f"{VIEWER}[data-ready='1']").wait_for(timeout=60_000)
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=30_000)  # the stopped run's table
    # l1's search ended long before its 2000 steps (no patience): its worst iterate was scored.
    warning = page.locator("[data-testid='stAlertContentWarning']", has_text="was stopped").inner_text()
    steps = int(warning.split("l1-wavelet at eps 0.08 after ")[1].split(" ")[0])
    assert 10 <= steps < 2000
    cells = page.locator(".mrxv-image").all_inner_texts()
    assert any("l1-wavelet: perturbed" in c and "SSIM" in c for c in cells), cells
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    assert not page.errors, page.errors

"""Real-browser flow: streamlit server + headless Chromium (Playwright, sync API).

Opens the Reconstruct page, runs two methods on the 64x64 embedded sample, checks the
comparison figure (panel count, linked zoom across panels, zoom kept across a rerun),
uploads a broken file (clean error), and saves screenshots to tests/browser/artifacts/.

``EXPLORER_UPDATE_SCREENSHOT=1`` also renders the README screenshot
``assets/screenshot.png`` at the full sample size (320x320).

Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWER = "[data-testid=mrxv-viewer]"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER_PIDS: dict[str, int] = {}  # base URL -> pid of the server serving it


def wait_until_healthy(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    """Wait until the Streamlit server at ``url`` answers its health check (RuntimeError with its log if it dies or
    takes longer than ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.3)


@contextmanager
def streamlit_server(cache_dir: Path, sample_size: int, log_path: Path):
    """``streamlit run app.py`` on a free port; yields the base URL (its pid in :data:`SERVER_PIDS`); kills it by pid."""
    port = _free_port()
    env = dict(os.environ, EXPLORER_SAMPLE_SIZE=str(sample_size), EXPLORER_CACHE_DIR=str(cache_dir),
               EXPLORER_DEVICE="cpu")
    env.pop("EXPLORER_DATA_DIR", None)
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, proc, log_path)
        SERVER_PIDS[url] = proc.pid
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


_LOGS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    _LOGS["server"] = tmp / "streamlit.log"
    with streamlit_server(tmp / "cache", 64, tmp / "streamlit.log") as url:
        yield url


def test_server_preloads_at_start_up(server):
    """``streamlit run app.py`` serves app.py's st.App, whose lifespan hook preloads torch and the sample."""
    deadline = time.monotonic() + 60
    while "explorer: preload" not in (log := _LOGS["server"].read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "explorer: preloaded torch, fastMRI, plotly and the knee sample in" in log, log[-2000:]


def open_reconstruct(page, url: str, acceleration: str | None = "3") -> None:
    """Open the Reconstruct page and set the mask's acceleration (64 columns: 3x keeps the 7 fully sampled
    centre columns ESPIRiT needs)."""
    page.goto(f"{url}/reconstruct")
    page.wait_for_selector(".st-key-reconstruct-run button", timeout=60_000)
    if acceleration is not None:
        box = page.locator(".st-key-reconstruct-mask-acceleration input")
        box.fill(acceleration)
        box.press("Enter")
        page.wait_for_selector(f".st-key-reconstruct-mask-cf_default:has-text('at {acceleration}×')", timeout=30_000)


def add_method(page, label: str) -> None:
    """Add the method shown as ``label`` to the Reconstruct page's comparison."""
    chooser = page.locator(".st-key-reconstruct-methods input")
    chooser.click()
    chooser.fill(label)
    chooser.press("Enter")
    page.keyboard.press("Escape")


def _run_reconstruction(page, url: str, acceleration: str | None) -> None:
    open_reconstruct(page, url, acceleration)
    page.locator(".st-key-reconstruct-run button").click()
    page.locator(f"{VIEWER}[data-ready='1']").wait_for(timeout=180_000)
    page.wait_for_selector("[data-testid='stDataFrame']", timeout=30_000)


def _screenshot(page, path: Path) -> None:
    """Whole app at its full height (the main area scrolls inside the window)."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": 1600, "height": int(min(max(height + 40, 900), 4000))})
    page.wait_for_timeout(800)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))


def test_reconstruct_one_view_for_every_panel(server, browser):
    """The browser viewer: one zoom and one window for every panel; a rerun that leaves the images as they are
    (new settings, results stale) keeps the reader's zoom and window."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _run_reconstruction(page, server, "3")
        images = page.locator(".mrxv-image canvas")
        assert images.count() == 4 and page.locator(".mrxv-error canvas").count() == 3  # target + 3 defaults
        assert page.locator("[data-testid='stAlertContentError']").count() == 0
        _screenshot(page, ARTIFACTS / "reconstruct.png")
        page.set_viewport_size({"width": 1600, "height": 1200})
        status = page.locator("[data-testid=mrxv-status]")
        images.nth(1).scroll_into_view_if_needed()
        box = images.nth(1).bounding_box()
        page.mouse.move(box["x"] + 0.4 * box["width"], box["y"] + 0.4 * box["height"])
        page.keyboard.down("Control")
        page.mouse.wheel(0, -400)
        page.keyboard.up("Control")
        expect(status).not_to_contain_text("zoom 1.00×")
        # every panel shows the same part of the image: the zoomed canvases differ from a fit view's pixels alike
        page.locator("[data-testid=mrxv-preset-tissue]").click()
        zoomed = status.inner_text()
        assert "C 50.0% · W 100.0%" not in zoomed  # the tissue window, for every panel
        seed = page.locator(".st-key-reconstruct-mask-seed input")
        seed.fill("1")
        seed.press("Enter")
        page.wait_for_selector("text=Settings changed since the last run", timeout=30_000)
        page.wait_for_timeout(1000)
        after = status.inner_text()
        assert after.split("|")[:2] == zoomed.split("|")[:2]  # window and zoom kept through the rerun
        _screenshot(page, ARTIFACTS / "reconstruct_zoomed.png")
        assert not errors, errors
    finally:
        page.close()


def test_stopping_a_fit_keeps_its_best_image(server, browser):
    """Run a deliberately endless DIP fit, press Stop: the fit ends early and its best image is shown."""
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        open_reconstruct(page, server)
        add_method(page, "Deep Image")
        page.get_by_text("Deep Image Prior parameters").click()
        iterations = page.locator(".st-key-reconstruct-params-dip-iterations input")
        iterations.wait_for(timeout=30_000)
        iterations.fill("100000")
        iterations.press("Enter")
        page.wait_for_timeout(1000)  # let the rerun with the new setting finish
        assert page.locator(".st-key-reconstruct-run button").is_disabled()  # a minute-long method: confirm first
        page.locator(".st-key-reconstruct-confirm_long label").click()
        page.locator(".st-key-reconstruct-run button:not([disabled])").click(timeout=30_000)
        page.wait_for_selector("text=/Deep Image Prior: step [0-9]{2,}/", timeout=120_000)
        page.locator(".st-key-run_with_status-stop button").first.click()
        page.wait_for_selector("text=was stopped at step", timeout=60_000)
        page.locator(f"{VIEWER}[data-ready='1']").wait_for(timeout=60_000)
        assert any("Deep Image Prior" in t for t in page.locator(".mrxv-image .mrxv-title").all_inner_texts())
        warning = page.locator("[data-testid='stAlertContentWarning']", has_text="was stopped at step").inner_text()
        step = int(warning.split("at step ")[1].split(" ")[0])
        assert 10 <= step < 100000
        table = page.locator("[data-testid='stDataFrame']")
        table.wait_for(timeout=30_000)
        assert page.locator("[data-testid='stAlertContentError']").count() == 0
        assert not errors, errors
    finally:
        page.close()


def test_bad_upload_shows_error(server, browser, tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"definitely not HDF5")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(server)
        page.wait_for_selector(".st-key-src-kind", timeout=60_000)
        page.locator(".st-key-src-kind label", has_text="Upload .h5").click()
        page.wait_for_selector(".st-key-src-upload input[type='file']", state="attached", timeout=30_000)
        page.locator(".st-key-src-upload input[type='file']").set_input_files(str(bad))
        error = page.locator("[data-testid='stSidebar'] [data-testid='stAlertContentError']")
        error.wait_for(timeout=30_000)
        assert "broken.h5" in error.inner_text()
        # the app keeps working: back to the embedded sample
        page.locator(".st-key-src-kind label", has_text="Embedded sample").click()
        page.wait_for_selector(".st-key-home-kspace .js-plotly-plot", timeout=60_000)
        assert page.locator("[data-testid='stSidebar'] [data-testid='stAlertContentError']").count() == 0
        _screenshot(page, ARTIFACTS / "home.png")
    finally:
        page.close()


@pytest.mark.skipif(not os.environ.get("EXPLORER_UPDATE_SCREENSHOT"), reason="set EXPLORER_UPDATE_SCREENSHOT=1")
def test_readme_screenshot_full_size(browser, tmp_path):
    """Renders assets/screenshot.png: the 320x320 knee sample, the reference and six reconstructions (a classical, a
    sparse and a trained method of each kind) with their error maps in the viewer's Row layout, fitting one
    1600x1000 screen without scrolling."""
    added = ["SENSE (CG)", "Total variation", "E2E VarNet"]  # beside the defaults: Zero-filled, l1-wavelet, U-net
    with streamlit_server(tmp_path / "cache", 320, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            page.goto(f"{url}/reconstruct")
            page.wait_for_selector(".st-key-reconstruct-run button", timeout=60_000)
            chooser = page.locator(".st-key-reconstruct-methods input")
            for label in added:
                chooser.click()
                chooser.fill(label)
                chooser.press("Enter")
            page.keyboard.press("Escape")
            page.wait_for_timeout(1000)
            page.locator(".st-key-reconstruct-run button").click()
            viewer = page.locator("[data-testid=mrxv-viewer][data-ready='1']")
            viewer.wait_for(timeout=600_000)
            page.wait_for_function("() => !document.querySelector('[data-stale=true]')", timeout=600_000)
            page.wait_for_timeout(1500)
            titles = page.locator(".mrxv-image .mrxv-title").all_inner_texts()
            assert len(titles) == 7 and all(any(label in t for t in titles) for label in added), titles
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            page.get_by_text("3 · Results").evaluate("el => el.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(800)
            box = page.locator("[data-testid=mrxv-viewer]").bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 1000, box  # one screen, no scrolling
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "reconstruct_320.png"))
            shutil.copyfile(ARTIFACTS / "reconstruct_320.png", ROOT / "assets" / "screenshot.png")
            assert (ROOT / "assets" / "screenshot.png").stat().st_size > 100_000
        finally:
            page.close()


@pytest.mark.skipif(not os.environ.get("EXPLORER_UPDATE_SCREENSHOT"), reason="set EXPLORER_UPDATE_SCREENSHOT=1")
def test_readme_teaching_screenshot(browser, tmp_path):
    """Renders assets/teaching.png: the Home page's teaching mode, masks and their point-spread functions (320x320)."""
    from PIL import Image  # noqa: PLC0415

    with streamlit_server(tmp_path / "cache", 320, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        try:
            page.goto(url)
            page.locator(".st-key-home-teach-section label", has_text="Masks and PSFs").click(timeout=90_000)
            page.wait_for_selector(".st-key-home-teach-psf_profile .js-plotly-plot", timeout=120_000)
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            _screenshot(page, ARTIFACTS / "teaching.png")
            top = page.locator(".st-key-home-teach-section").bounding_box()["y"] - 150
            shot = Image.open(ARTIFACTS / "teaching.png")
            shot.crop((0, max(int(top), 0), shot.width, shot.height)).save(ROOT / "assets" / "teaching.png")
            assert (ROOT / "assets" / "teaching.png").stat().st_size > 100_000
        finally:
            page.close()


@pytest.mark.skipif(not os.environ.get("EXPLORER_UPDATE_SCREENSHOT"), reason="set EXPLORER_UPDATE_SCREENSHOT=1")
def test_readme_conclusions_screenshot(browser):
    """Renders assets/conclusions.png: the first page of the paper-fast study's HTML report (the papers' conclusions
    beside the run's numbers), from ``python -m explorer results run study-paper-fast``'s study folder."""
    report = ROOT / "results" / ".work" / "study-paper-fast" / "paper-fast" / "report.html"
    assert report.is_file(), f"run `python -m explorer results run study-paper-fast` first: no {report}"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(report.as_uri())
        heading = page.locator("h2", has_text="The papers' conclusions beside this run")
        table = page.locator("h2 + p + h3 + table").first
        top, bottom = heading.bounding_box(), table.bounding_box()
        assert top and bottom and bottom["y"] > top["y"]
        clip = {"x": 0, "y": top["y"] - 12, "width": 1400, "height": bottom["y"] + bottom["height"] - top["y"] + 24}
        page.set_viewport_size({"width": 1400, "height": int(clip["y"] + clip["height"] + 20)})
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "conclusions.png"), clip=clip)
        shutil.copyfile(ARTIFACTS / "conclusions.png", ROOT / "assets" / "conclusions.png")
        assert (ROOT / "assets" / "conclusions.png").stat().st_size > 20_000
    finally:
        page.close()

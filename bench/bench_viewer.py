"""The browser viewer's speed, measured in a real browser (issue 27): repaint after a window/level drag step and
after a layout change, data sent for a result, and a slice change, before (the plotly viewer) and after.

Usage: python bench/bench_viewer.py [--size 320] [--methods 6] [--json] [--smoke]

Starts ``streamlit run bench/viewer_app.py`` (the app's viewer, :mod:`explorer.ui.viewer`, on the embedded knee:
a reference and ``--methods`` images per slice) and drives it with Playwright and Debian's Chromium at 1600x1000:

* repaint: the viewer's own timing of each paint (``globalThis.__mrxv``) over a 30-step right-button drag, and of
  each layout change (Row, 2xN, Grid, 1 + thumbnails, Row: DOM rebuilt and painted);
* bytes: the payload of one result (reference + images, 16-bit) against the JSON of the plotly figure the old
  viewer sent for the same images (:func:`explorer.viewer.layouts.grid_figure`, 3 columns with error maps);
* slice change: to a slice the browser holds (no server round trip), and to a slice cached on the server only
  (a Streamlit rerun and the transfer: wheel to the new slice on screen).

The "before" times are the plotly viewer's, as issue 27 measured them (every control a Streamlit rerun: 6-14 s on
a loaded 2-core machine); "before" bytes are measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from explorer.data.sample import SampleSpec, sample_path  # noqa: E402
from explorer.data.sources import open_volume  # noqa: E402
from explorer.ui.viewer import frame  # noqa: E402
from explorer.viewer import layouts  # noqa: E402
from explorer.viewer.measure import window_preset  # noqa: E402
from explorer.viewer.payload import encode  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TARGETS = {"repaint_ms": 50.0, "bytes_fraction": 0.25, "slice_ms": 200.0}


def _images(size: int, methods: int):
    volume = open_volume(str(sample_path(SampleSpec("knee", size=size))))
    index = volume.num_slices // 2
    target = np.asarray(volume.read_slice(index).target, np.float32)
    rng, top = np.random.default_rng(index), float(target.max())
    images = {f"Method {i + 1}": np.abs(target + (0.02 + 0.01 * i) * top * rng.standard_normal(target.shape))
              .astype(np.float32) for i in range(methods)}
    return target, images


def payload_bytes(size: int, methods: int) -> dict:
    """Bytes of one result: the browser viewer's payload and the old plotly figure's JSON."""
    target, images = _images(size, methods)
    new = len(encode([frame(0, target, images, {k: "SSIM 0.000 · PSNR 00.00 dB" for k in images})], 0))
    errors = layouts.compute_errors(target, images, "abs")
    old = layouts.grid_figure(target, images, columns=3, window=window_preset(target, "full"), error_mode="abs",
                              errors=errors, error_scale=layouts.default_error_scale("abs", errors, float(target.max())),
                              subtitles={k: "SSIM 0.000 · PSNR 00.00 dB" for k in images}, uirevision="bench")
    return {"payload_bytes": new, "plotly_bytes": len(old.to_json())}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_timings(size: int, methods: int, drag_steps: int, timeout: float) -> dict:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

    port = _port()
    env = dict(os.environ, BENCH_VIEWER_SIZE=str(size), BENCH_VIEWER_METHODS=str(methods), PYTHONPATH=str(ROOT))
    log = open(os.devnull, "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "bench" / "viewer_app.py"),
                             "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("the benchmark's streamlit server did not start")
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url)
            page.wait_for_selector("[data-testid=mrxv-viewer][data-ready='1']", timeout=timeout * 1000)
            perf = "() => globalThis.__mrxv"
            first = page.evaluate(perf)
            canvas = page.locator(".mrxv-image canvas").nth(1)
            box = canvas.bounding_box()
            x, y = box["x"] + box["width"] / 3, box["y"] + box["height"] / 3
            before = len(page.evaluate(perf)["paints"])
            page.mouse.move(x, y)
            page.mouse.down(button="right")
            for i in range(drag_steps):
                page.mouse.move(x + 4 * (i + 1), y + 2 * (i + 1))
                page.wait_for_timeout(20)
            page.mouse.up(button="right")
            page.wait_for_timeout(200)
            paints = page.evaluate(perf)["paints"][before:]
            layouts_before = len(page.evaluate(perf)["layouts"])
            for name in ("2xn", "grid", "large", "row"):
                page.locator(f"[data-testid=mrxv-layout-{name}]").click()
                page.wait_for_timeout(150)
            layout_ms = page.evaluate(perf)["layouts"][layouts_before:]
            n = len(page.evaluate(perf)["layouts"])
            page.locator("[data-testid=mrxv-error-ssim]").click()
            page.wait_for_timeout(300)
            ssim_first = page.evaluate(perf)["layouts"][n:]
            page.locator("[data-testid=mrxv-error-abs]").click()
            page.locator("[data-testid=mrxv-error-ssim]").click()
            page.wait_for_timeout(300)
            ssim_cached = page.evaluate(perf)["layouts"][n + 1 + len(ssim_first) - 1:][-1:]
            page.locator("[data-testid=mrxv-error-abs]").click()
            # slices: one the server has cached but the browser does not, then back to one the browser holds
            status = page.locator("[data-testid=mrxv-slice]")
            start_text = status.inner_text()
            current = int(start_text.split()[1])
            box = page.locator(".mrxv-image canvas").nth(1).bounding_box()
            page.mouse.move(box["x"] + 20, box["y"] + 20)
            t0 = time.perf_counter()
            page.mouse.wheel(0, 120)
            expect(status).to_contain_text(f"slice {current + 1} ", timeout=timeout * 1000)
            page.wait_for_function(
                "() => !Array.from(document.querySelectorAll('[data-stale=true]')).length", timeout=timeout * 1000)
            expect(page.locator("[data-testid=mrxv-status]")).not_to_contain_text("computing", timeout=timeout * 1000)
            server_ms = (time.perf_counter() - t0) * 1e3
            page.wait_for_timeout(1500)
            held = []
            for delta in (-120, 120, -120, 120, -120):
                box = page.locator(".mrxv-image canvas").nth(1).bounding_box()
                page.mouse.move(box["x"] + 20, box["y"] + 20)
                t0 = time.perf_counter()
                page.mouse.wheel(0, delta)
                want = current if delta < 0 else current + 1
                expect(status).to_contain_text(f"slice {want} ", timeout=timeout * 1000)
                held.append((time.perf_counter() - t0) * 1e3)
                page.wait_for_timeout(1200)
            slice_js = page.evaluate(perf)["slices"]
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    median = lambda xs: float(statistics.median(xs)) if xs else None  # noqa: E731
    return {"repaint_ms": median(paints), "repaint_p90_ms": float(np.percentile(paints, 90)) if paints else None,
            "repaints": len(paints), "first_render_ms": float(first["layouts"][0]) if first["layouts"] else None,
            "layout_ms": median(layout_ms), "layout_max_ms": max(layout_ms) if layout_ms else None,
            "ssim_first_ms": median(ssim_first), "ssim_cached_ms": median(ssim_cached),
            "slice_held_ms": median(slice_js), "slice_held_wall_ms": median(held),
            "slice_server_ms": server_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--methods", type=int, default=6)
    parser.add_argument("--json", action="store_true", help="print one JSON document (for the results file)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only checks that the script runs (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.methods = 64, 2
    sizes = payload_bytes(args.size, args.methods)
    timings = browser_timings(args.size, args.methods, 5 if args.smoke else 30, 180.0) \
        if Path(CHROMIUM).exists() else {}
    doc = {"size": args.size, "images": args.methods + 1, **sizes, **timings, "targets": TARGETS,
           "before": {"change_s": "6-14 (issue 27: every control a Streamlit rerun)", "bytes": sizes["plotly_bytes"]},
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, headless Chromium (software rendering)",
           "setting": f"{args.size}x{args.size} x {args.methods + 1} images (reference + {args.methods}), 1600x1000 window"}
    if args.json:
        print(json.dumps(doc))
        return
    print(f"browser viewer, {doc['setting']}")
    print(f"| {'measure':<52} | {'value':>12} |")
    print(f"|{'-' * 54}|{'-' * 14}|")
    for key, value in doc.items():
        if isinstance(value, (int, float)):
            print(f"| {key:<52} | {value:12.1f} |")


if __name__ == "__main__":
    main()

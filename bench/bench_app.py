"""App latency benchmark in a real browser: cold start to the first reconstruction, cached rerun.

Run: ``python bench/bench_app.py [--size 320] [--repeat 2]``. Needs Debian's /usr/bin/chromium.
For each start a fresh ``streamlit run app.py`` process is launched; the clock starts just before
the process is spawned and stops when the Reconstruct page's viewer (reference and the
default methods) has drawn its images after pressing Run as soon as the button exists. "cold" uses an
empty sample cache (the sample is generated), "warm disk" reuses the cached sample file. The cached
rerun presses Run again with unchanged settings and stops when the script run has finished.
``--browser-cache`` adds starts whose browser context already holds Streamlit's static files
(content-hashed, served as immutable) from an earlier visit, as for a returning user.
``--compare-preload`` alternates starts with the server's start-up preload on and off
(``EXPLORER_PRELOAD``, see explorer/ui/startup.py) on the cached sample and prints both medians.
Targets (issue 2): cold start <= 5 s, cached rerun <= 0.5 s. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.test_browser import CHROMIUM, CHROMIUM_ARGS, VIEWER, streamlit_server  # noqa: E402

RUN = ".st-key-reconstruct-run button"
VIEWPORT = {"width": 1600, "height": 1200}


def _wait_idle(page) -> None:
    page.wait_for_function("() => document.querySelector('.stApp')?.getAttribute('data-test-script-state') === 'notRunning'",
                           timeout=120_000)


def _cpu_seconds(match) -> float:
    """User + system CPU seconds of the live processes whose command line satisfies ``match`` (Linux /proc)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if match(cmdline):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def _server_cpu(url: str) -> float:
    port = url.rsplit(":", 1)[1]
    return _cpu_seconds(lambda c: "streamlit run app.py" in c and f"--server.port {port}" in c)


def _browser_cpu() -> float:
    return _cpu_seconds(lambda c: "chromium" in c.split(" ", 1)[0])  # Debian: /usr/lib/chromium/chromium


def one_start(browser, cache: Path, size: int, log: Path, context=None) -> dict[str, float]:
    """One fresh server start. ``context``: a browser context to reuse (its HTTP cache then already
    holds Streamlit's static files, as for a returning user); default a fresh one (empty cache)."""
    browser_cpu0 = _browser_cpu()
    t0 = time.perf_counter()
    with streamlit_server(cache, size, log) as url:
        t_health = time.perf_counter() - t0
        page = context.new_page() if context else browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/reconstruct")
        page.wait_for_selector(RUN, timeout=120_000)
        t_page = time.perf_counter() - t0
        page.locator(RUN).click()
        page.locator(f"{VIEWER}[data-ready='1']").wait_for(timeout=120_000)  # the viewer has drawn its images
        t_first = time.perf_counter() - t0
        cpu = {"server_cpu": _server_cpu(url), "browser_cpu": _browser_cpu() - browser_cpu0}
        _wait_idle(page)
        reruns = []
        for _ in range(3):
            t = time.perf_counter()
            page.locator(RUN).click()
            page.wait_for_timeout(50)  # let the rerun start
            _wait_idle(page)
            reruns.append(time.perf_counter() - t - 0.05)
        page.close()
    return {"server": t_health, "page": t_page, "first": t_first, "rerun": sorted(reruns)[1], **cpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--browser-cache", action="store_true", help="also time starts with a warm browser HTTP cache")
    p.add_argument("--compare-preload", action="store_true", help="alternate preload on/off (cached sample)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = p.parse_args()
    if args.smoke:
        args.size, args.repeat = 64, 1
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if args.compare_preload:
            cache = Path(tmp) / "cache"
            one_start(browser, cache, args.size, Path(tmp) / "log")  # writes the sample (not counted)
            for _ in range(args.repeat):
                for flag in ("1", "0"):
                    os.environ["EXPLORER_PRELOAD"] = flag
                    rows.append((f"warm disk, preload {'on' if flag == '1' else 'off'}",
                                 one_start(browser, cache, args.size, Path(tmp) / "log")))
            os.environ.pop("EXPLORER_PRELOAD")
        else:
            for i in range(args.repeat):
                cold_cache = Path(tmp) / f"cold{i}"
                rows.append(("cold (sample generated)", one_start(browser, cold_cache, args.size, Path(tmp) / "log")))
                rows.append(("warm disk (sample cached)", one_start(browser, cold_cache, args.size, Path(tmp) / "log")))
            if args.browser_cache:
                context = browser.new_context(viewport=VIEWPORT)
                one_start(browser, Path(tmp) / "cold0", args.size, Path(tmp) / "log", context)  # fills its cache
                for i in range(args.repeat):
                    rows.append(("warm disk, browser cache warm",
                                 one_start(browser, Path(tmp) / "cold0", args.size, Path(tmp) / "log", context)))
                context.close()
        browser.close()
    print(f"\n## App latency, {args.size}x{args.size} 8-coil sample, the default methods, CPU")
    print("CPU columns: CPU seconds used from spawn to the first figure by the server process and by all")
    print(f"Chromium processes; their sum over {os.cpu_count()} cores bounds the first-figure time from below.")
    print("| start | server healthy (s) | page ready (s) | first reconstruction shown (s) | cached rerun (s) "
          "| server CPU (s) | browser CPU (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['server']:.2f} | {r['page']:.2f} | {r['first']:.2f} | {r['rerun']:.2f} "
              f"| {r['server_cpu']:.2f} | {r['browser_cpu']:.2f} |")
    print("\n| start | runs | median page ready (s) | median first reconstruction (s) | best first (s) |")
    print("|---|---|---|---|---|")
    for name in dict.fromkeys(name for name, _ in rows):
        got = [r for n, r in rows if n == name]
        print(f"| {name} | {len(got)} | {statistics.median(r['page'] for r in got):.2f} | "
              f"{statistics.median(r['first'] for r in got):.2f} | {min(r['first'] for r in got):.2f} |")


if __name__ == "__main__":
    main()

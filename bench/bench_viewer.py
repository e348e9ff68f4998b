"""The viewer's cost per rerun (issue 16): building its figures and measurements in Python, and what they send.

Usage: python bench/bench_viewer.py [--size 320] [--methods 6] [--repeats 5]

A reference and ``--methods`` reconstructions of a ``size x size`` slice (the embedded knee with noise added, as
different methods would give): median wall time over ``--repeats`` of each step a rerun of the Reconstruct page
does, and the size of the figure's JSON (what Streamlit sends to the browser). Every viewer control reruns the
page, so these add to each interaction; the flip buttons and blink frames act in the browser and cost nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.data.sample import SampleSpec, sample_path  # noqa: E402
from explorer.data.sources import open_volume  # noqa: E402
from explorer.viewer import detail, layouts  # noqa: E402
from explorer.viewer.measure import Box, roi_stats, window_preset  # noqa: E402


def _median(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--methods", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.methods, args.repeats = 64, 2, 1
    volume = open_volume(str(sample_path(SampleSpec("knee", size=args.size))))
    target = np.asarray(volume.read_slice(volume.num_slices // 2).target, dtype=np.float32)
    rng = np.random.default_rng(0)
    top = float(target.max())
    images = {f"method {i + 1}": np.abs(target + (0.02 + 0.01 * i) * top * rng.standard_normal(target.shape)).astype(np.float32)
              for i in range(args.methods)}
    h, w = target.shape
    side = min(48, h // 3)
    box = Box(h // 3, w // 3, h // 3 + side, w // 3 + side)
    line = ((h / 2, w / 4), (h / 2 + 10, 3 * w / 4))
    window = window_preset(target, "full")
    rows = []
    for mode in ("abs", "signed", "ssim"):
        seconds, errors = _median(lambda m=mode: layouts.compute_errors(target, images, m), args.repeats)
        rows.append((f"error maps ({mode}), {args.methods} images", seconds, None))
        scale = layouts.default_error_scale(mode, errors, top)
        seconds, fig = _median(lambda e=errors, m=mode, s=scale: layouts.grid_figure(
            target, images, columns=3, window=window, error_mode=m, errors=e, error_scale=s), args.repeats)
        rows.append((f"grid figure ({mode}), 3 columns", seconds, len(fig.to_json())))
    errors = layouts.compute_errors(target, images, "abs")
    seconds, fig = _median(lambda: layouts.flip_figure(target, images, "method 1", errors=errors, window=window), args.repeats)
    rows.append(("flip figure (every image in one panel)", seconds, len(fig.to_json())))
    seconds, fig = _median(lambda: layouts.blink_figure(("reference", target), ("method 1", images["method 1"]),
                                                        window=window), args.repeats)
    rows.append(("blink figure (2 frames)", seconds, len(fig.to_json())))
    seconds, _ = _median(lambda: window_preset(target, "tissue"), args.repeats)
    rows.append(("tissue window (Otsu)", seconds, None))
    seconds, _ = _median(lambda: roi_stats(target, images, box), args.repeats)
    rows.append(("ROI statistics (SSIM maps computed)", seconds, None))
    seconds, fig = _median(lambda: detail.roi_tiles_figure(target, images, errors, box, window=window, error_mode="abs",
                                                           error_scale=None), args.repeats)
    rows.append(("ROI tiles figure (48x48)", seconds, len(fig.to_json())))
    seconds, fig = _median(lambda: detail.line_profile_figure(target, images, line), args.repeats)
    rows.append(("line profile figure", seconds, len(fig.to_json())))

    print(f"viewer, {h}x{w}, reference + {args.methods} images, median of {args.repeats}")
    print(f"| {'step':<44} | {'ms':>8} | {'JSON (kB)':>9} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 11}|")
    for name, seconds, size in rows:
        print(f"| {name:<44} | {seconds * 1e3:8.1f} | {'' if size is None else f'{size / 1024:9.0f}':>9} |")


if __name__ == "__main__":
    main()

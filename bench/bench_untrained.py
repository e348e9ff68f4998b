"""Un-trained networks benchmark: each method's fast preset on the embedded sample, 4x random mask.

Run: ``python bench/bench_untrained.py [--family knee] [--method convdecoder] [--preset fast]``.
Prints one table per family: wall seconds, CPU seconds, iterations run, final/best loss, SSIM and
PSNR against the reference, next to zero-filled. Asserts nothing. Target (issue 3): the
ConvDecoder fast preset beats zero-filled SSIM on both families in about a minute on 2 CPU cores.
Wall time on a shared machine is inflated by other processes (and multi-threaded torch degrades badly
when the cores are oversubscribed): the load average is printed; with ``--threads 1`` the CPU seconds
are a contention-robust measure of the work (an idle 2-core machine runs it in roughly 0.55-0.6x that).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer.data.sources import open_volume  # noqa: E402
from explorer.device import describe_device, get_device  # noqa: E402
from explorer.masks import MaskConfig  # noqa: E402
from explorer.engine import prepare, run_method  # noqa: E402
from explorer.recon.base import get_method  # noqa: E402

METHODS = ("convdecoder", "deep_decoder", "dip")


def bench_family(family: str, methods: list[str], preset: str, source: str = "") -> list[tuple]:
    """Run zero-filled and each method on the middle slice of ``sample:<family>`` (with ``source`` options); returns
    table rows."""
    vol = open_volume(f"sample:{family}{source}")
    sl = vol.read_slice(vol.num_slices // 2)
    problem = prepare(sl, MaskConfig("random", 4, seed=0), get_device())
    zf = run_method(problem, "zero_filled")
    rows = [("zero_filled", "-", zf.seconds, float("nan"), 0, float("nan"), float("nan"), zf.metrics)]
    for name in methods:
        losses: list[float] = []
        config = get_method(name).make_config({"preset": preset})
        cpu = time.process_time()
        res = run_method(problem, name, config, progress=lambda step, total, info: losses.append(info["loss"]))
        cpu = time.process_time() - cpu
        s = config.settings()
        arch = f"{s.layers}x{s.width}, lr {s.lr:g}"
        rows.append((name, arch, res.seconds, cpu, len(losses), losses[-1], min(losses), res.metrics))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", action="append", choices=("knee", "brain"), help="default: knee and brain")
    p.add_argument("--method", action="append", choices=METHODS, help="default: all three")
    p.add_argument("--preset", default="fast", choices=("fast", "paper"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = p.parse_args()
    if args.smoke:
        args.family, args.method = ["knee"], args.method or ["convdecoder"]
    if args.threads:
        torch.set_num_threads(args.threads)
    families = args.family or ["knee", "brain"]
    methods = args.method or list(METHODS)
    for family in families:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        rows = bench_family(family, methods, args.preset, ",size=64,slices=3" if args.smoke else "")
        zf_ssim = rows[0][-1]["ssim"]
        print(f"\n## {family} sample (320x320, 8 coils), 4x random mask, {args.preset} preset; "
              f"{describe_device()}, {torch.get_num_threads()} threads, load average {load:.1f} at start")
        print(f"| {'method':<12} | {'net':<16} | {'wall s':>7} | {'cpu s':>7} | {'its':>5} | {'last loss':>9} "
              f"| {'best loss':>9} | {'SSIM':>6} | {'dSSIM vs ZF':>11} | {'PSNR':>6} |")
        print(f"|{'-' * 14}|{'-' * 18}|{'-' * 9}|{'-' * 9}|{'-' * 7}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 13}|{'-' * 8}|")
        for name, arch, wall, cpu, its, last, best, m in rows:
            print(f"| {name:<12} | {arch:<16} | {wall:7.1f} | {cpu:7.1f} | {its:5d} | {last:9.4g} | {best:9.4g} "
                  f"| {m['ssim']:6.4f} | {m['ssim'] - zf_ssim:+11.4f} | {m['psnr']:6.2f} |")


if __name__ == "__main__":
    main()

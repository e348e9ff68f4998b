"""Foundation benchmark: load, ESPIRiT, each method on the default sample; one-slice read memory.

Run: ``python bench/bench_foundation.py [--family knee] [--skip-memory]``. Prints tables; asserts nothing.
Targets (issue 2): ESPIRiT no slower than ``bart ecalib -m1`` (ratio printed); reading one slice of a
fastMRI-size volume (640x368, 15 coils, 35 slices) keeps peak memory far below the volume size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explorer.data.sample import SampleSpec, generate, sample_path  # noqa: E402
from explorer.data.sources import open_volume  # noqa: E402
from explorer.device import get_device  # noqa: E402
from explorer.masks import MaskConfig  # noqa: E402
from explorer.engine import prepare, run_method  # noqa: E402
from explorer.recon.base import available_methods  # noqa: E402


def _timed(fn, repeat=1):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def bench_pipeline(family: str, size: int = 320) -> None:
    spec = SampleSpec(family=family, size=size)
    _, t_gen = _timed(lambda: generate(spec))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EXPLORER_CACHE_DIR"] = tmp
        _, t_first = _timed(lambda: sample_path(spec))
        _, t_cached = _timed(lambda: sample_path(spec), repeat=5)
        vol = open_volume(str(sample_path(spec)))
        sl, t_read = _timed(lambda: vol.read_slice(vol.num_slices // 2), repeat=5)
        device = get_device()
        problem = prepare(sl, MaskConfig("random", 4, seed=0), device)
        _, t_maps = _timed(lambda: problem.maps_and_seconds)
        rows = [("generate sample (5 slices)", t_gen, ""), ("materialise sample .h5 (first use)", t_first, ""),
                ("sample path (cached)", t_cached, ""), ("read one slice", t_read, f"{sl.num_coils}x{sl.shape[0]}x{sl.shape[1]}"),
                ("ESPIRiT maps (torch)", t_maps, f"calib from 4x random mask, device {device}")]
        for m in available_methods():
            res = run_method(problem, m.name)
            rows.append((f"method {m.name}", res.seconds, f"SSIM {res.metrics['ssim']:.4f}  PSNR {res.metrics['psnr']:.2f}"))
    print(f"\n## Pipeline on the default {family} sample ({size}x{size}, 8 coils), {torch.get_num_threads()} threads")
    print(f"| {'step':<38} | {'seconds':>8} | notes")
    print(f"|{'-' * 40}|{'-' * 10}|------")
    for name, sec, note in rows:
        print(f"| {name:<38} | {sec:8.3f} | {note}")


def bench_espirit_vs_bart(smoke: bool = False) -> None:
    script = Path(__file__).with_name("bench_espirit.py")
    if script.is_file():
        print("\n## ESPIRiT vs BART (bench/bench_espirit.py)")
        args = ["--smoke"] if smoke else ["--size", "320", "--coils", "8", "--repeat", "3"]
        subprocess.run([sys.executable, str(script), *args], check=True)


_MEMORY_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from explorer.data.fastmri import FastMRIVolume

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

before = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
t = time.perf_counter()
vol = FastMRIVolume(sys.argv[1])
sl = vol.read_slice(vol.num_slices // 2)
dt = time.perf_counter() - t
print(before, status("VmHWM:"), dt)
"""


def bench_memory() -> None:
    from explorer.data.fastmri import write_volume

    shape = (35, 15, 640, 368)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fastmri_size.h5"
        rng = np.random.default_rng(0)
        kspace = (rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)).astype(np.complex64)
        write_volume(path, kspace, padding=(17, 351), recon_size=(320, 320))
        volume_mb = kspace.nbytes / 2**20
        del kspace
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(path), str(Path(__file__).resolve().parents[1])],
                             capture_output=True, text=True, check=True).stdout.split()
    before, after, dt = int(out[0]) / 1024, int(out[1]) / 1024, float(out[2])
    slice_mb = volume_mb / shape[0]
    print("\n## Reading one slice of a fastMRI-size volume (35 x 15 x 640 x 368 complex64)")
    print("| volume on disk (MiB) | one slice (MiB) | peak RSS growth reading it (MiB) | ratio to volume | seconds |")
    print("|---|---|---|---|---|")
    print(f"| {volume_mb:.0f} | {slice_mb:.1f} | {after - before:.1f} | {(after - before) / volume_mb:.3f} | {dt:.3f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--family", default="knee")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-bart", action="store_true")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI); no 1 GB memory case)")
    args = p.parse_args()
    bench_pipeline(args.family, 64 if args.smoke else 320)
    if not args.skip_bart:
        bench_espirit_vs_bart(args.smoke)
    if not (args.skip_memory or args.smoke):
        bench_memory()


if __name__ == "__main__":
    main()

"""Benchmark ESPIRiT maps: explorer.espirit vs SigPy EspiritCalib vs `bart ecalib -m1`, and two map sets
(explorer.espirit.espirit(sets=2)) vs `bart ecalib -m2` (issue 14: target <= 1.0x).

Usage: python bench/bench_espirit.py [--size 320] [--coils 8] [--repeat 3]

Synthetic fully sampled k-space (smooth coil profiles x a structured object). Times are medians over
--repeat interleaved rounds (ours after one warm-up call), wall clock and CPU seconds (all threads;
children for BART: CPU time is far less sensitive to other load on a shared machine); BART is timed
as a subprocess, with `bart fft` shown so
that process start-up and .cfl I/O are visible. Agreement is per-pixel |<S, S_sigpy>| / (|S||S_sigpy|)
on the common support (maps agree up to a per-pixel phase), plus the fraction of pixels where the
supports agree. BART's -t thresholds squared singular values, so sigpy's thresh=0.02 is -t 0.0004.
Thread settings are left as the environment has them (printed in the header).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.data.cfl import read_cfl, write_cfl  # noqa: E402
from explorer.espirit import espirit, espirit_maps  # noqa: E402
from explorer.physics import fft2c  # noqa: E402


def synthetic_kspace(coils: int, n: int) -> torch.Tensor:
    """Fully sampled k-space ``(C, n, n)`` complex64: Gaussian coil profiles, ellipses, light noise."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    img = ((yy / 0.8) ** 2 + (xx / 0.7) ** 2 < 1).float()
    img = img + 0.6 * (((yy + 0.2) / 0.3) ** 2 + ((xx - 0.2) / 0.2) ** 2 < 1).float()
    img = img - 0.5 * (((yy - 0.35) / 0.15) ** 2 + ((xx + 0.25) / 0.2) ** 2 < 1).float()
    img = img * torch.exp(1j * 0.5 * (xx - yy))
    maps = []
    for c in range(coils):
        a = 2 * np.pi * c / coils
        mag = torch.exp(-((yy - 1.3 * np.sin(a)) ** 2 + (xx - 1.3 * np.cos(a)) ** 2) / 1.5)
        maps.append(mag * torch.exp(1j * (0.6 * yy * np.cos(a) + 0.4 * xx * np.sin(a) + a)))
    k = fft2c((torch.stack(maps) * img).to(torch.complex64))
    g = torch.Generator().manual_seed(0)
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g))
    return k + 1e-4 * k.abs().max() * noise


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children, all threads."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed_interleaved(methods: dict, repeat: int) -> dict:
    """Median wall and CPU time over ``repeat`` rounds, the methods interleaved within each round (so
    that load from other processes hits all of them alike), and each method's last result."""
    times, out = {name: [] for name in methods}, {}
    for _ in range(repeat):
        for name, fn in methods.items():
            t0, c0 = time.perf_counter(), _cpu_seconds()
            out[name] = fn()
            times[name].append((time.perf_counter() - t0, _cpu_seconds() - c0))
    out = {name: r() if callable(r) else r for name, r in out.items()}
    return {name: (statistics.median(t for t, _ in ts), statistics.median(c for _, c in ts), out[name])
            for name, ts in times.items()}


def agreement(maps: torch.Tensor, ref: torch.Tensor) -> str:
    sa, sb = maps.abs().sum(0) > 0, ref.abs().sum(0) > 0
    both = sa & sb
    sim = (maps.conj() * ref).sum(0).abs() / (maps.norm(dim=0) * ref.norm(dim=0)).clamp_min(1e-30)
    s = sim[both].double()
    return (f"{(sa == sb).float().mean().item():7.4f} {s.mean().item():9.6f} "
            f"{s.quantile(0.001).item():9.6f} {s.min().item():7.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = p.parse_args()
    if args.smoke:
        args.size, args.coils, args.repeat = 64, 4, 1
    n, c, rep = args.size, args.coils, args.repeat
    ksp = synthetic_kspace(c, n)
    threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"# {c} coils, {n}x{n}, calib 24, kernel 6, thresh 0.02, crop 0.95; median of {rep}; "
          f"cpus={os.cpu_count()} torch threads={torch.get_num_threads()} env={threads}")

    methods = {}  # name -> callable returning maps (C, H, W) or None
    try:
        import sigpy.mri as mr

        methods["sigpy EspiritCalib"] = lambda: torch.from_numpy(mr.app.EspiritCalib(
            ksp.numpy(), calib_width=24, thresh=0.02, kernel_width=6, crop=0.95, show_pbar=False).run())
    except ImportError:
        print("# sigpy not installed: agreement columns left empty")
    espirit_maps(ksp)  # warm-up (allocator, FFT plans)
    ours_cpu = "explorer espirit_maps (cpu)"
    methods[ours_cpu] = lambda: espirit_maps(ksp)
    ours_two = "explorer espirit sets=2 (cpu)"
    methods[ours_two] = lambda: espirit(ksp, (24, 24), 6, sets=2)[0][0, 0]  # agreement: its first set
    if torch.cuda.is_available():
        kc = ksp.cuda()
        espirit_maps(kc)

        def on_gpu():
            out = espirit_maps(kc)
            torch.cuda.synchronize()
            return out.cpu()

        methods[f"explorer espirit_maps ({torch.cuda.get_device_name()})"] = on_gpu
    tmp = tempfile.TemporaryDirectory()
    d = Path(tmp.name)
    if shutil.which("bart"):
        write_cfl(d / "ksp", ksp.numpy().transpose(1, 2, 0)[:, :, None, :])  # [H, W, 1, C]

        def bart(*cmd: str):
            def run():
                subprocess.run(["bart", *cmd], cwd=d, check=True, capture_output=True)
                if cmd[0] == "ecalib" and "-m1" in cmd:  # read lazily, after the timing: [H, W, 1, C] -> (C, H, W)
                    return lambda: torch.from_numpy(read_cfl(d / cmd[-1]).reshape(n, n, c).transpose(2, 0, 1))
            return run

        methods["bart fft 3 (start-up + I/O)"] = bart("fft", "3", "ksp", "fft")
        methods["bart ecalib -m1 -r 24 -k 6"] = bart("ecalib", "-m1", "-r", "24", "-k", "6", "ksp", "s1")
        methods["bart ecalib ... -t 0.0004 -c 0.95"] = bart(
            "ecalib", "-m1", "-r", "24", "-k", "6", "-t", "0.0004", "-c", "0.95", "ksp", "s2")
        methods["bart ecalib -m2 ... -t 0.0004 -c 0.95"] = bart(
            "ecalib", "-m2", "-r", "24", "-k", "6", "-t", "0.0004", "-c", "0.95", "ksp", "s3")
    else:
        print("# bart not found: BART rows skipped")
    results = timed_interleaved(methods, rep)
    tmp.cleanup()
    ref = results.get("sigpy EspiritCalib", (None, None, None))[2]
    t_ours = results[ours_cpu][0]

    print(f"\n{'method':36s} {'wall [s]':>9s} {'cpu [s]':>8s} | vs sigpy: {'supp=':>7s} {'mean sim':>9s} "
          f"{'0.1% sim':>9s} {'min':>7s}")
    print("-" * 104)
    for name, (t, cpu, maps) in results.items():
        agree = agreement(maps, ref) if (maps is not None and ref is not None) else ""
        print(f"{name:36s} {t:9.3f} {cpu:8.3f} |          {agree}")
    for name, (t, _, _) in results.items():
        if "ecalib -m1" in name or "ecalib ..." in name:
            print(f"ratio ours(cpu) / [{name}] = {t_ours / t:.3f}")
        if "ecalib -m2" in name:
            print(f"ratio ours two sets(cpu) / [{name}] = {results[ours_two][0] / t:.3f}")


if __name__ == "__main__":
    main()

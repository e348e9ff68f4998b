"""Benchmark the sparse-recovery methods (l1-wavelet, TV) on the default knee sample.

    python bench/bench_sparse.py [--threads 1] [--repeats 5] [--iterations 30] [--no-bart]

Prints four tables (no timed asserts):

1. time and SSIM per method at its defaults (320x320, 8 coils, 4x random mask, ESPIRiT maps);
2. ours vs ``bart pics`` at equal iterations on the same k-space, maps and data scale (``-w``):
   time ratio ours/BART (wall and CPU), NRMSE of |x| to the target, objective (one common
   function: ours) -- l1: ``-R W:3:0:lam -n`` (BART's default dau2 = db2, symmetric boundaries,
   5 levels at 320) against our db2 with 5 levels and against our default db4/4; TV: ``-R T:3:0:lam``
   (BART: ADMM whose ``-i`` caps the total inner CG iterations) against our primal-dual;
3. one l1 iteration against its floor: one A + one A^H (``explorer.physics.Operator``) + one
   forward and one inverse wavelet transform, each timed alone;
4. acceptance: SSIM of l1, TV and zero-filled on both sample families (4x random).

Timing: interleaved repeats, min and median wall time, and process CPU time (ours) or the
children's CPU time (BART). BART gets ``OMP_NUM_THREADS`` = ``--threads`` (the machine is shared:
with more threads than free cores, every OpenMP/ATen parallel region waits for descheduled
threads, which is why the default is 1).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.data.cfl import read_cfl, write_cfl
from explorer.data.sources import open_volume
from explorer.engine import prepare, run_method
from explorer.masks import MaskConfig
from explorer.recon import solvers
from explorer.recon.sparse import (
    L1Config,
    TVConfig,
    data_scale,
    l1_objective,
    l1_wavelet,
    total_variation,
    tv_objective,
)


def timed(fn, runs: dict, name: str):
    """Append (wall, cpu) of one call of ``fn`` to ``runs[name]``; return its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    runs.setdefault(name, []).append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def summary(samples) -> tuple[float, float, float]:
    walls = sorted(s[0] for s in samples)
    cpus = sorted(s[1] for s in samples)
    return walls[0], walls[len(walls) // 2], cpus[len(cpus) // 2]


def bart_pics(workdir: Path, args: list[str], threads: int) -> tuple[np.ndarray, float, float, float]:
    """Run ``bart pics``; returns (image, wall, BART's own total time, children CPU time)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(["bart", "pics", "-d2", *args, str(workdir / "ksp"), str(workdir / "sens"), str(workdir / "out")],
                          check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"Total Time: ([0-9.]+)", proc.stdout + proc.stderr)
    internal = float(match.group(1)) if match else float("nan")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    image = read_cfl(workdir / "out")
    return image.reshape(image.shape[:2]), wall, internal, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iterations", type=int, default=30, help="iterations for the BART comparison")
    p.add_argument("--l1-lam", type=float, default=L1Config().lam)
    p.add_argument("--tv-lam", type=float, default=TVConfig().lam)
    p.add_argument("--no-bart", action="store_true")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    size = ",size=64,slices=3" if args.smoke else ""
    if args.smoke:
        args.repeats, args.iterations = 1, 2
    volume = open_volume(f"sample:knee{size}")
    problem = prepare(volume.read_slice(volume.num_slices // 2), MaskConfig("random", 4.0), torch.device("cpu"))
    op = problem.operator("1")  # one ESPIRiT map set, as BART ecalib -m1 (the defaults may use two)
    y, target = problem.y, torch.from_numpy(problem.target)
    print(f"knee sample slice {volume.num_slices // 2}: {tuple(y.shape)} 4x random, torch {torch.__version__}, threads {args.threads}")

    # 1. defaults
    runs, ssim = {}, {}
    for _ in range(args.repeats):
        for name in ("zero_filled", "l1", "tv"):
            result = timed(lambda name=name: run_method(problem, name), runs, name)
            ssim[name] = result.metrics["ssim"]
    print(f"\n1. methods at their defaults (l1: {L1Config()}; tv: {TVConfig()})")
    print(f"{'method':<13}{'SSIM':>8}{'wall min':>10}{'wall med':>10}{'CPU med':>9}")
    for name in ("zero_filled", "l1", "tv"):
        lo, med, cpu = summary(runs[name])
        print(f"{name:<13}{ssim[name]:8.4f}{lo:10.3f}{med:10.3f}{cpu:9.3f}")

    # 2. vs BART
    if not args.no_bart and shutil.which("bart"):
        bart_vs_ours(args, y, op, target)
    else:
        print("\n2. BART comparison skipped (bart not found or --no-bart)")

    # 3. one l1 iteration vs its floor
    cfg = L1Config()
    wav = solvers.Wavelet(cfg.wavelet, cfg.levels)
    x = op.adjoint(y)
    coeffs = wav.forward_complex(x)
    n1, n2 = 10, 40
    parts = {"A": lambda: op.forward(x), "A^H": lambda: op.adjoint(y), "W": lambda: wav.forward_complex(x),
             "W^T": lambda: wav.inverse_complex(coeffs), "fft2+ifft2 (C coils, no shifts)": lambda: torch.fft.ifft2(torch.fft.fft2(y, norm="ortho"), norm="ortho"),
             f"l1 x{n1}": lambda: l1_wavelet(y, op, cfg.lam, n1, cfg.wavelet, cfg.levels),
             f"l1 x{n2}": lambda: l1_wavelet(y, op, cfg.lam, n2, cfg.wavelet, cfg.levels)}
    samples: dict[str, list[tuple[float, float]]] = {}
    with torch.no_grad():
        for _ in range(args.repeats):
            rep = {}
            for name, fn in parts.items():
                inner = 1 if name.startswith("l1") else 10
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(inner):
                    fn()
                rep[name] = ((time.perf_counter() - wall) / inner, (time.process_time() - cpu) / inner)
            rep["floor = A + A^H + W + W^T"] = tuple(sum(rep[k][i] for k in ("A", "A^H", "W", "W^T")) for i in range(2))
            rep["one l1 iteration"] = tuple((rep[f"l1 x{n2}"][i] - rep[f"l1 x{n1}"][i]) / (n2 - n1) for i in range(2))
            rep["FFT floor = fft2+ifft2 + W + W^T"] = tuple(sum(rep[k][i] for k in ("fft2+ifft2 (C coils, no shifts)", "W", "W^T")) for i in range(2))
            rep["ratio"] = (rep["one l1 iteration"][0] / rep["floor = A + A^H + W + W^T"][0],) * 2
            rep["FFT ratio"] = (rep["one l1 iteration"][0] / rep["FFT floor = fft2+ifft2 + W + W^T"][0],) * 2
            for name, value in rep.items():
                samples.setdefault(name, []).append(value)
    print(f"\n3. one l1 iteration ({cfg.wavelet}, {cfg.levels} levels) vs its floor, ms: min / median wall, median CPU "
          f"(per repeat; iteration = (l1 x{n2} - l1 x{n1}) / {n2 - n1})")
    for name in ("A", "A^H", "W", "W^T", "fft2+ifft2 (C coils, no shifts)", "floor = A + A^H + W + W^T",
                 "FFT floor = fft2+ifft2 + W + W^T", "one l1 iteration"):
        lo, med, cpu = summary(samples[name])
        print(f"   {name:<34}{lo * 1e3:8.2f}{med * 1e3:8.2f}{cpu * 1e3:8.2f}")
    ratios = sorted(v[0] for v in samples["ratio"])
    print(f"   ratio iteration / floor (per repeat): min {ratios[0]:.2f}, median {ratios[len(ratios) // 2]:.2f}   target <= 2")
    ratios = sorted(v[0] for v in samples["FFT ratio"])
    print(f"   ratio iteration / FFT floor (no fftshift copies): min {ratios[0]:.2f}, median {ratios[len(ratios) // 2]:.2f}")

    # 4. acceptance on both families
    print("\n4. acceptance: SSIM at 4x random, defaults, middle slice")
    print(f"{'family':<8}{'zero_filled':>12}{'l1':>8}{'tv':>8}")
    for family in ("knee", "brain"):
        vol = open_volume(f"sample:{family}{size}")
        prob = prepare(vol.read_slice(vol.num_slices // 2), MaskConfig("random", 4.0), torch.device("cpu"))
        scores = [run_method(prob, name).metrics["ssim"] for name in ("zero_filled", "l1", "tv")]
        print(f"{family:<8}{scores[0]:12.4f}{scores[1]:8.4f}{scores[2]:8.4f}")


def bart_vs_ours(args, y, op, target) -> None:
    """Table 2: equal iterations, same data scale (-w), same maps and mask."""
    n, lam1, lamtv = args.iterations, args.l1_lam, args.tv_lam
    scale = float(data_scale(y, op)[0])
    nrmse = lambda x: float(np.linalg.norm(np.abs(np.asarray(x)).ravel() - target.numpy().ravel()) / np.linalg.norm(target.numpy()))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_cfl(work / "ksp", y[0].permute(1, 2, 0).numpy()[:, :, None, :])
        write_cfl(work / "sens", op.maps[0].permute(1, 2, 0).numpy()[:, :, None, :])
        common = ["-S", "-w", f"{scale:.9g}", "-i", str(n)]
        cases = {
            "l1 db2/5 (ours) vs BART W dau2": (lambda: l1_wavelet(y, op, lam1, n, "db2", 5), common + ["-n", "-R", f"W:3:0:{lam1}"],
                                               lambda x: l1_objective(x, y, op, lam1, "db2", 5)),
            "l1 db4/4 (ours) vs BART W dau2": (lambda: l1_wavelet(y, op, lam1, n, "db4", 4), None, None),
            "tv (ours) vs BART T": (lambda: total_variation(y, op, lamtv, n), common + ["-R", f"T:3:0:{lamtv}"],
                                    lambda x: tv_objective(x, y, op, lamtv)),
        }
        runs, images = {}, {}
        with torch.no_grad():
            for _ in range(args.repeats):
                for name, (ours, bart_args, _) in cases.items():
                    images[name] = timed(ours, runs, name)[0]
                    if bart_args is not None:
                        img, wall, internal, cpu = bart_pics(work, bart_args, args.threads)
                        runs.setdefault(name + " BART", []).append((wall, cpu, internal))
                        images[name + " BART"] = torch.from_numpy(img)[None]
    print(f"\n2. vs bart pics at {n} iterations, data scale -w {scale:.4g}, lam l1 {lam1:g} tv {lamtv:g} "
          "(objective: ours on normalised data, db2/5 for l1; n/a: different wavelets)")
    print(f"{'case':<32}{'ours min/med s':>15}{'BART min/med s':>15}{'ratio min':>10}{'ratio med':>10}{'CPU ratio':>10}"
          f"{'NRMSE ours':>11}{'NRMSE BART':>11}{'obj ours':>10}{'obj BART':>10}")
    for name, (_, bart_args, objective) in cases.items():
        ref = name if bart_args is not None else "l1 db2/5 (ours) vs BART W dau2"
        ours_lo, ours_med, ours_cpu = summary(runs[name])
        b = runs[ref + " BART"]
        b_int = sorted(v[2] for v in b)
        b_lo, b_med = b_int[0], b_int[len(b) // 2]
        b_cpu = sorted(v[1] for v in b)[len(b) // 2]
        xb, x = images[ref + " BART"], images[name][None]
        print(f"{name:<32}{ours_lo:7.3f}/{ours_med:<7.3f}{b_lo:7.3f}/{b_med:<7.3f}{ours_lo / b_lo:10.2f}{ours_med / b_med:10.2f}"
              f"{ours_cpu / b_cpu:10.2f}{nrmse(x[0]):11.4f}{nrmse(xb[0]):11.4f}"
              + (f"{float(objective(x)):10.3f}{float(objective(xb)):10.3f}" if objective else f"{'n/a':>10}{'n/a':>10}"))
    print("   BART time = its own 'Total Time' (excludes process start and file I/O); CPU ratio = ours process CPU / BART children CPU (medians)")
    print("   TV: BART's ADMM stops when its inner CG iterations (one A^H A each, max 10 per ADMM step) exceed -i; ours does one A + one A^H per iteration")
    with tempfile.TemporaryDirectory() as tmp:  # BART's own data scale (no -w): its k-space calibration-region rule
        work = Path(tmp)
        write_cfl(work / "ksp", y[0].permute(1, 2, 0).numpy()[:, :, None, :])
        write_cfl(work / "sens", op.maps[0].permute(1, 2, 0).numpy()[:, :, None, :])
        proc = subprocess.run(["bart", "pics", "-d3", "-i", "1", "-R", "W:3:0:0.01", str(work / "ksp"), str(work / "sens"), str(work / "out")],
                              capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), check=False)
        match = re.search(r"Scaling: ([0-9.eE+-]+)", proc.stdout + proc.stderr)
    if match:
        own = float(match.group(1))
        print(f"   BART's own scale (no -w) {own:.4g} vs ours {scale:.4g}: our lam = BART's -r lam x {own / scale:.3f} when BART scales itself")


if __name__ == "__main__":
    main()

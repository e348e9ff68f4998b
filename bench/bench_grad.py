"""Differentiable reconstruction benchmark: forward vs forward + backward w.r.t. ``y``, time and peak memory.

Run: ``python bench/bench_grad.py [--method NAME ...] [--iterations 100] [--repeats 2] [--fit-iterations 20]``.

On the embedded knee sample's middle slice (320x320, 8 coils), 4x random mask (seed 0), each method in
its own subprocess (so peak memory is its own): ``reconstruct`` under ``torch.no_grad`` (forward) and
under ``torch.enable_grad`` with ``y.requires_grad`` followed by ``backward`` of ``sum |x|^2`` (the
differentiable reconstruction an attack runs each step). Peak memory is the rise of the process's
resident-set high-water mark (``VmHWM`` after ``malloc_trim`` and a ``/proc/self/clear_refs`` reset, with
glibc's mmap threshold fixed at 64 KB so freed tensors leave the resident set) above its size before the
call: CPU memory; on CUDA ``torch.cuda.max_memory_allocated`` instead. l1/TV run ``--iterations`` unrolled
iterations (checkpointed per iteration beyond 1 GiB of graph; target < ~2 GB). The
un-trained networks (gradient through data consistency only) run a short fit of ``--fit-iterations``.
Times (minimum over ``--repeats`` after one warm-up) and memory come from separate subprocesses (the
memory setting slows allocation). Rows "(plain)" / "(checkpoint)": l1/TV with checkpointing forced off / on.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Tensors of 64 KB or more are mmapped and unmapped when freed (glibc otherwise raises the threshold and
# keeps freed memory in its heap, hiding later peaks from the resident size).
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
DEFAULT_METHODS = ("zero_filled", "sense", "l1", "tv", "unet", "varnet", "convdecoder")


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _measure(fn) -> tuple[float, float]:
    """(seconds, peak MB above the current resident size) of ``fn()``."""
    import torch  # noqa: PLC0415

    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back: the resident size is what is in use
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    except OSError:
        pass
    before = _rss_kb("VmRSS")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (_rss_kb("VmHWM") - before) / 1024
    if torch.cuda.is_available():
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    return seconds, peak


def child(method: str, iterations: int, fit_iterations: int, repeats: int, force: str = "",
          source: str = "sample:knee") -> dict:
    import explorer  # noqa: F401, PLC0415  (OpenMP wait policy before torch)
    import torch  # noqa: PLC0415

    if force:  # for comparison: l1/TV differentiated with / without gradient checkpointing, whatever the size
        from explorer.recon import solvers  # noqa: PLC0415

        iterate = solvers.iterate
        solvers.iterate = lambda *a, **k: iterate(*a, **{**k, "checkpoint": force == "checkpoint" and torch.is_grad_enabled()})

    from explorer.data.sources import open_volume  # noqa: PLC0415
    from explorer.engine import MethodInstance, prepare, reconstruct  # noqa: PLC0415
    from explorer.masks import MaskConfig  # noqa: PLC0415

    volume = open_volume(source)
    problem = prepare(volume.read_slice(volume.num_slices // 2), MaskConfig("random", 4.0, None, 0))
    values = {"iterations": iterations} if method in ("l1", "tv") else {}
    values.update({"iterations": fit_iterations} if method in ("convdecoder", "deep_decoder", "dip") else {})
    instance = MethodInstance.of(method, values, anatomy="knee")
    if instance.spec.needs_maps(instance.config):
        problem.maps_and_seconds  # noqa: B018 (estimated once, outside the timings)

    def forward():
        with torch.no_grad():
            reconstruct(problem, instance)

    def backward():
        y = problem.y.clone().requires_grad_(True)
        with torch.enable_grad():
            x = reconstruct(problem.perturbed(y=y), instance)
            x.abs().pow(2).sum().backward()
        assert y.grad is not None and torch.isfinite(y.grad.real).all()

    out = {}
    for name, fn in (("forward", forward), ("backward", backward)):
        fn()  # warm-up
        runs = [_measure(fn) for _ in range(repeats)]
        out[name] = {"seconds": min(r[0] for r in runs), "peak_mb": max(r[1] for r in runs)}
    out["gradient"] = instance.capabilities.gradient
    out["device"] = str(problem.device)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", action="append", default=None)
    p.add_argument("--iterations", type=int, default=100, help="l1/TV unrolled iterations")
    p.add_argument("--fit-iterations", type=int, default=20, help="un-trained networks: fit steps")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--no-variants", action="store_true", help="skip the l1/TV rows with forced (no) checkpointing")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--force", default="", choices=("", "plain", "checkpoint"), help=argparse.SUPPRESS)
    p.add_argument("--source", default="sample:knee", help=argparse.SUPPRESS)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = p.parse_args()
    if args.smoke:
        args.method, args.iterations, args.fit_iterations = args.method or ["zero_filled", "l1"], 3, 2
        args.repeats, args.no_variants, args.source = 1, True, "sample:knee,size=64,slices=3,coils=4"
    if args.child:
        print(json.dumps(child(args.child, args.iterations, args.fit_iterations, args.repeats, args.force, args.source)))
        return
    methods = args.method or list(DEFAULT_METHODS)
    print(f"{args.source}, 4x random seed 0; l1/TV {args.iterations} iterations; fits {args.fit_iterations} steps")
    print(f"{'method':<18}{'gradient':<18}{'forward s':>10}{'fwd+bwd s':>11}{'ratio':>7}{'fwd MB':>9}{'fwd+bwd MB':>12}{'ratio':>7}")
    rows = [(m, "") for m in methods]
    if not args.no_variants:
        rows += [(m, force) for force in ("plain", "checkpoint") for m in methods if m in ("l1", "tv")]
    for method, force in rows:
        results = []
        for env, repeats in ((os.environ.copy(), args.repeats), (CHILD_ENV, 1)):  # timings; then memory
            run = subprocess.run([sys.executable, __file__, "--child", method, "--iterations", str(args.iterations),
                                  "--fit-iterations", str(args.fit_iterations), "--repeats", str(repeats),
                                  "--force", force, "--source", args.source], capture_output=True, text=True, env=env)
            if run.returncode != 0:
                results = None
                print(f"{method:<13}failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
                break
            results.append(json.loads(run.stdout.strip().splitlines()[-1]))
        if results is None:
            continue
        timing, memory = results
        f, b = timing["forward"], timing["backward"]
        fm, bm = memory["forward"]["peak_mb"], memory["backward"]["peak_mb"]
        name = f"{method} ({force})" if force else method
        print(f"{name:<18}{timing['gradient']:<18}{f['seconds']:>10.2f}{b['seconds']:>11.2f}{b['seconds'] / f['seconds']:>7.1f}"
              f"{fm:>9.0f}{bm:>12.0f}{bm / max(fm, 1):>7.1f}")
    print("l1/TV checkpoint their iterations when the graph would pass 1 GiB (explorer.recon.sparse.CHECKPOINT_BYTES); "
          "(plain) / (checkpoint): forced off / on, for comparison")

if __name__ == "__main__":
    main()

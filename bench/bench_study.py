"""Benchmark studies (issue 15): the same study serially and on a local Ray with 1 and 2 workers (target: 2 workers
>= 1.7x one), the overhead per Ray task against the task's compute, and optionally ``--preset paper-fast`` end to end.

Usage: python bench/bench_study.py [--size 160] [--slices 6] [--paper]

The study: l1 and TV (clean, 50 / 100 iterations) on ``--slices`` slices of the embedded knee at ``--size``, so
each unit computes for about a second. Ray start-up is timed separately (``ray.init`` until every worker has
started and imported the explorer) and excluded from the per-task overhead: overhead = (Ray 1-worker wall - start-up - serial wall) / units.
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
os.environ.setdefault("OMP_NUM_THREADS", "1")

from explorer.study.runner import run_study  # noqa: E402
from explorer.study.spec import parse_spec  # noqa: E402
from explorer.study.units import expand  # noqa: E402


def _warm_body() -> int:
    """Start a worker and import what a unit imports (so the timed run measures steady-state work)."""
    import time as _time

    import explorer.study.units  # noqa: F401
    import explorer.recon.sparse  # noqa: F401

    _time.sleep(0.5)  # held long enough that the other warm-up tasks land on other workers
    return os.getpid()


_warm = None


def main() -> None:
    global _warm
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--slices", type=int, default=6)
    ap.add_argument("--paper", action="store_true", help="also time python -m explorer study --preset paper-fast")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: only checks that the script runs (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.size, args.slices, args.paper = 32, 2, False
    import torch

    torch.set_num_threads(1)
    source = f"sample:knee,size={args.size},slices={args.slices}"
    spec = parse_spec({"name": "bench", "data": [{"source": source, "slices": "all"}],
                       "methods": ["l1", "tv", "sense"], "experiments": ["clean"]})
    units = expand(spec)  # also writes the sample once
    print(f"# {len(units)} units ({source}, l1 + TV + SENSE clean), {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, 1 thread per worker")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_study(spec, Path(tmp) / "serial", units=units)
        serial = time.perf_counter() - t0
        rows.append(("serial (this process)", serial))
        import ray

        for workers in (1, 2):
            t0 = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=40,
                     runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                                               "OMP_NUM_THREADS": "1"}})
            _warm = ray.remote(num_cpus=1)(_warm_body)
            ray.get([_warm.remote() for _ in range(workers)])  # every worker up and importing: start-up apart
            startup = time.perf_counter() - t0
            t1 = time.perf_counter()
            run_study(spec, Path(tmp) / f"ray{workers}", "ray", units=units)
            wall = time.perf_counter() - t1
            ray.shutdown()
            rows.append((f"ray, {workers} worker(s) (start-up {startup:.1f} s apart)", wall))
    print(f"{'executor':48s} {'wall s':>8s} {'per unit s':>11s}")
    for name, wall in rows:
        print(f"{name:48s} {wall:8.2f} {wall / len(units):11.3f}")
    one, two = rows[1][1], rows[2][1]
    print(f"speed-up 2 workers vs 1: {one / two:.2f}x (target >= 1.7x)")
    print(f"Ray overhead per task (1 worker vs serial): {(one - serial) / len(units) * 1000:.0f} ms "
          f"against {serial / len(units):.2f} s of compute per unit")
    if args.paper:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "explorer", "study", "--preset", "paper-fast", "--out", str(Path(tmp) / "p")],
                           check=True, cwd=Path(__file__).resolve().parents[1])
            print(f"--preset paper-fast: {time.perf_counter() - t0:.0f} s end to end (target <= 900 s on 2 CPU cores)")


if __name__ == "__main__":
    main()

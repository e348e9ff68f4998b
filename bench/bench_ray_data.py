"""Ray Data against the study's task-per-slice executor (issue 30 item 3): the same units, the same workers, the
records written as Parquet.

Usage: python bench/bench_ray_data.py [--size 320] [--slices 16] [--workers 1,2] [--json] [--smoke]

* **tasks** (what ``study --executor ray`` does, :func:`explorer.study.executors.run_ray`): one Ray task per slice
  (its units share the slice's problem and coil maps), the driver collecting the records and writing one Parquet
  table.
* **ray data**: ``ray.data.range(units).map_batches(UnitActor, concurrency=W, batch_size=B)``: an actor pool, each
  actor keeping its problem cache and models between batches; the units ordered by slice so that a batch holds a
  slice's units; ``write_parquet`` writes the records sharded from the workers (no driver in the data path). Its
  read and write tasks get one more logical CPU slot beside the W actors (without it they starve: the run hangs).

The study: l1, TV and SENSE (clean) on ``--slices`` slices of the embedded knee at ``--size``. Ray start-up (until
every worker has imported the explorer) is timed apart and excluded from each wall time; both designs compute the
same records (checked: the same SSIM per unit).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from explorer.engine.table import write_records  # noqa: E402
from explorer.study.spec import parse_spec  # noqa: E402
from explorer.study.units import expand  # noqa: E402


class UnitActor:
    """A Ray Data actor: runs the units whose indices a batch holds, with one problem cache for its lifetime."""

    def __init__(self, units):
        import torch

        from explorer.engine.tasks import ProblemCache

        torch.set_num_threads(1)
        self.units, self.problems = units, ProblemCache(size=4)

    def __call__(self, batch: dict):
        from explorer.engine.table import to_table
        from explorer.study.units import run_unit

        return to_table([r for i in batch["id"] for r in run_unit(self.units[int(i)], self.problems)])


def _warm(workers: int, extra: int = 0) -> float:
    """Start a local Ray with ``workers`` (+ ``extra``) CPUs and import the explorer in ``workers`` workers; the
    seconds it took."""
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=workers + extra, include_dashboard=False, log_to_driver=False, logging_level=40,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}})

    @ray.remote(num_cpus=1)
    def warm() -> int:
        import importlib

        for module in ("explorer.recon.sparse", "explorer.study.units"):
            importlib.import_module(module)

        time.sleep(0.5)  # held long enough that the other warm-up tasks land on other workers
        return os.getpid()

    ray.get([warm.remote() for _ in range(workers)])
    return time.perf_counter() - t0


def run_tasks(units, out: Path) -> float:
    """The study's executor on the Ray started by :func:`_warm`: one task per slice, the driver writes the table."""
    from explorer.study.executors import run_ray

    t0 = time.perf_counter()
    records = [r for _, new in run_ray(units) for r in new]
    write_records(out / "tasks.parquet", records)
    return time.perf_counter() - t0


def run_data(units, workers: int, out: Path, batch: int) -> float:
    """Ray Data: an actor pool of ``workers`` actors over batches of unit indices, sharded Parquet output."""
    import ray

    t0 = time.perf_counter()
    ds = ray.data.range(len(units), override_num_blocks=max(1, len(units) // batch))
    ds = ds.map_batches(UnitActor, fn_constructor_args=(units,), batch_size=batch, concurrency=workers, num_cpus=1,
                        batch_format="numpy")
    ds.write_parquet(str(out / "data"))
    return time.perf_counter() - t0


def _ssims(path: Path) -> dict:
    import pyarrow.parquet as pq

    table = pq.read_table(path).to_pydict()
    return {u: s for u, s in zip(table["unit"], table["ssim"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--slices", type=int, default=16)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--json", action="store_true", help="print one JSON object (the results file's part)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one worker count: only checks that it runs (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.size, args.slices, args.workers = 32, 2, "1"
    import ray
    import torch

    torch.set_num_threads(1)
    source = f"sample:knee,size={args.size},slices={args.slices}"
    spec = parse_spec({"name": "bench", "data": [{"source": source, "slices": "all"}],
                       "methods": ["l1", "tv", "sense"], "experiments": ["clean"]})
    units = expand(spec)  # ordered by slice (then method): a batch of 3 is one slice's units
    per_slice = len(units) // args.slices
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in [int(w) for w in args.workers.split(",")]:
            for design in ("tasks", "ray data"):
                # Ray Data's read and write tasks need a CPU slot beside the actors (with none they starve and the
                # run never ends): one more logical slot, for tasks that only move a few kB
                startup = _warm(workers, extra=0 if design == "tasks" else 1)
                out = Path(tmp) / f"{design.replace(' ', '_')}{workers}"
                out.mkdir()
                wall = (run_tasks(units, out) if design == "tasks"
                        else run_data(units, workers, out, per_slice))
                ray.shutdown()
                table = out / "tasks.parquet" if design == "tasks" else out / "data"
                ssims = (_ssims(table) if design == "tasks" else
                         {k: v for f in sorted(table.glob("*.parquet")) for k, v in _ssims(f).items()})
                rows.append({"design": design, "workers": workers, "units": len(units), "wall_s": wall,
                             "per_unit_s": wall / len(units), "startup_s": startup, "ssims": ssims,
                             "files": 1 if design == "tasks" else len(list(table.glob("*.parquet")))})
    reference = rows[0]["ssims"]
    for row in rows:
        row["same_records"] = row["ssims"].keys() == reference.keys() and all(
            abs(row["ssims"][k] - reference[k]) < 1e-6 for k in reference)
        del row["ssims"]
    by = {(r["design"], r["workers"]): r["wall_s"] for r in rows}
    summary = {"source": source, "methods": ["l1", "tv", "sense"], "cpus": os.cpu_count(), "torch": torch.__version__,
               "ray": ray.__version__, "rows": rows,
               "ray_data_vs_tasks": {str(w): by[("tasks", w)] / by[("ray data", w)]
                                     for w in sorted({r["workers"] for r in rows})},
               "records_checked": all(r["same_records"] for r in rows)}
    if args.json:
        print(json.dumps(summary))
        return
    print(f"# {len(units)} units ({source}, l1 + TV + SENSE clean), {os.cpu_count()} CPUs, 1 thread per worker")
    print("| design | workers | wall s | per unit s | Parquet files | start-up s (apart) | same records |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['design']} | {r['workers']} | {r['wall_s']:.2f} | {r['per_unit_s']:.3f} | {r['files']} | "
              f"{r['startup_s']:.1f} | {r['same_records']} |")
    for w, ratio in summary["ray_data_vs_tasks"].items():
        print(f"Ray Data vs tasks at {w} worker(s): {ratio:.2f}x (above 1: Ray Data faster)")


if __name__ == "__main__":
    main()

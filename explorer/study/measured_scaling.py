"""Scaling on this machine (issue 30 item 3): the study's task-per-slice Ray executor against Ray Data's actor pool,
with 1 and 2 workers, on the same units (``bench/bench_ray_data.py --json``)."""

from __future__ import annotations

from explorer.study.results import Measurement, Part


def render_scaling(outputs: list[tuple[str, dict]]) -> str:
    """One row per design and worker count: wall time, time per unit, speed-up over the same design's 1 worker,
    Parquet files written and whether the records equal the first run's; then Ray Data against tasks."""
    doc = outputs[0][1]
    rows = doc["rows"]
    one = {r["design"]: r["wall_s"] for r in rows if r["workers"] == 1}
    lines = ["| design | workers | wall (s) | per unit (s) | speed-up vs 1 worker | Parquet files | same records |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        speed = f"{one[r['design']] / r['wall_s']:.2f}x" if r["design"] in one else "-"
        lines.append(f"| {'task per slice (study --executor ray)' if r['design'] == 'tasks' else 'Ray Data actor pool'} "
                     f"| {r['workers']} | {r['wall_s']:.1f} | {r['per_unit_s']:.2f} | {speed} | {r['files']} | "
                     f"{'yes' if r['same_records'] else 'NO'} |")
    ratios = ", ".join(f"{w} worker(s): {v:.2f}x" for w, v in doc["ray_data_vs_tasks"].items())
    units = rows[0]["units"]
    return "\n".join(lines) + (
        f"\n\n{units} units ({doc['source']}; {', '.join(doc['methods'])}, clean) on {doc['cpus']} CPUs, one thread "
        f"per worker, Ray {doc['ray']}. Ray Data's wall time over the tasks' (above 1: Ray Data faster): {ratios}. "
        "Ray start-up is timed apart; Ray Data's own start (planning, actor pool) is inside its wall time.")


def measurements(method_code: tuple[str, ...]) -> list[Measurement]:
    """The scaling measurement; ``method_code``: the method modules (:data:`explorer.study.measured.METHOD_CODE`)."""
    return [Measurement(
        name="ray-scaling", title="the study's Ray executor against Ray Data, 1 and 2 workers, on this machine",
        parts=(Part("bench", ("bench/bench_ray_data.py", "--json")),), render=render_scaling, code=method_code,
        note="`bench/bench_ray_data.py`: l1, TV and SENSE (clean) on 16 slices of the embedded knee at 320x320; both "
             "designs write the records as Parquet (the tasks through the driver, Ray Data sharded from the workers) "
             "and are checked to give the same SSIM per unit.")]


__all__ = ["measurements", "render_scaling"]

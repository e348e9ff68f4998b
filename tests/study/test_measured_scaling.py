"""The scaling measurement's table from the benchmark's real output (smoke sizes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from explorer.study.measured_scaling import render_scaling

ROOT = Path(__file__).resolve().parents[2]


def test_table_from_the_benchmarks_json(tmp_path):
    run = subprocess.run([sys.executable, "bench/bench_ray_data.py", "--smoke", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "EXPLORER_CACHE_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(run.stdout)
    assert doc["records_checked"] and {r["design"] for r in doc["rows"]} == {"tasks", "ray data"}
    text = render_scaling([("bench", doc)])
    lines = text.splitlines()
    assert lines[2].startswith("| task per slice (study --executor ray) | 1 |") and "| yes |" in lines[2]
    assert lines[3].startswith("| Ray Data actor pool | 1 |")
    ratio = doc["rows"][0]["wall_s"] / doc["rows"][1]["wall_s"]
    assert f"1 worker(s): {ratio:.2f}x" in text

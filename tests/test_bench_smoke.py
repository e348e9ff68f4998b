"""Every benchmark under bench/ runs, in its smoke mode (tiny sizes, one repeat), so none rots. Its numbers are not
checked here (benchmarks print tables; speed is never asserted by a test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*(ROOT / "bench").glob("bench_*.py"), ROOT / "bench" / "gpu.py"])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_benchmark_runs_in_smoke_mode(script, tmp_path):
    env = {**os.environ, "EXPLORER_CACHE_DIR": str(tmp_path / "cache"), "EXPLORER_DEVICE": "cpu"}
    env.pop("EXPLORER_DATA_DIR", None)
    run = subprocess.run([sys.executable, str(script), "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    assert "|" in run.stdout or "\n" in run.stdout.strip()  # it printed its table
    assert "Traceback" not in run.stderr

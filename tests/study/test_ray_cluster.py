"""The cluster recipe of docs/scaling.md, on this machine: a head and two worker nodes started with ``ray start`` as
separate processes on the loopback interface, a study submitted as a Ray Job (the driver joins with
``address="auto"`` from ``RAY_ADDRESS``), one worker node killed mid-study; the study finishes with every unit exactly
once, none failed (the killed node's task was retried by Ray on the other node)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("ray") is None, reason="the ray CLI (requirements.txt) is not installed")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in logs if p.exists())
    pytest.fail(f"{what} within {timeout:.0f} s\n{tails}")


def test_a_study_as_a_ray_job_survives_a_killed_node():
    pytest.importorskip("aiohttp")  # ray[default]: the dashboard that serves Ray Jobs (requirements.txt)
    tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths must fit 107 characters
    gcs, dashboard = _port(), _port()
    env = {**os.environ, "RAY_TMPDIR": str(tmp / "r"), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    common = ["--node-ip-address", "127.0.0.1", "--block"]
    logs = [tmp / "head.log", tmp / "a.log", tmp / "b.log"]
    nodes: list[subprocess.Popen] = []

    def start(argv: list[str], log: Path) -> subprocess.Popen:
        node = subprocess.Popen(["ray", "start", *argv, *common], stdout=log.open("w"), stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)  # its own group: killed with all its processes
        nodes.append(node)
        return node

    def ray(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ray", *argv], env=env, capture_output=True, text=True, timeout=timeout)

    try:
        start(["--head", "--port", str(gcs), "--num-cpus", "0", "--dashboard-host", "127.0.0.1",
               "--dashboard-port", str(dashboard), "--temp-dir", str(tmp / "r"), "--disable-usage-stats"], logs[0])
        _wait("the head's dashboard answering", lambda: ray("job", "list", "--address",
                                                             f"http://127.0.0.1:{dashboard}").returncode == 0, 90, logs)
        def nodes_up() -> int:
            active = ray("status", "--address", f"127.0.0.1:{gcs}").stdout.split("Pending:")[0]  # not failed ones
            return active.count(" node_")

        def join(log: Path, expected: int) -> subprocess.Popen:
            """A worker node, started alone and retried: Ray gives a raylet a fixed 30 s to register, which a loaded
            2-core machine can miss (the ``ray start`` process then exits with "timed out during startup")."""
            for _ in range(3):
                node = start(["--address", f"127.0.0.1:{gcs}", "--num-cpus", "1"], log)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and node.poll() is None and nodes_up() < expected:
                    time.sleep(1)
                if node.poll() is None and nodes_up() >= expected:
                    return node
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(timeout=30)
            tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in logs if p.exists())
            pytest.fail(f"worker node {expected - 1} did not join in 3 tries\n{tails}")

        doomed = join(logs[1], 2)
        join(logs[2], 3)

        spec, out = tmp / "spec.json", tmp / "out"
        spec.write_text(json.dumps({
            "name": "loopback", "data": [{"source": "sample:knee,size=48,slices=6,coils=2", "slices": "all"}],
            "methods": ["zero_filled", {"label": "l1_slow", "method": "l1", "config": {"iterations": 150}}],
            "experiments": ["clean"]}))
        runtime = {"env_vars": {"PYTHONPATH": str(ROOT), "EXPLORER_CACHE_DIR": str(tmp / "cache")}}
        submitted = ray("job", "submit", "--address", f"http://127.0.0.1:{dashboard}", "--no-wait",
                        "--submission-id", "loopback", "--runtime-env-json", json.dumps(runtime), "--",
                        sys.executable, "-m", "explorer", "study", str(spec), "--out", str(out), "--executor", "ray")
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        log = out / "study.log"
        logs.append(log)
        _wait("a first unit done", lambda: log.exists() and "slice" in log.read_text(), 180, logs)
        os.killpg(doomed.pid, signal.SIGKILL)  # a node lost mid-study, with a task under way
        assert "finished:" not in log.read_text()  # killed while units were still to run
        _wait("the study finished", lambda: "finished:" in log.read_text() or "aborted" in log.read_text(), 240, logs)

        assert "finished: 12 units run, 0 failed" in log.read_text(), log.read_text()
        rows = pq.read_table(out / "results.parquet").to_pylist()
        assert len(rows) == 12 and len({r["unit"] for r in rows}) == 12  # every unit exactly once
        assert all(r["error"] is None for r in rows)
        status = ray("job", "status", "--address", f"http://127.0.0.1:{dashboard}", "loopback")
        assert "job 'loopback' succeeded" in (status.stdout + status.stderr).lower()
    finally:
        for node in nodes:
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for node in nodes:
            node.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)

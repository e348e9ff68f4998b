"""Executors of a study's units: serial (this process, the default) and Ray (all cores of a machine, or a cluster).

Both yield ``(unit, records)`` as units finish. The Ray executor runs one Ray task per unit; each worker process
keeps its own opened volumes, prepared problems (coil maps estimated once per slice) and loaded models, so a model
is loaded once per worker. Ray is imported only when asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Callable

from explorer import resources
from explorer.engine.tasks import ProblemCache, Record
from explorer.errors import ExplorerError
from explorer.study.units import Unit, run_unit

EXECUTORS: tuple[str, ...] = ("serial", "ray")


def run_serial(units: list[Unit], stop: Callable[[], bool] | None = None) -> Iterator[tuple[Unit, list[Record]]]:
    """Run the units one after the other in this process (slices' problems shared between methods)."""
    problems = ProblemCache(size=4)
    for unit in units:
        if stop is not None and stop():
            return
        yield unit, run_unit(unit, problems)


_WORKER_PROBLEMS: ProblemCache | None = None


def _run_in_worker(units: list[Unit]) -> list[list[Record]]:
    """A Ray worker's body: the units of one slice (they share its problem: the coil maps are estimated once), one
    thread per task (Ray gives each task one CPU), a per-process problem cache."""
    global _WORKER_PROBLEMS
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    if _WORKER_PROBLEMS is None:
        _WORKER_PROBLEMS = ProblemCache(size=4)
    return [run_unit(unit, _WORKER_PROBLEMS) for unit in units]


def slice_groups(units: list[Unit]) -> list[list[Unit]]:
    """The units grouped by the problem they share (data, slice, mask), in first-seen order: one Ray task each.

    Measured (``bench/bench_study.py``): with one task per unit, the units of a slice landed on different workers
    and each estimated the slice's coil maps again, so 2 workers ran 1.38x faster than 1; grouping by slice lets a
    worker reuse them.
    """
    groups: dict[tuple, list[Unit]] = {}
    for unit in units:
        groups.setdefault((unit.data, unit.slice, unit.mask), []).append(unit)
    return list(groups.values())


def run_ray(units: list[Unit], workers: int | None = None, address: str | None = None,
            stop: Callable[[], bool] | None = None) -> Iterator[tuple[Unit, list[Record]]]:
    """Run the units as Ray tasks, yielding each as it finishes.

    Args:
        workers: CPUs of the local Ray started here (default: all); ignored when joining a cluster.
        address: a Ray cluster address (``ray://host:10001`` or ``host:6379``); None starts a local Ray on this
            machine (no dashboard), shut down at the end.
        stop: asked between completions; True cancels the units not yet finished.

    Raises:
        ExplorerError: Ray is not installed or cannot start / connect.
    """
    try:
        import ray  # noqa: PLC0415
    except ImportError:
        raise ExplorerError("the ray executor needs Ray: pip install -r requirements.txt") from None
    started_here = not ray.is_initialized()
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(resources.import_root()), os.environ.get("PYTHONPATH", "")])),
           "OMP_NUM_THREADS": "1"}
    env.update({name: value for name, value in os.environ.items() if name.startswith("EXPLORER_") and value})
    if started_here:
        if address:
            reachable(address)
        try:
            if address:
                ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False,
                         logging_level=logging.ERROR)
            else:
                ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": env}, logging_level=logging.ERROR)
        except Exception as exc:  # noqa: BLE001 - any start-up failure is one line for the user
            raise ExplorerError(f"cannot start Ray{' at ' + address if address else ''}: "
                                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    try:
        import torch  # noqa: PLC0415

        gpus = 1 if torch.cuda.is_available() and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_run_in_worker)
        pending = {remote.remote(group): group for group in slice_groups(units)}
        while pending:
            if stop is not None and stop():
                for ref in pending:
                    ray.cancel(ref, force=True)
                return
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in done:
                group = pending.pop(ref)
                try:
                    results = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a crashed worker fails its units, not the study
                    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    results = [[_failed(unit, f"worker failed: {text}")] for unit in group]
                yield from zip(group, results)
    finally:
        if started_here:
            ray.shutdown()


CONNECT_SECONDS = 5.0


def reachable(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """Refuse a Ray address whose head cannot be reached within ``seconds`` (Ray itself retries for minutes).

    Args:
        address: ``host:port`` or ``ray://host:port`` (``auto`` and other forms are left to Ray).

    Raises:
        ExplorerError: not ``host:port``, or no TCP connection within ``seconds``.
    """
    import socket  # noqa: PLC0415

    target = address.removeprefix("ray://")
    if target == "auto":
        return
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ExplorerError(f"--ray-address must be host:port or ray://host:port, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except socket.timeout:
        raise ExplorerError(f"cannot reach the Ray cluster at {address}: no answer within {seconds:g} s") from None
    except OSError as exc:
        raise ExplorerError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _failed(unit: Unit, error: str) -> Record:
    import dataclasses  # noqa: PLC0415

    from explorer.engine.tasks import Task, make_record  # noqa: PLC0415

    record = make_record(Task(unit.data, unit.slice, unit.method, unit.mask, metric=unit.metric), None, None, error)
    return dataclasses.replace(record, experiment=unit.experiment, unit=unit.key(), role=unit.role)


__all__ = ["CONNECT_SECONDS", "EXECUTORS", "reachable", "run_ray", "run_serial", "slice_groups"]

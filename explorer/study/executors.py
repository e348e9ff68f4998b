"""Executors of a study's units: serial (this process, the default) and Ray (all cores of a machine, or a cluster).

Both yield ``(unit, records)`` as units finish. The Ray executor runs one Ray task per slice (its units share the
slice's problem); each worker process keeps its own opened volumes, prepared problems (coil maps estimated once per
slice) and loaded models, so a model is loaded once per worker. Ray is imported only when asked for.

On a cluster: ``RAY_ADDRESS`` set (as ``ray job submit`` does) and no address given means ``address="auto"`` (join
it, ask for no local resources). A task asks for GPUs only when the cluster has them, from its units' declared
costs (:func:`gpu_share`), and runs on exactly the GPU Ray gave it; a task given none computes on the CPU even on a
GPU node. System failures (a dead worker, a lost node) are retried by Ray (:func:`ray_retries` times); application
errors never reach Ray (:func:`~explorer.study.units.run_unit` records them), so they are not retried.
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
    thread per task (Ray gives each task one CPU), a per-process problem cache. The device is the GPU Ray assigned
    (Ray sets ``CUDA_VISIBLE_DEVICES`` to it, so it is ``cuda``) or, with none assigned, the CPU."""
    global _WORKER_PROBLEMS
    import ray  # noqa: PLC0415
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    gpus = ray.get_gpu_ids()
    os.environ["EXPLORER_DEVICE"] = "cuda" if gpus else "cpu"
    if gpus and not os.environ.get("CUDA_VISIBLE_DEVICES"):  # Ray told not to hide the others: pick ours
        torch.cuda.set_device(int(gpus[0]))
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


#: A unit's share of one GPU by its method's declared cost (:class:`~explorer.recon.base.Capabilities`): light
#: methods share a GPU four ways; fits (cost "long") and units that train weights take a whole one.
GPU_SHARES = {"instant": 0.25, "interactive": 0.25, "long": 1.0}
#: Experiments whose units train a network's weights (a whole GPU each, whatever the method's cost).
TRAINING_EXPERIMENTS = ("ttt",)
RETRIES_VARIABLE = "EXPLORER_RAY_RETRIES"
DEFAULT_RETRIES = 2


def gpu_share(units: list[Unit]) -> float:
    """The GPUs one task of ``units`` asks for on a cluster with GPUs: the largest share among them."""
    def share(unit: Unit) -> float:
        if unit.experiment in TRAINING_EXPERIMENTS:
            return 1.0
        return GPU_SHARES.get(unit.method.capabilities.cost, 1.0)

    return max((share(u) for u in units), default=0.0)


def ray_retries() -> int:
    """How often Ray reruns a task lost to a system failure (``$EXPLORER_RAY_RETRIES``, default 2).

    Raises:
        ExplorerError: not an integer in [0, 100].
    """
    text = os.environ.get(RETRIES_VARIABLE, "").strip()
    if not text:
        return DEFAULT_RETRIES
    if not text.isdigit() or int(text) > 100:
        raise ExplorerError(f"{RETRIES_VARIABLE} must be an integer in [0, 100], got {text!r}")
    return int(text)


def cluster_address(address: str | None) -> str | None:
    """The address to join: the one given, else ``"auto"`` when ``RAY_ADDRESS`` is set (a Ray Job's driver), else
    None (start a local Ray)."""
    if address:
        return address
    return "auto" if os.environ.get("RAY_ADDRESS", "").strip() else None


def worker_env() -> dict[str, str]:
    """What every worker gets: the checkout on ``PYTHONPATH`` (an installed package needs none), one OpenMP
    thread, and every ``EXPLORER_*`` setting of the driver. In a Ray Job the job's own runtime environment already
    reaches the workers, and Ray refuses a driver that sets one of its variables again: those are left out."""
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    root = str(resources.import_root())
    env = {"PYTHONPATH": os.pathsep.join(paths if root in paths else [root, *paths]), "OMP_NUM_THREADS": "1"}
    env.update({name: value for name, value in os.environ.items() if name.startswith("EXPLORER_") and value})
    return {name: value for name, value in env.items() if name not in _job_env()}


def _job_env() -> dict:
    """The ``env_vars`` of the Ray Job this driver runs in (none outside a job)."""
    import json  # noqa: PLC0415

    try:
        config = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "") or "{}")
        return dict((config.get("runtime_env") or {}).get("env_vars") or {})
    except (ValueError, AttributeError, TypeError):
        return {}


def run_ray(units: list[Unit], workers: int | None = None, address: str | None = None,
            stop: Callable[[], bool] | None = None) -> Iterator[tuple[Unit, list[Record]]]:
    """Run the units as Ray tasks, yielding each as it finishes.

    Args:
        workers: CPUs of the local Ray started here (default: all); ignored when joining a cluster.
        address: a Ray cluster address (``ray://host:10001``, ``host:6379`` or ``auto``); None joins the cluster of
            ``RAY_ADDRESS`` when set, else starts a local Ray on this machine (no dashboard), shut down at the end.
        stop: asked between completions; True cancels the units not yet finished.

    Raises:
        ExplorerError: Ray is not installed or cannot start / connect; a bad ``EXPLORER_RAY_RETRIES``.
    """
    try:
        import ray  # noqa: PLC0415
    except ImportError:
        raise ExplorerError("the ray executor needs Ray: pip install -r requirements.txt") from None
    retries = ray_retries()
    address = cluster_address(address)
    started_here = not ray.is_initialized()
    env = worker_env()
    if started_here:
        if address:
            reachable(address)
        try:
            if address:  # a cluster: its resources, none declared here
                ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False,
                         logging_level=logging.ERROR)
            else:
                ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": env}, logging_level=logging.ERROR)
        except Exception as exc:  # noqa: BLE001 - any start-up failure is one line for the user
            raise ExplorerError(f"cannot start Ray{' at ' + address if address else ''}: "
                                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    try:
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0  # the cluster's GPUs, not the driver's
        remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_run_in_worker)
        pending = {remote.options(num_gpus=gpu_share(group) if has_gpus else 0).remote(group): group
                   for group in slice_groups(units)}
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
                except Exception as exc:  # noqa: BLE001 - a worker lost past its retries fails its units, not the study
                    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    results = [[_failed(unit, f"worker failed after {retries} retries: {text}")] for unit in group]
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


__all__ = ["CONNECT_SECONDS", "DEFAULT_RETRIES", "EXECUTORS", "GPU_SHARES", "RETRIES_VARIABLE", "cluster_address", "gpu_share",
           "ray_retries", "reachable", "run_ray", "run_serial", "slice_groups", "worker_env"]

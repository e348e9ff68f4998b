"""Failures never stop a study (a CUDA out-of-memory retried once, an executor failure logged as an abort) and Ray
placement decided from the cluster and the units' declared costs, not from the driver."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.errors import ExplorerError
from explorer.study import executors
from explorer.study import runner as runner_module
from explorer.study import units as units_module
from explorer.study.runner import LOG, run_study
from explorer.study.spec import parse_spec
from explorer.study.units import expand, run_unit

SAMPLE = "sample:knee,size=32,slices=2,coils=2"
RAW = {"name": "tiny", "data": [{"source": SAMPLE, "slices": "all"}], "methods": ["zero_filled", "convdecoder", "unet"]}


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "study-cache"))


def _flaky(failures: int):
    """An experiment whose run raises a CUDA out-of-memory error ``failures`` times, then runs the real one."""
    real = units_module.get_experiment("clean")
    calls = {"n": 0}

    class Flaky:
        name = "clean"

        @staticmethod
        def run(task, settings, problems):
            calls["n"] += 1
            if calls["n"] <= failures:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore")
            return real.run(task, settings, problems)

    return Flaky, calls


def test_a_cuda_out_of_memory_is_retried_once_then_recorded(monkeypatch):
    unit = expand(parse_spec(RAW))[0]
    flaky, calls = _flaky(1)
    monkeypatch.setattr(units_module, "get_experiment", lambda name: flaky)
    (record,) = run_unit(unit)
    assert calls["n"] == 2 and record.error is None and record.ssim is not None  # the retry succeeded
    flaky, calls = _flaky(5)
    monkeypatch.setattr(units_module, "get_experiment", lambda name: flaky)
    (record,) = run_unit(unit)
    assert calls["n"] == 2  # once, not forever
    assert record.error == "CUDA out of memory (retried once): CUDA out of memory. Tried to allocate 2.00 GiB"


def test_an_executor_failure_is_logged_as_an_abort_and_the_rows_so_far_kept(tmp_path, monkeypatch):
    real = runner_module.run_serial

    def dies_after_one(todo, stop):
        stream = real(todo, stop)
        yield next(stream)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner_module, "run_serial", dies_after_one)
    spec = parse_spec({**RAW, "methods": ["zero_filled"]})
    with pytest.raises(OSError):
        run_study(spec, tmp_path / "s")
    log = (tmp_path / "s" / LOG).read_text()
    assert "aborted after 1 of 2 units: OSError: [Errno 28] No space left on device; rerun with --resume" in log
    monkeypatch.setattr(runner_module, "run_serial", real)
    assert run_study(spec, tmp_path / "s", resume=True).run == 1  # the unit written before the abort is kept


def test_gpu_shares_follow_declared_costs():
    units = {(u.experiment, u.method.label): u for u in expand(parse_spec(
        {**RAW, "experiments": ["clean", {"ttt": {"steps": 2}}]}))}
    assert executors.gpu_share([units["clean", "zero_filled"]]) == 0.25  # instant: a quarter of a GPU
    assert executors.gpu_share([units["clean", "unet"]]) == 0.25  # interactive
    assert executors.gpu_share([units["clean", "convdecoder"]]) == 1.0  # a fit (cost "long"): a whole GPU
    assert executors.gpu_share([units["ttt", "unet"]]) == 1.0  # trains weights: a whole GPU
    assert executors.gpu_share([units["clean", "zero_filled"], units["clean", "convdecoder"]]) == 1.0
    assert executors.gpu_share([]) == 0.0


def test_ray_retries_and_the_cluster_address_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(executors.RETRIES_VARIABLE, raising=False)
    assert executors.ray_retries() == executors.DEFAULT_RETRIES
    monkeypatch.setenv(executors.RETRIES_VARIABLE, "0")
    assert executors.ray_retries() == 0
    for bad in ("-1", "two", "101"):
        monkeypatch.setenv(executors.RETRIES_VARIABLE, bad)
        with pytest.raises(ExplorerError, match="EXPLORER_RAY_RETRIES must be an integer"):
            executors.ray_retries()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert executors.cluster_address(None) is None  # start a local Ray
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")  # as in a Ray Job's driver
    assert executors.cluster_address(None) == "auto" and executors.cluster_address("h:1") == "h:1"


def test_workers_get_every_explorer_setting_but_not_what_the_job_already_sets(monkeypatch):
    for name in ("EXPLORER_CACHE_DIR", "EXPLORER_DEVICE", "EXPLORER_MAX_UNITS", "EXPLORER_UPLOAD_STORE_MB"):
        monkeypatch.setenv(name, "1")
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    env = executors.worker_env()
    assert {"EXPLORER_CACHE_DIR", "EXPLORER_DEVICE", "EXPLORER_MAX_UNITS", "EXPLORER_UPLOAD_STORE_MB",
            "PYTHONPATH", "OMP_NUM_THREADS"} <= set(env)
    job = {"runtime_env": {"env_vars": {"PYTHONPATH": "/x", "EXPLORER_CACHE_DIR": "/c"}}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    env = executors.worker_env()  # Ray refuses a driver that sets the job's variables again
    assert "PYTHONPATH" not in env and "EXPLORER_CACHE_DIR" not in env and "EXPLORER_DEVICE" in env


def test_data_whose_units_would_not_fit_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    from explorer.cli.main import main
    from explorer.study.units import MEMORY_FACTOR, MEMORY_VARIABLE, unit_bytes

    need, shape = unit_bytes(SAMPLE)
    assert shape == (2, 32, 32) and need == MEMORY_FACTOR * 8 * 2 * 32 * 32  # 5 MiB for this tiny sample
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps({**RAW, "methods": ["zero_filled"]}))
    monkeypatch.setenv(MEMORY_VARIABLE, "4")
    code = main(["study", str(spec), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"data {SAMPLE}: one unit needs about 0.0 GiB (2 coils x 32 x 32 k-space" in err
    assert "more than the 0.0 GiB allowed; raise EXPLORER_MAX_UNIT_MEMORY_MB" in err
    assert not (tmp_path / "o" / "results.parquet").exists()
    monkeypatch.setenv(MEMORY_VARIABLE, "6")
    assert main(["study", str(spec), "--out", str(tmp_path / "o")]) == 0
    monkeypatch.setenv(MEMORY_VARIABLE, "lots")
    assert main(["study", str(spec), "--out", str(tmp_path / "p"), "--force"] if False else
                ["study", str(spec), "--out", str(tmp_path / "p")]) == 2
    assert "EXPLORER_MAX_UNIT_MEMORY_MB must be a positive integer (MB)" in capsys.readouterr().err

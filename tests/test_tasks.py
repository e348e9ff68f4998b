"""Experiments as data: tasks -> records -> tables; provenance; pickling; evaluate --resume."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest

from explorer.cli.main import main
from explorer.data.fastmri import FastMRIVolume
from explorer.data.sample import SampleSpec, write_sample
from explorer.engine import MethodInstance, prepare, run_method
from explorer.engine.table import SCHEMA, read_records, read_table, write_csv, write_records
from explorer.engine.tasks import MeasurementNoise, ProblemCache, Task, run_task, run_tasks
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.robustness.evaluate import evaluate

MASK = MaskConfig("random", 3, None, seed=4)


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    d = tmp_path_factory.mktemp("tasks")
    return write_sample(d, SampleSpec(family="knee", size=32, slices=3, coils=2, seed=5))


def test_a_task_runs_to_the_same_metrics_as_the_engine_with_provenance(volume, tiny_checkpoints):
    task = Task(str(volume), 1, MethodInstance.of("sense", label="SENSE a"), MASK)
    record = run_task(task)
    expected = run_method(prepare(FastMRIVolume(volume).read_slice(1), MASK), "sense").metrics
    assert (record.ssim, record.psnr, record.nmse) == (expected["ssim"], expected["psnr"], expected["nmse"])
    assert record.label == "SENSE a" and record.method == "sense" and record.error is None and record.mask_seed == 4
    assert record.task_key == task.key() and record.file == volume.name and record.anatomy == "knee"
    assert record.explorer_version and record.torch_version and record.fastmri_version == "0.3.0"
    assert record.checkpoint_sha256 is None and json.loads(record.config)["iterations"] == 10
    unet = Task(str(volume), 1, MethodInstance.of("unet", {"checkpoint": str(tiny_checkpoints["unet"]), "crop": 32}), MASK)
    digest = hashlib.sha256(tiny_checkpoints["unet"].read_bytes()).hexdigest()
    assert run_task(unet).checkpoint_sha256 == digest


def test_tasks_and_records_pickle_and_keys_are_stable(volume):
    task = Task(str(volume), 0, MethodInstance.of("l1", {"iterations": 3}), MASK, perturbation=MeasurementNoise(0.05, 1))
    clone = pickle.loads(pickle.dumps(task))
    assert clone == task and clone.key() == task.key() and hash(clone) == hash(task)
    assert Task(str(volume), 0, MethodInstance.of("l1", {"iterations": 4}), MASK).key() != task.key()
    record = run_task(task)
    assert pickle.loads(pickle.dumps(record)) == record


def test_a_perturbation_is_applied_under_the_tasks_maps_policy(volume):
    clean = run_task(Task(str(volume), 1, MethodInstance.of("sense"), MASK))
    same = run_task(Task(str(volume), 1, MethodInstance.of("sense"), MASK, perturbation=MeasurementNoise(0.0)))
    noisy = run_task(Task(str(volume), 1, MethodInstance.of("sense"), MASK, perturbation=MeasurementNoise(0.2, seed=3)))
    assert same.ssim == pytest.approx(clean.ssim, abs=1e-9) and noisy.ssim < clean.ssim
    assert json.loads(noisy.perturbation) == {"kind": "noise", "level": 0.2, "seed": 3} and noisy.maps == "fixed"
    again = run_task(Task(str(volume), 1, MethodInstance.of("sense"), MASK, perturbation=MeasurementNoise(0.2, seed=3)))
    assert again.ssim == noisy.ssim  # seeded


def test_failures_become_one_line_errors_in_the_record(volume):
    record = run_task(Task(str(volume), 7, MethodInstance.of("sense"), MASK))
    assert record.error.startswith("slice 7 out of range") and record.ssim is None
    with pytest.raises(ExplorerError):
        run_task(Task(str(volume), 7, MethodInstance.of("sense"), MASK), catch=False)
    with pytest.raises(ExplorerError, match="maps policy"):
        Task(str(volume), 0, MethodInstance.of("sense"), MASK, maps="never")


def test_records_round_trip_through_parquet_and_csv(volume, tmp_path):
    records = list(run_tasks([Task(str(volume), i, MethodInstance.of("zero_filled"), MASK) for i in range(3)],
                             batch_size=2, problems=ProblemCache()))
    assert sorted(r.slice for r in records) == [0, 1, 2]
    path = tmp_path / "t.parquet"
    write_records(path, records)
    assert read_records(path) == records and read_table(path).schema == SCHEMA
    write_csv(tmp_path / "t.csv", records)
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith('"task_key"')
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    with pytest.raises(ExplorerError, match="not a readable Parquet"):
        read_table(tmp_path / "bad.parquet")


def test_evaluate_writes_a_table_and_resumes_without_recomputing(volume, tmp_path, monkeypatch):
    import explorer.engine.tasks as tasks_mod

    table = tmp_path / "eval.parquet"
    first = evaluate(volume, ["zero_filled", "b=sense"], MASK, progress=lambda done, total, label: done == 1,
                     table=table)
    assert len(first.slices) == 1 and first.methods == ("zero_filled", "b")
    partial = read_records(table)
    assert {(r.label, r.slice) for r in partial} >= {("zero_filled", 0), ("b", 0)}
    calls = []
    real = tasks_mod.run_method
    monkeypatch.setattr(tasks_mod, "run_method", lambda *a, **k: calls.append(a[1].label) or real(*a, **k))
    full = evaluate(volume, ["zero_filled", "b=sense"], MASK, batch_size=1, table=table, resume=True)
    assert len(full.slices) == 3 and full.resumed == len(partial)
    assert len(calls) == 6 - len(partial)  # only the tasks missing from the table ran
    fresh = evaluate(volume, ["zero_filled", "b=sense"], MASK, batch_size=1)
    for label in ("zero_filled", "b"):
        assert list(full.metrics[label]["ssim"]) == pytest.approx(list(fresh.metrics[label]["ssim"]), abs=1e-9)
    assert len(read_records(table)) == 6 and {r["label"] for r in full.summary()} == {"zero_filled", "b"}


def test_cli_instances_tables_and_their_errors(volume, tmp_path, capsys, tiny_checkpoints):
    u = str(tiny_checkpoints["unet"])
    code = main(["recon", "--data", str(volume), "--method", "a=unet", "--method", "b=unet", "--set", f"a.checkpoint={u}",
                 "--set", f"b.checkpoint={u}", "--set", "a.crop=32", "--set", "b.crop=16", "--method", "sense",
                 "--acceleration", "3", "--json", "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)["results"]
    assert [(r["label"], r["method"]) for r in rows] == [("a", "unet"), ("b", "unet"), ("sense", "sense")]
    assert rows[0]["ssim"] != rows[1]["ssim"]
    assert {p.name for p in (tmp_path / "out").glob("*.npy")} == {"a.npy", "b.npy", "sense.npy", "target.npy", "mask.npy"}
    table = tmp_path / "e.parquet"
    assert main(["evaluate", "--data", str(volume), "--method", "zf=zero_filled", "--out", str(table), "--json",
                 "--csv", str(tmp_path / "e.csv")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["label"] == "zf" and doc["resumed"] == 0 and (tmp_path / "e.csv").is_file()
    assert main(["evaluate", "--data", str(volume), "--method", "zf=zero_filled", "--out", str(table), "--resume",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resumed"] == 3
    for argv, message in [
        (["recon", "--data", str(volume), "--method", "x=sense", "--method", "x=l1"], "once"),
        (["recon", "--data", str(volume), "--method", "target=sense"], "reserved"),
        (["recon", "--data", str(volume), "--method", "=sense"], "LABEL=METHOD"),
        (["recon", "--data", str(volume), "--method", "sense", "--set", "l1.lam=1"], "not a --method label"),
        (["evaluate", "--data", str(volume), "--method", "sense", "--out", str(table)], "--resume"),
        (["evaluate", "--data", str(volume), "--method", "sense", "--out", str(tmp_path / "x.csv")], ".parquet"),
        (["evaluate", "--data", str(volume), "--method", "sense", "--resume"], "--out"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1, (argv, err)

"""Study folders and specs hardened: one writer per folder (a lock naming its holder), --resume only with the same
spec, --csv checked before any work, every bad spec of the corpus refused with one line before any unit runs, the
unit count capped, any unit exception recorded, the Ray address checked within a bound."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from explorer.cli.main import main
from explorer.errors import ExplorerError
from explorer.study import units as units_module
from explorer.study.lock import LOCK, StudyLock
from explorer.study.runner import RESULTS, run_study
from explorer.study.spec import parse_spec
from explorer.study.units import expand, run_unit
from tests import corpus

SAMPLE = "sample:knee,size=32,slices=2,coils=2"
RAW = {"name": "tiny", "data": [{"source": SAMPLE}], "methods": ["zero_filled"]}


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "study-cache"))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_every_bad_spec_of_the_corpus_is_one_line_before_any_work(tmp_path, capsys):
    cases = corpus.spec_files(tmp_path / "specs")
    assert len(cases) >= 25
    for case in cases:
        out = tmp_path / "out" / case.path.stem
        start = time.perf_counter()
        code = main(["study", str(case.path), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2, f"{case.name}: exit {code}: {err}"
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, f"{case.name}: {err}"
        assert not (out / RESULTS).exists(), f"{case.name}: a unit ran"
        assert time.perf_counter() - start < 30, f"{case.name}: took {time.perf_counter() - start:.0f} s"


def test_a_second_writer_is_refused_with_the_holders_name(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    with StudyLock(folder):
        with pytest.raises(ExplorerError, match=rf"being written by another study \(pid {os.getpid()} on"):
            run_study(parse_spec(RAW), folder)
        assert not (folder / RESULTS).exists()
    assert not (folder / LOCK).exists()  # released
    assert run_study(parse_spec(RAW), folder).run == 1


def test_a_dead_holder_is_taken_over_and_a_foreign_host_is_not(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (folder / LOCK).write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "since": "earlier"}))
    assert run_study(parse_spec(RAW), folder).run == 1
    (folder / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "earlier"}))
    with pytest.raises(ExplorerError, match=f"on elsewhere since earlier.*remove {LOCK}"):
        run_study(parse_spec(RAW), folder, resume=True)
    (folder / LOCK).write_text("{half")
    with pytest.raises(ExplorerError, match="unreadable study lock"):
        run_study(parse_spec(RAW), folder, resume=True)


def test_resume_needs_the_same_spec(tmp_path):
    folder = tmp_path / "s"
    first = run_study(parse_spec(RAW), folder)
    assert first.run == 1
    with pytest.raises(ExplorerError, match="holds a study of another spec"):
        run_study(parse_spec({**RAW, "methods": ["zero_filled", "sense"]}), folder, resume=True)
    assert run_study(parse_spec(RAW), folder, resume=True).skipped == 1


def test_two_cli_studies_on_one_folder_do_not_both_finish(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(RAW))
    out = tmp_path / "s"
    assert main(["study", str(spec), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["study", str(spec), "--out", str(out)]) == 2
    assert "holds a study already" in _one_line(capsys)
    other = tmp_path / "other.yaml"
    other.write_text(json.dumps({**RAW, "name": "other"}))
    assert main(["study", str(other), "--out", str(out), "--resume"]) == 2
    assert "another spec" in _one_line(capsys)


def test_csv_is_checked_before_the_study_runs(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(RAW))
    taken = tmp_path / "taken.csv"
    taken.write_text("keep me")
    for target, message in ((tmp_path, "is a folder"), (tmp_path / "no" / "t.csv", "does not exist"),
                            (taken, "exists; add --force"), ("", "is empty")):
        out = tmp_path / "out"
        assert main(["study", str(spec), "--out", str(out), "--csv", str(target)]) == 2
        assert message in _one_line(capsys)
        assert not (out / RESULTS).exists()
    assert taken.read_text() == "keep me"
    assert main(["study", str(spec), "--out", str(tmp_path / "o2"), "--csv", str(taken), "--force"]) == 0
    assert taken.read_text().startswith("#") or "ssim" in taken.read_text()
    capsys.readouterr()
    assert main(["study", str(spec), "--out", str(tmp_path / "o3"), "--force"]) == 2
    assert "--force applies to --csv" in _one_line(capsys)


def test_the_unit_count_is_capped_before_units_are_built(monkeypatch):
    spec = parse_spec({**RAW, "data": [{"source": SAMPLE, "slices": "all"}], "methods": ["zero_filled", "sense"]})
    assert len(expand(spec)) == 4
    monkeypatch.setenv("EXPLORER_MAX_UNITS", "3")
    with pytest.raises(ExplorerError, match="more than 3 units"):
        expand(spec)
    monkeypatch.setenv("EXPLORER_MAX_UNITS", "many")
    with pytest.raises(ExplorerError, match="EXPLORER_MAX_UNITS must be a positive integer"):
        expand(spec)


def test_any_exception_of_a_unit_is_recorded_with_its_type(monkeypatch):
    unit = expand(parse_spec(RAW))[0]

    class Broken:
        name = "clean"

        @staticmethod
        def run(task, settings, problems):
            raise RuntimeError("CUDA out of memory (simulated)\nsecond line")

    monkeypatch.setattr(units_module, "get_experiment", lambda kind: Broken)
    records = run_unit(unit)
    assert len(records) == 1 and records[0].error == "RuntimeError: CUDA out of memory (simulated)"


def test_an_unreachable_ray_address_is_one_line_within_seconds(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(RAW))
    for address, message in (("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),
                             ("ray://127.0.0.1:1", "cannot reach the Ray cluster"),
                             ("nohost", "must be host:port")):
        start = time.perf_counter()
        code = main(["study", str(spec), "--out", str(tmp_path / "o"), "--executor", "ray", "--ray-address", address])
        assert code == 2 and message in _one_line(capsys)
        assert time.perf_counter() - start < 10
    assert not (tmp_path / "o" / RESULTS).exists()

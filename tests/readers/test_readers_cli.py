"""``python -m explorer readers``: the whole workflow on a tiny demonstration, and every bad input as one line with
exit status 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from explorer.cli.main import main


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "readers-cache"))


def run(capsys, *argv):
    code = main(["readers", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A tiny 2AFC demonstration session (32 px, one slice)."""
    import os

    old = os.environ.get("EXPLORER_CACHE_DIR")
    os.environ["EXPLORER_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "readers-cache")
    try:
        path = tmp_path_factory.mktemp("cli") / "demo.reading"
        assert main(["readers", "build", str(path), "--demo", "--task", "2afc", "--demo-size", "32", "--demo-slices",
                     "1", "--json"]) == 0
    finally:
        if old is None:
            os.environ.pop("EXPLORER_CACHE_DIR", None)
        else:
            os.environ["EXPLORER_CACHE_DIR"] = old
    return path


def test_the_workflow_build_readers_simulate_export_analyse_copy(capsys, tmp_path, demo):
    code, out, err = run(capsys, "add-reader", demo, "--name", "JD", "--json")
    assert code == 0, err
    reader = json.loads(out)
    assert reader["name"] == "JD" and reader["kind"] == "human" and len(reader["code"]) == 14
    code, out, err = run(capsys, "simulate", demo, "--readers", "2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["simulated"] is True and [r["name"] for r in doc["readers"]] == [
        "simulated reader 2 (model observer)", "simulated reader 3 (model observer)"]
    code, out, err = run(capsys, "status", demo, "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["task"] == "2afc" and status["cases"] == 6 and status["items"] == 8  # 3 pairs x 2 conditions + 25%
    assert [(r["name"], r["answered"]) for r in status["readers"]] == [
        ("JD", 0), ("simulated reader 2 (model observer)", 8), ("simulated reader 3 (model observer)", 8)]
    code, out, err = run(capsys, "status", demo)
    assert code == 0 and "simulated" in out and "JD" in out
    code, out, err = run(capsys, "export", demo, "--out", tmp_path / "answers.parquet")
    assert code == 0, err
    answers = pd.read_parquet(tmp_path / "answers.parquet")
    assert len(answers) == 16 and set(answers["reader_kind"]) == {"simulated"}
    assert {"chosen", "label_left", "ssim_left", "seconds"} <= set(answers.columns)
    code, _, err = run(capsys, "export", demo, "--out", tmp_path / "audit.csv", "--table", "audit")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "audit.csv")) >= 16
    code, out, err = run(capsys, "analyse", demo, "--boot", "100", "--json")
    assert code == 0, err
    analysis = json.loads(out)
    assert analysis["task"] == "2afc" and any("SIMULATED" in n for n in analysis["notes"])
    assert {"preference", "method_preference", "metric_agreement"} <= set(analysis["tables"])
    assert analysis["tables"]["metric_agreement"]["rows"][0]["condition"] == "all"
    code, out, err = run(capsys, "analyse", demo, "--boot", "50")
    assert code == 0 and "metric_agreement" in out and "SIMULATED" in out
    code, out, err = run(capsys, "analyse", demo, "--readers", "human", "--json")
    assert code == 0 and json.loads(out)["notes"] == ["no answers yet"]
    code, out, err = run(capsys, "copy", demo, "--out", tmp_path / "copy.reading")
    assert code == 0, err
    code, out, err = run(capsys, "status", tmp_path / "copy.reading", "--json")
    assert code == 0 and len(json.loads(out)["readers"]) == 3


def _spec(tmp_path, methods=("zero_filled",), name="spec.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"data": [{"source": "sample:knee,size=32,slices=2,coils=4", "slices": [1]}],
                                "methods": list(methods)}))
    return str(path)


BAD = [
    (["build", "{s}"], "one of the arguments --demo --spec --study is required"),
    (["build", "{s}", "--demo", "--spec", "x.yaml"], "not allowed with argument"),
    (["build", "{s}", "--demo", "--task", "ranking"], "task must be one of"),
    (["build", "{s}", "--demo", "--repeats", "2"], "repeats must be a fraction"),
    (["build", "{s}", "--demo", "--repeats", "nan"], "repeats must be a fraction"),
    (["build", "{s}", "--demo", "--demo-size", "8"], "demo size"),
    (["build", "{s}", "--demo", "--criteria", "overall"], "--demo takes"),
    (["build", "{s}", "--spec", "{tmp}/missing.yaml"], "cannot read the study spec"),
    (["build", "{s}", "--spec", "{spec}", "--criteria", "beauty"], "unknown criterion 'beauty'"),
    (["build", "{s}", "--spec", "{spec}", "--task", "2afc", "--pairs", "a-b"], "--pairs takes A:B"),
    (["build", "{s}", "--spec", "{spec}", "--conditions", ","], "--conditions is empty"),
    (["build", "{s}", "--spec", "{spec}", "--task", "2afc"], "2AFC needs two methods"),
    (["build", "{s}", "--spec", "{spec}", "--task", "detection"], "needs lesion-absent (clean) and lesion-present"),
    (["build", "{s}", "--spec", "{spec2}", "--task", "2afc", "--pairs", "zero_filled:varnet"], "no reconstructions labelled"),
    (["build", "{s}", "--spec", "{spec}", "--order", "random"], "order must be one of"),
    (["build", "{s}", "--study", "{tmp}"], "is not a study folder"),
    (["build", "{tmp}", "--demo"], "is a folder"),
    (["build", "{tmp}/no/such/dir/s.reading", "--demo"], "does not exist"),
    (["build", "{demo}", "--demo"], "exists; add --force"),
    (["add-reader", "{tmp}/missing.reading"], "no reading session at"),
    (["add-reader", "{demo}", "--name", " "], "reader name must be"),
    (["status", "{spec}"], "is not a reading session"),
    (["export", "{demo}", "--out", "{tmp}/a.txt"], "give --format csv or parquet"),
    (["export", "{demo}", "--out", "{tmp}/a.csv", "--format", "xml"], "format must be one of"),
    (["export", "{demo}", "--out", "{tmp}/a.csv", "--table", "secrets"], "table must be one of"),
    (["analyse", "{demo}", "--readers", "robots"], "--readers must be all, human or simulated"),
    (["analyse", "{demo}", "--level", "2"], "interval level"),
    (["analyse", "{demo}", "--tolerance", "nan"], "--tolerance"),
    (["analyse", "{demo}", "--boot", "-3"], "bootstrap replicates"),
    (["simulate", "{demo}", "--readers", "0"], "simulated readers must be"),
    (["simulate", "{demo}", "--metric", "mse"], "metric must be one of"),
    (["simulate", "{demo}", "--noise", "inf"], "--noise must be a finite number"),
    (["copy", "{demo}", "--out", "{demo}"], "exists; add --force"),
    (["copy", "{demo}", "--out", "{demo}", "--force"], "another file"),
    (["analyse", "{demo}", "--csv", "{demo}"], "exists; add --force"),
    (["register", "{demo}"], "records no study folder"),
    (["register", "{demo}", "--study", "{tmp}"], "is not a study folder"),
    (["report", "{tmp}"], "is not a study folder"),
    ([], "the following arguments are required: ACTION"),
    (["rename", "{demo}"], "invalid choice: 'rename'"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_bad_inputs_exit_2_with_one_line(capsys, tmp_path, demo, argv, message):
    values = {"s": tmp_path / "new.reading", "tmp": tmp_path, "spec": _spec(tmp_path), "demo": demo,
              "spec2": _spec(tmp_path, ("zero_filled", "sense"), "spec2.json")}
    code, out, err = run(capsys, *[a.format(**values) for a in argv])
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "new.reading").exists()


def test_build_from_a_spec_prints_what_it_wrote(capsys, tmp_path):
    spec = _spec(tmp_path, ("zero_filled", "sense"), "two.json")
    code, out, err = run(capsys, "build", tmp_path / "s.reading", "--spec", spec, "--task", "2afc", "--repeats", "1",
                         "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["cases"] == 1 and doc["items"] == 2 and doc["labels"] == ["zero_filled", "sense"]
    assert doc["conditions"] == ["clean"] and doc["path"].endswith("s.reading")
    code, out, err = run(capsys, "build", tmp_path / "s.reading", "--spec", spec, "--force", "--criteria",
                         "overall,sharpness")
    assert code == 0 and "wrote" in out and "2 cases" in out and "build: 2/2" in err


def test_a_study_report_with_its_reader_studies(capsys, tmp_path):
    from explorer.study.runner import run_study  # noqa: PLC0415
    from explorer.study.spec import parse_spec  # noqa: PLC0415

    study = tmp_path / "study"
    run_study(parse_spec({"name": "tiny-report", "data": [{"source": "sample:knee,size=32,slices=2,coils=4",
                                                           "slices": [1]}],
                          "methods": ["zero_filled", "sense"], "experiments": ["clean"]}), study)
    code, out, err = run(capsys, "report", study)
    assert code == 2 and "no reading session is registered" in err
    code, out, err = run(capsys, "build", tmp_path / "s.reading", "--study", study, "--task", "2afc", "--json")
    assert code == 0, err
    link = json.loads(out)["link"]
    assert link.startswith(str((study / "readers").resolve())) and link.endswith(".json")
    code, out, err = run(capsys, "simulate", tmp_path / "s.reading", "--readers", "2")
    assert code == 0, err
    code, out, err = run(capsys, "copy", tmp_path / "s.reading", "--out", tmp_path / "t.reading")
    assert code == 0, err
    code, out, err = run(capsys, "register", tmp_path / "t.reading")  # the study the copy records
    assert code == 0 and "registered" in out, err
    code, out, err = run(capsys, "report", study, "--boot", "50", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [(s["name"], s["readers"], s["error"]) for s in doc["sessions"]] == [("tiny-report", 2, None)] * 2
    page = (study / "report.html").read_text()
    assert page.count("<h2>Reader study: tiny-report</h2>") == 2 and "reader-analysis.csv" in page
    assert "<h1>Study tiny-report</h1>" in page and "2AFC choices against the metrics" in page
    table = pd.read_csv(doc["csv"])
    assert {"readers", "accuracy", "preference", "metric_agreement"} <= set(table["table"])
    code, out, err = run(capsys, "analyse", tmp_path / "s.reading", "--boot", "50", "--csv", tmp_path / "a.csv")
    assert code == 0 and "preference" in out, err
    mine = pd.read_csv(tmp_path / "a.csv")
    assert list(mine.columns[:3]) == ["session", "task", "table"] and set(mine["task"]) == {"2afc"}
    assert len(table) == 2 * len(mine) and mine.equals(table.head(len(mine)))  # the report's rows of s.reading

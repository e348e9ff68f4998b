"""Experiments are a registry: a toy experiment declared here (touching no project file) runs through a study, its
report, the ``study`` and ``experiments`` commands and the Study page; the study code names no experiment."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.cli.main import main
from explorer.engine.table import read_records
from explorer.engine.tasks import MeasurementNoise, run_task
from explorer.errors import ExplorerError
from explorer.robustness import registry
from explorer.robustness.registry import Experiment, Section, experiments, get_experiment
from explorer.study.spec import parse_spec
from tests.app.conftest import APP

SOURCE = "sample:knee,size=64,slices=2,coils=4"


def _check(settings: dict) -> None:
    level = settings.get("level", 0.01)
    if not isinstance(level, (int, float)) or not 0 <= level <= 1:
        raise ExplorerError(f"level must be a number in [0, 1], got {level!r}")


def _run(task, settings, problems):
    noisy = task.__class__(**{**task.__dict__, "perturbation": MeasurementNoise(float(settings.get("level", 0.01)),
                                                                                  int(settings.get("seed", 0)))})
    return [run_task(noisy, problems, catch=False)]


def _summary(records):
    labels = dict.fromkeys(r.label for r in records)
    return [{"label": label, "ssim": float(np.mean([r.ssim for r in records if r.label == label]))} for label in labels]


def _report(records):
    rows = _summary(records)
    return [Section("Toy noise: SSIM under white noise", None, (("Mean SSIM per method", rows),), "a toy")] if rows else []


TOY = Experiment(name="toy_noise", title="Toy noise", description="white k-space noise of a given relative level",
                 run=_run, settings={"level": "noise level ||e|| / ||k||", "seed": "noise seed"}, check=_check,
                 takes=lambda instance: instance.capabilities.cost == "instant", summary=_summary, report=_report)


@pytest.fixture
def toy(monkeypatch):
    """The toy experiment registered for one test only."""
    experiments()  # the built-in ones first
    monkeypatch.setitem(registry._EXPERIMENTS, TOY.name, TOY)
    return TOY


def _spec(tmp_path: Path, experiments_: list) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"name": "toy", "data": [{"source": SOURCE, "slices": "all"}],
                                "masks": [{"type": "random", "acceleration": 3, "center_fraction": 0.2}],
                                "methods": ["zero_filled", "sense", "l1"], "experiments": experiments_}))
    return path


def test_a_toy_experiment_runs_through_a_study_its_report_and_the_cli(toy, tmp_path, capsys):
    assert get_experiment("toy_noise") is toy and experiments()[-1] is toy
    out = tmp_path / "study"
    assert main(["study", str(_spec(tmp_path, ["clean", {"toy_noise": {"level": 0.05}}])), "--out", str(out)]) == 0
    records = read_records(out / "results.parquet")
    noisy = [r for r in records if r.experiment == "toy_noise"]
    # every slice x the instances it takes (l1 is not instant: the capability decides, not a name)
    assert sorted((r.slice, r.label) for r in noisy) == [(s, m) for s in (0, 1) for m in ("sense", "zero_filled")]
    assert all(json.loads(r.perturbation)["level"] == 0.05 and r.error is None for r in noisy)
    clean = {(r.slice, r.label): r.ssim for r in records if r.experiment == "clean"}
    assert all(r.ssim < clean[(r.slice, r.label)] for r in noisy)  # noise costs quality
    report = (out / "report.html").read_text()
    assert "Toy noise: SSIM under white noise" in report and "Mean SSIM per method" in report
    capsys.readouterr()
    assert main(["experiments", "--json"]) == 0
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert listed["toy_noise"]["settings"] == {"level": "noise level ||e|| / ||k||", "seed": "noise seed"}
    assert {"clean", "attack", "features", "shift", "ttt"} <= set(listed)


def test_the_toy_experiments_settings_are_checked_like_any_others(toy, tmp_path, capsys):
    for settings, message in (({"levle": 0.1}, "unknown toy_noise setting 'levle'; use level, seed"),
                              ({"level": 3}, "level must be a number in [0, 1], got 3")):
        assert main(["study", str(_spec(tmp_path, [{"toy_noise": settings}])), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    with pytest.raises(ExplorerError, match="unknown experiment 'nope'; choose one of clean, attack"):
        parse_spec({"data": [SOURCE], "methods": ["zero_filled"], "experiments": ["nope"]})


def test_the_study_page_shows_the_toy_experiments_section(toy, tmp_path, monkeypatch):
    assert main(["study", str(_spec(tmp_path, [{"toy_noise": {"level": 0.05}}])), "--out",
                 str(tmp_path / "studies" / "toy")]) == 0
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EXPLORER_SAMPLE_SIZE", "64")
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/study.py").run()
    at.text_input(key="study.folder").set_value("studies/toy").run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    assert "**Toy noise: SSIM under white noise**" in [m.value for m in at.markdown]
    table = next(d.value for d in at.dataframe if "SSIM" in d.value.columns and len(d.value) == 2)
    assert set(table["Method"]) == {"Zero-filled", "SENSE (CG)"}  # human names on the page


STUDY = Path(__file__).resolve().parents[1] / "explorer" / "study"


@pytest.mark.parametrize("path", sorted(p for p in STUDY.glob("*.py") if p.name != "presets.py"), ids=lambda p: p.name)
def test_the_study_names_no_experiment(path):
    """No comparison with, and no mapping keyed by, a built-in experiment's name in the study code (presets.py is a
    spec: it names experiments as any spec file does)."""
    names = {"clean", "attack", "features", "shift", "filtered", "ttt"}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            strings = {o.value for o in operands if isinstance(o, ast.Constant) and isinstance(o.value, str)}
            if strings & names:
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Dict) and {k.value for k in node.keys if isinstance(k, ast.Constant)} & names:
            found.append(f"{path.name}:{node.lineno}: a table keyed by experiment names")
    assert found == []

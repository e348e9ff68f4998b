"""Studies: spec validation (one-line errors), expansion counts, resume after an interruption, serial and Ray
producing the same rows, a failed unit that does not stop the study."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from explorer.cli.main import main
from explorer.errors import ExplorerError
from explorer.study.runner import run_study
from explorer.study.spec import parse_spec
from explorer.study.units import expand

SAMPLE = "sample:knee,size=32,slices=2,coils=4"
TINY = {"name": "tiny", "data": [{"source": SAMPLE, "slices": "all"}],
        "methods": ["zero_filled", "sense", {"label": "l1_fast", "method": "l1", "config": {"iterations": 5}}],
        "experiments": ["clean", {"attack": {"eps": [0.02, 0.04], "steps": 2}}]}


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "study-cache"))


def _rows(table: Path) -> list[dict]:
    """Rows without what legitimately differs between runs (times, dates, device), sorted by task key."""
    out = []
    for r in pq.read_table(table).to_pylist():
        scores = json.loads(r["scores"]) if r["scores"] else None
        if isinstance(scores, dict):
            scores.pop("seconds", None)
            scores.pop("noise_seconds", None)
        out.append({k: v for k, v in r.items() if k not in ("seconds", "maps_seconds", "created", "device", "scores")}
                   | {"scores": scores})
    return sorted(out, key=lambda r: r["task_key"])


@pytest.mark.parametrize("raw, message", [
    ([], "a mapping with data, methods and experiments"),
    ({"methods": ["sense"]}, "needs a non-empty list 'data'"),
    ({"data": [SAMPLE]}, "needs a non-empty list 'methods'"),
    ({"data": [SAMPLE], "methods": ["sense"], "colour": 1}, "unknown study spec key 'colour'"),
    ({"data": [SAMPLE], "methods": ["resnet"]}, "methods[0]: unknown method 'resnet'"),
    ({"data": [SAMPLE], "methods": [{"method": "l1", "config": {"lam": -1}}]}, "methods[0]: l1.lam must be in"),
    ({"data": [SAMPLE], "methods": ["sense", "sense"]}, "method label 'sense' is used twice"),
    ({"data": [{"source": SAMPLE, "slices": "some"}], "methods": ["sense"]}, "data[0].slices must be"),
    ({"data": [SAMPLE], "methods": ["sense"], "masks": [{"type": "spiral"}]}, "masks[0]:"),
    ({"data": [SAMPLE], "methods": ["sense"], "experiments": ["denoise"]}, "unknown experiment 'denoise'"),
    ({"data": [SAMPLE], "methods": ["sense"], "experiments": [{"attack": {"eps": [20]}}]}, "eps must be in [0, 10]"),
    ({"data": [SAMPLE], "methods": ["sense"], "experiments": [{"attack": {"colour": 1}}]}, "unknown attack setting"),
    ({"data": [SAMPLE], "methods": ["sense"], "experiments": [{"shift": {}}]}, "ood must be a non-empty list"),
    ({"data": [SAMPLE], "methods": ["unet"], "experiments": [{"ttt": {"window": 0}}]}, "TTT window must be in"),
    ({"data": [SAMPLE], "methods": ["unet"], "experiments": [{"ttt": {"reference_checkpoint": "/no/such.pt"}}]},
     "experiments[0]: no such checkpoint file: /no/such.pt"),
    ({"data": [SAMPLE], "methods": ["unet"], "experiments": [{"ttt": {"reference_checkpoint": 3}}]},
     "reference_checkpoint must be knee, brain or a checkpoint file"),
])
def test_bad_specs_are_one_line_errors(raw, message):
    with pytest.raises(ExplorerError) as info:
        parse_spec(raw)
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_bad_spec_files_and_options_on_the_command_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [sample:knee\nmethods: [")
    for argv, message in (([str(bad)], "bad.yaml is not valid YAML at line"),
                          ([str(tmp_path / "none.yaml")], "cannot read the study spec"),
                          ([str(bad), "--executor", "dask"], "--executor must be one of serial, ray"),
                          ([str(bad), "--workers", "2"], "--workers and --ray-address apply to --executor ray"),
                          ([], "give a spec file or --preset (one of them)"),
                          ([str(bad), "--preset", "paper"], "give a spec file or --preset (one of them)"),
                          ([str(bad), "--data", "knee=x"], "--data applies to --preset"),
                          (["--preset", "paper", "--data", "ankle=x"], "unknown --data key 'ankle'"),
                          (["--preset", "paper", "--data", "knee"], "--data must be KEY=DIR"),
                          (["--preset", "thesis"], "unknown preset 'thesis'")):
        assert main(["study", *argv, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    spec = tmp_path / "slice.yaml"
    spec.write_text(json.dumps({"data": [{"source": SAMPLE, "slices": [7]}], "methods": ["sense"]}))
    assert main(["study", str(spec), "--out", str(tmp_path / "o2")]) == 2
    assert "slice 7 out of range (the volume has 2 slices)" in capsys.readouterr().err


def test_expansion_counts():
    spec = parse_spec({**TINY, "methods": [*TINY["methods"], "unet"],
                       "masks": [{"acceleration": 4}, {"type": "equispaced", "acceleration": 3, "center_fraction": 0.2}],
                       "experiments": ["clean", {"attack": {"eps": [0.02]}}, {"ttt": {"steps": 2}},
                                       {"shift": {"ood": [{"source": "sample:brain,size=32,slices=3,coils=4",
                                                           "slices": "all"}]}}]})
    units = expand(spec)
    count = {kind: sum(u.experiment == kind for u in units) for kind in ("clean", "attack", "ttt", "shift")}
    # 2 slices x 2 masks x 4 methods; TTT only the network with weights; shift: (2 + 3 slices) x 2 masks x 4
    assert count == {"clean": 16, "attack": 16, "ttt": 4, "shift": 40}
    ood = "ood:sample:brain,size=32,slices=3,coils=4"
    assert sum(u.role == ood for u in units) == 24 and len({u.key() for u in units}) == len(units)
    brain = [u for u in units if u.role == ood and u.method.name == "l1"][0]
    knee = [u for u in units if u.role == "id" and u.method.name == "l1"][0]
    assert brain.method.config == knee.method.config  # configs pinned on the in-distribution set


def test_experiments_with_their_own_data_and_methods_and_shared_id_units():
    from explorer.study.presets import preset

    spec = parse_spec({**TINY, "experiments": [
        {"attack": {"eps": [0.02], "data": [{"source": SAMPLE, "slices": [1]}], "methods": ["sense"]}},
        {"shift": {"ood": ["sample:brain,size=32,slices=1,coils=4"]}},
        {"shift": {"ood": ["sample:knee,size=32,slices=1,coils=4,dataset=stanford"]}}]})
    units = expand(spec)
    assert [(u.method.label, u.slice) for u in units if u.experiment == "attack"] == [("sense", 1)]
    roles = [u.role for u in units if u.experiment == "shift"]
    assert roles.count("id") == 2 * 3  # shared by both pairs: 2 slices x 3 methods, once
    assert len(roles) == 6 + 3 + 3
    for name in ("paper-fast", "paper"):
        paper = expand(parse_spec(preset(name)))
        kinds = {k: sum(u.experiment == k for u in paper) for k in ("shift", "filtered", "attack", "features", "ttt")}
        # 11 models on 3 + 3 + 3 shift slices; 7 method groups (an un-trained network among them) elsewhere
        # TTT on the four shifts, two slices of Q each: U-net and VarNet (anatomy), the U-net alone (the others)
        assert kinds == {"shift": 33 + 33 + 33, "filtered": 3 * 7, "attack": 7, "features": 12, "ttt": 4 + 2 + 2 + 2}
        assert {u.method.name for u in paper if u.experiment == "attack"} >= {"convdecoder", "l1", "unet"}
        ttt = [u for u in paper if u.experiment == "ttt"]
        for unit in ttt:
            settings = json.loads(unit.settings)
            assert settings["protocol"] == "paper" and settings.get("steps", 2500) >= 3 * settings["window"]  # can fire
        by_shift = {u.method.label.split("(")[1].rstrip(")"): u for u in ttt}
        assert set(by_shift) == {"anatomy", "dataset", "contrast", "acceleration"}
        assert by_shift["acceleration"].mask.acceleration == 2 and by_shift["dataset"].mask.acceleration == 4
        assert "dataset=stanford" in by_shift["dataset"].data and "contrast=t1" in by_shift["contrast"].data
        windows = {k: json.loads(u.settings)["window"] for k, u in by_shift.items()}
        assert windows == ({k: 20 for k in by_shift} if name == "paper-fast" else
                           {"anatomy": 100, "dataset": 20, "contrast": 20, "acceleration": 100})  # U-net's windows
        refs = {k: json.loads(u.settings)["reference_checkpoint"] for k, u in by_shift.items()}
        assert refs["anatomy"] == "brain" and Path(refs["contrast"]).name == "unet_brain-t1.pt"
    with pytest.raises(ExplorerError, match="unknown --data key 'ankle'"):
        preset("paper", {"ankle": "x"})


def test_an_experiment_with_its_own_masks():
    spec = parse_spec({**TINY, "experiments": [
        "clean", {"clean": {"masks": [{"type": "equispaced", "acceleration": 8}], "methods": ["zero_filled"]}}]})
    units = expand(spec)
    own = [u for u in units if u.mask.acceleration == 8]
    assert [u.method.label for u in own] == ["zero_filled"] * len(own) and own and own[0].mask.type == "equispaced"
    assert all(u.mask == spec.masks[0] for u in units if u not in own)
    for bad, message in ((5, "masks must be a"), ([{"acceleration": "fast"}], "masks[0]: acceleration")):
        with pytest.raises(ExplorerError, match=re.escape(message)):
            parse_spec({**TINY, "experiments": [{"clean": {"masks": bad}}]})


def _real_brain_folder(root: Path, tests: int = 7, measured: int = 2) -> Path:
    """The layout of the README's real-brain build: ``mc/test`` and ``measured`` with tiny 4-coil volumes."""
    from explorer.data.fastmri import write_volume

    rng = np.random.default_rng(0)
    for sub, count in (("mc/test", tests), ("measured", measured)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            k = (rng.standard_normal((1, 4, 32, 32)) + 1j * rng.standard_normal((1, 4, 32, 32))).astype(np.complex64)
            write_volume(root / sub / f"v_{i:04d}.h5", k, np.abs(k).sum(1).astype(np.float32), recon_size=(32, 32),
                         attrs={"anatomy": "brain"})
    return root


def test_two_shift_experiments_on_their_own_data_keep_their_sets_apart(tmp_path):
    from explorer.robustness.shift import shift_pairs, shift_summary

    brain = "sample:brain,size=32,slices=2,coils=4"
    stanford = "sample:knee,size=32,slices=3,coils=4,dataset=stanford"
    spec = parse_spec({"name": "two", "data": [{"source": SAMPLE, "slices": [0]}], "methods": ["zero_filled"],
                       "experiments": [{"shift": {"ood": [{"source": brain, "slices": [0]}]}},
                                       {"shift": {"data": [{"source": stanford, "slices": [0, 1, 2]}],
                                                  "ood": [{"source": brain, "slices": [1]}]}}]})
    from explorer.engine.table import read_records

    run_study(spec, tmp_path / "s")
    records = read_records(tmp_path / "s" / "results.parquet")
    pairs = shift_pairs(records)
    assert pairs == [brain, f"{brain} from {stanford}"]
    study_pair, own_pair = (shift_summary(records, pair)[0][0] for pair in pairs)
    assert (study_pair["slices_id"], study_pair["slices_ood"]) == (1, 1)  # the study's knee slice only
    assert (own_pair["slices_id"], own_pair["slices_ood"]) == (3, 1)  # the experiment's 3 Stanford slices only
    knee = [r.ssim for r in records if r.role == "id"]
    assert study_pair["ssim_id"] == pytest.approx(knee[0]) and own_pair["ssim_id"] != pytest.approx(knee[0])


def test_real_brain_arms_of_the_paper_presets(tmp_path):
    from explorer.study.presets import FAST_REAL_SLICES, preset

    folder = _real_brain_folder(tmp_path / "real")
    for name, tests in (("paper-fast", FAST_REAL_SLICES), ("paper", 7)):
        plain = expand(parse_spec(preset(name)))
        units = expand(parse_spec(preset(name, {"real-brain": str(folder)})))
        extra = [u for u in units if u.key() not in {p.key() for p in plain}]
        shift = [u for u in extra if u.experiment == "shift"]
        ttt = [u for u in extra if u.experiment == "ttt"]
        assert len(extra) == len(shift) + len(ttt)
        anatomy = f"ood:{folder.resolve() / 'mc' / 'test'} ({tests} volumes)"  # the study's knee data: no " from "
        # the knee set's 11 models on the real test slices (the knee units are shared with the other shifts)
        assert sum(u.role == anatomy for u in shift) == 11 * tests
        contrast = [u for u in shift if u.role != anatomy]
        origin = f" from {folder.resolve() / 'mc' / 'test'} ({tests} volumes)"
        assert {u.role for u in contrast} == {"id" + origin, f"ood:{' + '.join(str(p) for p in sorted((folder / 'measured').resolve().glob('*.h5')))}{origin}"}
        methods = {u.method.label for u in contrast}
        assert methods == {"zero_filled", "sense", "l1", "tv", "convdecoder", "unet_brain-real", "varnet_brain-real"}
        assert len(contrast) == 7 * (tests + 2)  # the test slices in distribution, the 2 measured ones shifted
        assert {u.method.label for u in ttt} == {"unet_brain-real", "varnet_brain-real"} and len(ttt) == 2 * 2
        settings = json.loads(ttt[0].settings)
        assert settings["protocol"] == "paper" and settings["window"] == 20 and "reference_checkpoint" not in settings
        assert settings.get("steps", 2500) >= 3 * settings["window"]  # the stopping rule can fire
        unet = next(u for u in ttt if u.method.label == "unet_brain-real")
        assert Path(unet.method.config.checkpoint).name == "unet_brain-real.pt"
    empty = tmp_path / "empty"
    (empty / "mc" / "test").mkdir(parents=True)
    for bad, fragment in ((tmp_path / "nope", "no .h5 volumes"), (empty, "mc/test")):
        with pytest.raises(ExplorerError, match=fragment):
            preset("paper-fast", {"real-brain": str(bad)})


def test_serial_study_resume_after_a_stop_gives_the_same_table(tmp_path):
    spec = parse_spec(TINY)
    full = run_study(spec, tmp_path / "full")
    assert (full.units, full.run, full.failed, full.stopped) == (12, 12, 0, False)
    rows = _rows(full.table)
    assert len(rows) == 6 * 1 + 6 * 2 and {r["experiment"] for r in rows} == {"clean", "attack"}
    attack = [r for r in rows if r["experiment"] == "attack"]
    assert {json.loads(r["perturbation"])["eps"] for r in attack} == {0.02, 0.04}
    assert all(r["scores"]["ssim_drop"] is not None for r in attack)
    # the random baseline rides in each budget's record: 3 Gaussian draws of the same norm by default
    assert all(r["scores"]["noise_draws"] == 3 and r["scores"]["noise_ssim_drop"] is not None for r in attack)
    assert (tmp_path / "full" / "spec.yaml").is_file() and "finished" in (tmp_path / "full" / "study.log").read_text()
    stopped = run_study(spec, tmp_path / "part", progress=lambda done, total, info: done == 5)
    assert stopped.stopped and stopped.run == 5 and len({r["unit"] for r in _rows(stopped.table)}) == 5
    with pytest.raises(ExplorerError, match="holds a study already: add --resume"):
        run_study(spec, tmp_path / "part")
    resumed = run_study(spec, tmp_path / "part", resume=True)
    assert (resumed.skipped, resumed.run) == (5, 7)
    assert _rows(resumed.table) == rows  # same rows, no duplicates


def test_a_killed_study_resumes_to_the_same_table(tmp_path):
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(json.dumps({**TINY, "methods": [{"label": f"l1_{i}", "method": "l1",
                                                          "config": {"iterations": 400 + i}} for i in range(6)],
                                     "experiments": ["clean"]}))
    out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "study", str(spec_file), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1])
    table = out / "results.parquet"
    deadline = time.time() + 120
    while time.time() < deadline and not (table.exists() and pq.read_table(table).num_rows >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    partial = pq.read_table(table).num_rows
    assert 2 <= partial < 12, partial  # killed mid-run: the rows written so far (flushed every 2 s), complete
    # every run with one torch thread: reductions (and so the last digits) depend on the thread count
    for args in (["--out", str(out), "--resume"], ["--out", str(tmp_path / "whole")]):
        subprocess.run([sys.executable, "-m", "explorer", "study", str(spec_file), *args], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1])
    assert _rows(table) == _rows(tmp_path / "whole" / "results.parquet")


def test_a_failed_unit_is_recorded_and_the_study_goes_on(tmp_path):
    # a 1-column centre: ESPIRiT cannot calibrate, so SENSE fails on every slice while zero-filled succeeds
    spec = parse_spec({**TINY, "methods": ["sense", "zero_filled"], "experiments": ["clean"],
                       "masks": [{"type": "equispaced", "acceleration": 2, "center_fraction": 0.03}]})
    run = run_study(spec, tmp_path / "f")
    rows = _rows(run.table)
    failed = [r for r in rows if r["error"]]
    assert run.failed == 2 and len(failed) == 2 and all(r["label"] == "sense" for r in failed)
    assert all("ESPIRiT needs at least 3" in r["error"] for r in failed)
    assert all(r["ssim"] is not None for r in rows if r["label"] == "zero_filled")
    again = run_study(spec, tmp_path / "f", resume=True)
    assert again.run == 2 and again.skipped == 2  # failed units are retried


def test_serial_and_ray_give_identical_tables(tmp_path):
    pytest.importorskip("ray")  # installed by requirements.txt (CI runs it)
    spec = parse_spec(TINY)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as Ray's workers (OMP_NUM_THREADS=1): the last digits depend on the thread count
    try:
        serial = run_study(spec, tmp_path / "serial")
    finally:
        torch.set_num_threads(threads)
    ray_run = run_study(spec, tmp_path / "ray", executor="ray", workers=2)
    assert ray_run.run == 12 and ray_run.failed == 0
    assert _rows(serial.table) == _rows(ray_run.table)


def test_every_experiment_into_one_table_and_the_report(tmp_path, capsys):
    """clean, attack, features, shift and TTT in one study; the summaries and the self-contained HTML report."""
    from explorer.engine.table import read_records
    from explorer.robustness.registry import records_of
    from explorer.robustness.shift import shift_summary
    from explorer.study.report import report_html, summaries

    source = "sample:knee,size=64,slices=2,coils=4"
    spec_file = tmp_path / "all.yaml"
    spec_file.write_text(json.dumps({
        "name": "all", "data": [{"source": source, "slices": "all"}],
        "masks": [{"type": "random", "acceleration": 3, "center_fraction": 0.2}],
        "methods": ["zero_filled", "sense", "unet"],
        "experiments": ["clean", {"attack": {"eps": [0.02, 0.04], "steps": 2}},
                        {"features": {"count": 2, "sizes": [3], "contrasts": [0.2]}},
                        {"shift": {"ood": [{"source": "sample:brain,size=64,slices=2,coils=4", "slices": "all"}]}},
                        {"ttt": {"steps": 2, "reference_checkpoint": "brain"}}]}))
    assert main(["study", str(spec_file), "--out", str(tmp_path / "out"), "--csv", str(tmp_path / "all.csv")]) == 0
    records = read_records(tmp_path / "out" / "results.parquet")
    assert not [r.error for r in records if r.error]
    summary = summaries(records)
    attack = summary["attack"]
    worst = [r for r in attack if r["kind"] == "worst case"]
    assert [(r["label"], r["eps"], r["n"]) for r in worst][:2] == [("sense", 0.02, 2), ("sense", 0.04, 2)]
    assert all(r["ssim_drop"] >= -1e-6 for r in worst)
    noise = [r for r in attack if r["kind"] == "noise"]  # beside each worst case: Gaussian noise of the same norm
    assert [r["kind"] for r in attack[:2]] == ["worst case", "noise"]
    assert [(r["label"], r["eps"], r["n"], r["draws"]) for r in noise] == [(r["label"], r["eps"], 2, 6) for r in worst]
    assert len(summary["features"]) == 2 * 3 * 2  # 2 features x 3 methods x 2 slices
    rows, fit, families = shift_summary(records_of(records, "shift"))
    assert {r["label"] for r in rows} == {"zero_filled", "sense", "unet"} and fit["n"] == 3
    assert all(r["slices_id"] == 2 and r["slices_ood"] == 2 for r in rows) and set(families) == {"baseline", "trained"}
    ttt = summary["ttt"]
    assert len(ttt) == 2 and all(r["label"] == "unet" and r["ssim_reference"] is not None for r in ttt)
    text = (tmp_path / "out" / "report.html").read_text()
    for heading in ("Adversarial attacks", "Small features", "Distribution shift", "Test-time training", "Provenance"):
        assert heading in text
    assert "Gaussian noise, same norm" in text  # the noise curves of the attack figure
    assert "<script src=\"https://cdn.plot.ly" not in text and text.count("Plotly.newPlot(") == 4  # plotly inline, once
    assert len((tmp_path / "all.csv").read_text().splitlines()) == len(records) + 1
    assert report_html([], "") .startswith("<!DOCTYPE html>")
    assert "The papers&#x27; conclusions beside this run" in text  # the report's first section
    capsys.readouterr()
    assert main(["study", str(spec_file), "--out", str(tmp_path / "out"), "--resume", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["units"] == doc["skipped"] and doc["run"] == 0 and doc["failed"] == 0
    claims = [row["the papers' conclusion"].split()[0] for row in doc["conclusions"]]
    assert claims == ["No", "Recovery", "Strong", "Accuracy", "Test"]  # the talk's five, in registry order
    assert all(row["this run"] in ("agrees", "disagrees", "undecided") for row in doc["conclusions"])
    assert doc["definitions"].startswith("Metrics: fastmri") and set(doc["summaries"]) >= {"attack", "ttt"}


def test_the_shift_figure_draws_each_family_fit():
    from explorer.figures.shift import shift_figure

    rows = [{"label": f"m{i}", "family": fam, "ssim_id": x, "ssim_ood": y}
            for i, (fam, x, y) in enumerate([("sparse", 0.7, 0.72), ("sparse", 0.75, 0.76), ("trained", 0.8, 0.5),
                                             ("trained", 0.82, 0.55)])]
    fig = shift_figure(rows, {"slope": 1.0, "intercept": 0.0, "r": 0.1, "n": 4},
                       family_fits={"sparse": {"slope": 0.8, "intercept": 0.16, "r": 1.0}, "trained": None})
    names = [t.name for t in fig.data]
    assert "sparse fit: slope 0.80, r = +1.00" in names and not any(n.startswith("trained fit") for n in names)
    line = next(t for t in fig.data if t.name.startswith("sparse fit"))
    assert list(line.x) == [0.7, 0.75] and list(line.y) == pytest.approx([0.8 * 0.7 + 0.16, 0.8 * 0.75 + 0.16])

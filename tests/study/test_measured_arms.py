"""The real-data arms' table (explorer.study.measured_arms) from a real study run on a tiny real-brain layout: each
real shift pair with its own in-distribution set, the verdicts on those pairs, and TTT rows without a reference."""

from __future__ import annotations

import json

from explorer.engine.table import read_records
from explorer.study.measured_arms import render_arms
from explorer.study.presets import real_brain_arms
from explorer.study.report import conclusions, summaries
from explorer.study.runner import run_study
from explorer.study.spec import parse_spec
from tests.test_study import _real_brain_folder


def test_arms_table_from_a_tiny_study(tmp_path, monkeypatch):
    monkeypatch.setattr("explorer.study.measured_arms.REAL_DATA", str(tmp_path / "real"))
    folder = _real_brain_folder(tmp_path / "real", tests=3, measured=2)
    arms = real_brain_arms(str(folder), True, "zero_filled")
    arms[1]["shift"]["methods"] = ["zero_filled", arms[1]["shift"]["methods"][-2]]  # zero-filled + the real U-net
    arms[2]["ttt"].update(steps=3, window=1)
    arms[2]["ttt"]["methods"] = arms[2]["ttt"]["methods"][:1]
    spec = parse_spec({"name": "arms", "data": [{"source": "sample:knee,size=32,slices=2,coils=4", "slices": [0]}],
                       "methods": ["zero_filled"], "experiments": arms})
    run_study(spec, tmp_path / "s")
    records = read_records(tmp_path / "s" / "results.parquet")
    doc = json.loads(json.dumps({"summaries": summaries(records), "conclusions": conclusions(records), "units": 9,
                                 "seconds": 6.0, "failed": 0}, default=float))
    text = render_arms([("study", doc)])
    test_set, measured = folder.resolve() / "mc" / "test", folder.resolve() / "measured"
    assert f"**the knee sample (the study data) -> {test_set} (3 volumes)**" in text
    assert f"**{test_set} (3 volumes) -> " in text and str(measured) in text
    assert "| unet_brain-real | trained |" in text and "(3) |" in text  # its 3 test slices in distribution
    assert text.count("| unet_brain-real | v_000") == 2  # TTT on the two measured slices, before -> after
    assert "no gap closed" in text

"""The adversarially filtered shift: the hardest slices of the filter models, every model on the pool against them,
in the library, a study and the CLI (the page: tests/app/test_shift_page.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.cli.main import main
from explorer.engine.table import read_records
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.robustness.filtered import check_filter, compare, filtered_shift, hardest, summary
from explorer.robustness.registry import records_of
from explorer.study.runner import run_study
from explorer.study.spec import parse_spec

POOL = "sample:knee,size=64,slices=5,coils=4"
MASK = MaskConfig("random", 3, 0.2, 0)


def test_the_hardest_slices_are_the_filters_lowest_in_slice_order():
    scores = {"a": np.array([0.9, 0.5, 0.7, 0.4]), "b": np.array([0.6, 0.6, 0.2, 0.9])}
    assert hardest(scores, ["a"], 2) == [1, 3]
    assert hardest(scores, ["a", "b"], 2) == [1, 2]  # their mean: 0.75 0.55 0.45 0.65
    rows = compare(scores, [1, 3], {"a": ("m", "f"), "b": ("n", "g")})
    assert rows[0] == {"label": "a", "method": "m", "family": "f", "ssim_pool": pytest.approx(0.625),
                       "ssim_filtered": pytest.approx(0.45), "gap": pytest.approx(0.175), "slices_pool": 4,
                       "slices_filtered": 2}
    with pytest.raises(ExplorerError, match="not one of the models compared"):
        check_filter(["c"], 2, ["a", "b"])
    with pytest.raises(ExplorerError, match="keep must be an integer"):
        check_filter(["a"], 0, ["a", "b"])


def test_filtered_shift_keeps_the_filters_worst_slices():
    result = filtered_shift(POOL, ["zero_filled", "sense", "unet"], ["unet"], 2, MASK)
    unet = result.evaluation.metrics["unet"]["ssim"]
    assert len(result.kept) == 2 and sorted(result.kept) == sorted(np.argsort(unet)[:2].tolist())
    rows = {r["label"]: r for r in result.rows}
    assert rows["unet"]["ssim_filtered"] == pytest.approx(float(np.sort(unet)[:2].mean()))
    assert rows["unet"]["ssim_filtered"] <= rows["unet"]["ssim_pool"]  # the filter's own subset is its worst
    for label, row in rows.items():
        values = result.evaluation.metrics[label]["ssim"]
        assert row["ssim_pool"] == pytest.approx(float(values.mean()))
        assert row["ssim_filtered"] == pytest.approx(float(values[list(result.kept)].mean()))
    assert result.fit["n"] == 3


def test_the_filtered_shift_in_a_study_its_report_and_the_cli(tmp_path, capsys):
    spec = {"name": "f", "data": [{"source": POOL, "slices": "all"}], "masks": [{"type": "random", "acceleration": 3,
            "center_fraction": 0.2}], "methods": ["zero_filled", "sense", "unet"],
            "experiments": [{"filtered": {"filter": ["unet"], "keep": 2}}]}
    run = run_study(parse_spec(spec), tmp_path / "study")
    assert run.failed == 0 and run.units == 15
    records = records_of(read_records(run.table), "filtered")
    rows = summary(records)
    assert [r["label"] for r in rows] == ["zero_filled", "sense", "unet"] and all(r["keep"] == 2 for r in rows)
    unet = sorted(r.ssim for r in records if r.label == "unet")
    assert next(r for r in rows if r["label"] == "unet")["ssim_filtered"] == pytest.approx(np.mean(unet[:2]))
    with pytest.raises(ExplorerError, match="filter model 'varnet' is not one of the models compared"):
        parse_spec({**spec, "experiments": [{"filtered": {"filter": ["varnet"]}}]})
    capsys.readouterr()
    argv = ["filtered", "--pool", POOL, "--acceleration", "3", "--center-fraction", "0.2", "--method", "zero_filled",
            "--method", "unet", "--filter", "unet", "--keep", "2", "--json", "--out", str(tmp_path / "cli")]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["filters"] == ["unet"] and len(out["kept"]) == 2 and len(out["models"]) == 2
    assert (tmp_path / "cli" / "filtered.csv").is_file() and (tmp_path / "cli" / "filtered.html").is_file()
    assert main(argv[:-3] + ["--filter", "l1"]) == 2
    assert "filter model 'l1' is not one of the models compared" in capsys.readouterr().err

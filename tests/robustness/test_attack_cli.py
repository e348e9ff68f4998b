"""``python -m explorer attack``: JSON per method and eps, files under --out, transfer, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.cli.main import main
from explorer.data.fastmri import write_volume
from tests.conftest import multicoil_kspace


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_volume(tmp_path_factory.mktemp("cli") / "m.h5", multicoil_kspace(slices=1, coils=4, h=32, w=32))


def test_json_rows_per_method_and_eps_and_files(data, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["attack", "--data", str(data), "--acceleration", "3", "--method", "zero_filled", "--method", "l1",
                 "--set", "l1.iterations=5", "--eps", "0.04,0.01", "--steps", "4", "--transfer", "--json", "--out", str(out)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["results"]
    assert [(r["label"], r["eps"]) for r in rows] == [("zero_filled", 0.01), ("zero_filled", 0.04), ("l1", 0.01), ("l1", 0.04)]
    for r in rows:
        assert r["strategy"] == "gradient" and r["ratio"] <= r["eps"] * (1 + 1e-6) and r["steps"] >= 1
        assert r["ssim_perturbed"] <= r["ssim_clean"] and r["ssim_drop"] == pytest.approx(r["ssim_clean"] - r["ssim_perturbed"])
    assert "clean" in report["maps"] and len(report["transfer"]) == 4 * 2
    assert (out / "attack.csv").read_text().count("\n") == 5 and (out / "transfer.csv").is_file()
    e = np.load(out / "e_l1_0.04.npy")
    assert e.shape == (4, 32, 32) and np.iscomplexobj(e)


@pytest.mark.parametrize("extra, message", [
    (["--eps", "a,b"], "--eps"), (["--eps", "-0.1"], "eps must be"), (["--objective", "x"], "objective"),
    (["--region", "1,2"], "region"), (["--steps", "0"], "steps"), (["--attack-seed", "-1"], "seed"),
    (["--region", "0,0,99,99"], "outside"),
])
def test_bad_settings_exit_2_with_one_line(data, capsys, extra, message):
    assert main(["attack", "--data", str(data), "--acceleration", "3", "--method", "zero_filled", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1

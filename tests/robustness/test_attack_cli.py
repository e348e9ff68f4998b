"""``python -m explorer attack``: JSON per method and eps, the noise baseline beside each worst case, files under --out,
transfer, one-line errors."""

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
    assert all(r["kind"] == "worst case" for r in rows)
    noise = report["noise"]  # the random baseline (3 draws by default) beside every worst case
    assert [(r["label"], r["eps"]) for r in noise] == [(r["label"], r["eps"]) for r in rows]
    for n in noise:
        assert n["kind"] == "noise" and n["objective_name"] == "noise (Gaussian, same norm)" and n["draws"] == 3
        assert n["ratio"] == pytest.approx(n["eps"], rel=1e-5) and n["strategy"] == "random"
        assert n["ssim_drop"] is not None and n["ssim_drop_sd"] >= 0 and n["psnr_drop_sd"] >= 0
    # 4 sources x 2 targets, then Gaussian noise of each budget's norm applied to both targets
    assert "clean" in report["maps"] and len(report["transfer"]) == 4 * 2 + 2 * 2
    assert [t["source"] for t in report["transfer"][8:]] == ["noise (Gaussian, same norm)"] * 4
    own = {(n["label"], n["eps"]): n for n in noise}  # the same seed and budget: the same draws as each own baseline
    assert all(t["ssim_drop"] == pytest.approx(own[(t["target"], t["eps"])]["ssim_drop"]) for t in report["transfer"][8:])
    lines = (out / "attack.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 + 4 and "kind" in lines[0].split(",")
    kinds = [line.split(",")[lines[0].split(",").index("kind")] for line in lines[1:]]
    assert kinds == ["worst case", "noise"] * 4 and (out / "transfer.csv").is_file()
    e = np.load(out / "e_l1_0.04.npy")
    assert e.shape == (4, 32, 32) and np.iscomplexobj(e)


def test_the_printed_table_has_a_noise_row_under_each_worst_case_and_0_turns_it_off(data, capsys):
    argv = ["attack", "--data", str(data), "--acceleration", "3", "--method", "zero_filled", "--eps", "0.02,0.08",
            "--steps", "3"]
    assert main([*argv, "--noise-draws", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if line.startswith(("zero_filled", "  noise"))]
    assert [line.split()[0] for line in table] == ["zero_filled", "noise"] * 2
    assert all("mean of 2 Gaussian draw(s) of the same norm" in line for line in table[1::2])
    assert main([*argv, "--noise-draws", "0"]) == 0
    assert "noise" not in capsys.readouterr().out
    assert main([*argv, "--noise-draws", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["noise"] == []


@pytest.mark.parametrize("extra, message", [
    (["--eps", "a,b"], "--eps"), (["--eps", "-0.1"], "eps must be"), (["--objective", "x"], "objective"),
    (["--region", "1,2"], "region"), (["--steps", "0"], "steps"), (["--attack-seed", "-1"], "seed"),
    (["--region", "0,0,99,99"], "outside"), (["--noise-draws", "-1"], "noise draws must be in [0, 32]"),
    (["--noise-draws", "33"], "noise draws must be in [0, 32]"), (["--noise-draws", "two"], "--noise-draws"),
])
def test_bad_settings_exit_2_with_one_line(data, capsys, extra, message):
    assert main(["attack", "--data", str(data), "--acceleration", "3", "--method", "zero_filled", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1

"""AppTest of the Attack page on the 64x64 embedded sample: the run, its figures and downloads, agreement with
the library, bad settings as one-line errors, the shared clean results left untouched, and the joint scheme."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.data.fastmri import write_volume
from explorer.engine import prepare, run_method
from explorer.physics import fft2c, ifft2c, rss
from explorer.ui import state
from explorer.ui.runs import attack as attack_run
from tests.app.conftest import figure, open_page, viewer

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 120


pytestmark = pytest.mark.usefixtures("small_sample_app")


def _attack_page() -> AppTest:
    return open_page("attack")


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _library_problem(mask):
    """The same slice and mask, prepared by the library (not through the app's caches)."""
    from explorer.data.fastmri import FastMRIVolume  # noqa: PLC0415
    from explorer.data.sample import SampleSpec, sample_path  # noqa: PLC0415

    volume = FastMRIVolume(sample_path(SampleSpec(family="knee", size=64)))
    return prepare(volume.read_slice(volume.num_slices // 2), mask, "cpu")


def test_attack_page_sweep_figures_downloads_and_library_agreement():
    at = _attack_page()
    assert at.title[0].value == "Attack"
    assert at.multiselect(key="attack.methods").value == ["zero_filled", "l1", "unet"]  # classical, sparse, trained
    assert not at.dataframe  # nothing run yet
    at.multiselect(key="attack.methods").set_value(["zero_filled", "sense"]).run()
    at.text_input(key="attack.eps").set_value("0.08, 0.02").run()
    at.checkbox(key="attack.transfer").check().run()
    at.button(key="attack.run").click().run()
    assert not at.exception and not _errors(at), _errors(at)

    everything = at.dataframe[0].value
    # each worst case followed by its random baseline: Gaussian noise of the same norm (3 draws by default)
    assert list(everything["Perturbation"]) == ["worst case", "Gaussian noise, same norm"] * 4
    table = everything[everything["Perturbation"] == "worst case"].reset_index(drop=True)
    noise = everything[everything["Perturbation"] != "worst case"].reset_index(drop=True)
    assert list(table["Method"]) == list(noise["Method"]) == ["Zero-filled", "Zero-filled", "SENSE (CG)", "SENSE (CG)"]
    assert list(table["Budget ε"]) == list(noise["Budget ε"]) == [0.02, 0.08, 0.02, 0.08]
    for _, row in everything.iterrows():
        assert row["‖e‖/‖k‖"] == pytest.approx(row["Budget ε"], rel=1e-5)  # the whole budget is spent
        assert row["SSIM drop"] == pytest.approx(row["SSIM clean"] - row["SSIM perturbed"], abs=1e-9)
        assert row["PSNR drop (dB)"] > 0 and not row["Stopped"]
    for _, row in table.iterrows():
        assert row["SSIM drop"] > 0 and row["Strategy"] == "gradient ascent"
    assert set(noise["Strategy"]) == {"3 random draws"} and all(float(v) >= 0 for v in noise["SSIM drop sd"])
    assert all(w > n for w, n in zip(table["PSNR drop (dB)"], noise["PSNR drop (dB)"]))  # the search beats noise
    for name in ("Zero-filled", "SENSE (CG)"):  # the worst case found grows with the budget
        mine = table[table["Method"] == name]
        assert float(mine["Objective"].iloc[1]) > float(mine["Objective"].iloc[0])

    header, _ = viewer(at, "attack")
    labels = header["frames"][0]["labels"]
    assert labels[0] == "Target (reference)" and not header["settings"]["show_target"]  # for error maps, not shown
    assert labels[1:3] == ["Zero-filled: clean", "Zero-filled: perturbed"]  # per method: both
    assert header["settings"]["error"] == "pair"  # the viewer opens on |perturbed − clean| (blink pairs them too)
    assert header["settings"]["pairs"]["SENSE (CG): perturbed"] == "SENSE (CG): clean"
    sweep = figure(at, "attack.sweep")
    assert len(sweep["data"]) == 8 and len(sweep["data"][0]["x"]) == 3  # SSIM and PSNR per method: eps 0, 0.02, 0.08
    dashed = [d for d in sweep["data"] if d.get("line", {}).get("dash") == "dash"]  # and each method's noise curve
    assert len(dashed) == 4 and all(d["name"].endswith("Gaussian noise, same norm") for d in dashed)
    assert len(figure(at, "attack.perturbation")["data"]) == 4
    transfer = figure(at, "attack.transfer_fig")
    assert len(transfer["data"][0]["x"]) == 2 and len(transfer["data"][0]["y"]) == 3  # the last row: noise
    assert transfer["data"][0]["y"][-1] == "noise (Gaussian, same norm)"
    assert np.asarray(transfer["data"][0]["text"]).shape == (3, 2)
    labels = {d.label for d in at.download_button}
    assert {"Attack table (.csv)", "Transfer table (.csv)", "e (.npy)", "perturbed (.npy)", "perturbed (.png)"} <= labels

    # The shown eps can be changed without running anything again.
    at.select_slider(key="attack.show_eps").set_value(0.02).run()
    assert not at.exception
    assert "eps 0.02" in " ".join(m.value for m in at.markdown)

    # The page's perturbation, applied by the library to the same slice, gives the page's numbers.
    run = at.session_state[attack_run.RUN.handoff.key]
    problem = _library_problem(run.request.mask)
    for result, (_, row) in zip(run.results, table.iterrows()):
        again = run_method(problem.perturbed(e=result.e), result.instance)
        assert again.metrics["ssim"] == pytest.approx(row["SSIM perturbed"], abs=1e-4)
        assert run_method(problem, result.instance).metrics["ssim"] == pytest.approx(row["SSIM clean"], abs=1e-6)


def test_attack_leaves_the_shared_clean_results_untouched():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/reconstruct.py").run()
    at.button(key="reconstruct.run").click().run()
    request = at.session_state[state.REQUEST]
    from explorer.ui import cache  # noqa: PLC0415

    before = {i.label: cache.cached_result(request.source, request.plane, request.index, request.mask, i)
              for i in request.methods}
    images = {k: r.image.copy() for k, r in before.items()}
    at.switch_page("pages/attack.py").run()
    at.number_input(key="attack.steps").set_value(4).run()  # a short search: the point is the shared cache
    at.button(key="attack.run").click().run()
    assert not at.exception and not _errors(at)
    for inst in request.methods:
        after = cache.cached_result(request.source, request.plane, request.index, request.mask, inst)
        np.testing.assert_array_equal(after.image, images[inst.label])
        assert after.metrics == before[inst.label].metrics
    run = at.session_state[attack_run.RUN.handoff.key]
    for result in run.results:  # the attack started from those very clean results
        np.testing.assert_array_equal(result.clean.image, images[result.instance.label])


@pytest.mark.parametrize("widget, value, message", [
    ("attack.eps", "abc", "give one or more numbers"),
    ("attack.eps", "-0.1", "eps must be in [0, 10]"),
    ("attack.region", "1,2", "give row0,col0,row1,col1"),
    ("attack.region", "0,0,500,500", "lies outside the 64x64 image"),
])
def test_bad_settings_are_one_line_errors(widget, value, message):
    at = _attack_page()
    at.text_input(key=widget).set_value(value).run()
    assert not at.exception
    errors = _errors(at)
    assert len(errors) == 1 and message in errors[0] and "\n" not in errors[0], errors
    at.text_input(key=widget).set_value("0.08" if widget == "attack.eps" else "").run()
    assert not at.exception and not _errors(at)  # and the page recovers


def test_a_region_attack_and_the_joint_scheme_run_in_the_page():
    at = _attack_page()
    at.multiselect(key="attack.methods").set_value(["zero_filled", "convdecoder"]).run()
    at.checkbox(key="attack.confirm_long").check().run()  # the un-trained network takes minutes: confirmed
    at.number_input(key="attack.params.convdecoder.iterations").set_value(16).run()
    at.text_input(key="attack.region").set_value("20,20,40,40").run()
    at.number_input(key="attack.steps").set_value(8).run()
    at.button(key="attack.run").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table["Strategy"]) == ["gradient ascent", "3 random draws", "joint scheme", "3 random draws"]
    assert all(table["‖e‖/‖k‖"] <= 0.08 * (1 + 1e-5))
    assert all(math.isfinite(v) for v in table["SSIM perturbed"])
    assert viewer(at, "attack")[0]["settings"]["boxes"] == [[20, 20, 40, 40]]  # the box on every panel


def test_a_file_without_full_kspace_defaults_to_the_measured_budget(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[-1:1:48j, -1:1:48j]
    image = ((yy / 0.8) ** 2 + (xx / 0.6) ** 2 < 1).astype(np.float32)
    coils = np.stack([np.exp(-((yy - np.sin(a)) ** 2 + (xx - np.cos(a)) ** 2)) for a in (0, 2, 4)]).astype(np.complex64)
    k = fft2c(torch.from_numpy(coils * image)).numpy()[None]
    k = (k + 1e-3 * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))).astype(np.complex64)
    mask = np.zeros(48, bool)
    mask[::3] = True
    mask[20:28] = True
    write_volume(tmp_path / "test_file.h5", k * mask, mask=mask)
    assert rss(ifft2c(torch.from_numpy(k)), dim=1).shape[-1] == 48
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.session_state["src.kind"] = "dir"
    at.session_state["src.dir"] = str(tmp_path)
    at.run()
    at.session_state["src.file"] = "test_file.h5"
    at.switch_page("pages/attack.py").run()
    assert not at.exception
    assert at.selectbox(key="attack.budget").value == "measured"
    at.selectbox(key="attack.objective").set_value("target").run()
    assert any("no fully sampled reference" in e for e in _errors(at))
    at.selectbox(key="attack.objective").set_value("clean").run()
    at.multiselect(key="attack.methods").set_value(["zero_filled"]).run()
    at.button(key="attack.run").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    row, noise = at.dataframe[0].value.iloc[0], at.dataframe[0].value.iloc[1]
    assert row["‖e‖/‖k‖"] == pytest.approx(0.08, rel=1e-5) and float(row["Objective"]) > 0
    assert noise["Perturbation"] == "Gaussian noise, same norm" and noise["‖e‖/‖k‖"] == pytest.approx(0.08, rel=1e-5)


def test_realistic_corruptions_beside_the_attack():
    from explorer.ui.runs import realistic as realistic_run

    at = _attack_page()
    at.multiselect(key="attack.methods").set_value(["zero_filled", "sense"]).run()
    at.selectbox(key="attack.real.kind").set_value("motion").run()
    at.text_input(key="attack.real.levels.motion").set_value("x").run()
    assert any("levels" in e.value for e in at.error)  # one line, the page goes on
    assert [b for b in at.button if b.key == "attack.run"]
    at.text_input(key="attack.real.levels.motion").set_value("0,2").run()
    at.button(key="attack.realistic_run").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    run = at.session_state[realistic_run.RUN.handoff.key]
    table = at.dataframe[0].value  # the only table: no attack has run
    assert list(table["Level"]) == [0.0, 2.0, 0.0, 2.0] and table["‖e‖/‖k‖"][0] == 0.0 and table["‖e‖/‖k‖"][1] > 0
    assert abs(table["SSIM drop"][0]) < 1e-6  # no motion, no change
    assert len(run.rows) == 4
    header, _ = viewer(at, "attack.real")
    assert len(header["frames"][0]["labels"]) == 5  # the reference and four reconstructions

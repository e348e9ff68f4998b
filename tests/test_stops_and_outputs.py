"""Nothing overwritten silently (an --out folder holding a command's earlier outputs is refused unless --force) and
one Ctrl-C ends the whole multi-method command, keeping what was found so far."""

from __future__ import annotations

import json
import os
import signal

import pytest

from explorer.cli.main import main
from explorer.cli.outputs import check_output_file, refuse_earlier
from explorer.errors import ExplorerError

SAMPLE = "sample:knee,size=32,slices=2,coils=2"


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_refuse_earlier_names_an_earlier_output_and_force_allows(tmp_path):
    refuse_earlier(str(tmp_path / "new"), ("a.csv",), force=False)  # a folder not there yet
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "other.txt").write_text("x")
    refuse_earlier(str(tmp_path), ("b.csv", "*.npy"), force=False)  # other files do not count
    with pytest.raises(ExplorerError, match="already holds a.csv from an earlier run; add --force"):
        refuse_earlier(str(tmp_path), ("a.csv", "*.npy"), force=False)
    refuse_earlier(str(tmp_path), ("a.csv",), force=True)
    with pytest.raises(ExplorerError, match="is a folder"):
        check_output_file(str(tmp_path), False, "--csv")


@pytest.mark.parametrize("command, extra, written", [
    ("attack", ["--steps", "2"], "attack.csv"),
    ("features", ["--random", "1", "--size", "3"], "features.csv"),
    ("recon", [], "metrics.csv"),
    ("ttt", ["--method", "unet", "--steps", "2"], "ttt.csv"),
])
def test_a_second_run_into_the_same_folder_is_refused_unless_force(command, extra, written, tmp_path, capsys):
    out = tmp_path / "out"
    methods = [] if "--method" in extra else ["--method", "zero_filled"]
    argv = [command, "--data", SAMPLE, *methods, *extra, "--out", str(out)]
    assert main(argv) == 0
    first = (out / written).read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    assert "already holds" in _one_line(capsys)
    assert (out / written).read_bytes() == first  # untouched
    assert main([*argv, "--force"]) == 0


def test_sample_refuses_to_replace_its_files_unless_force(tmp_path, capsys):
    argv = ["sample", "--family", "knee", "--size", "32", "--slices", "1", "--coils", "2", "--out", str(tmp_path)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2 and "already holds" in _one_line(capsys)
    assert main([*argv, "--force"]) == 0


def test_one_ctrl_c_ends_the_whole_recon(monkeypatch, capsys):
    from explorer import engine  # the command imports run_method from here when it runs

    calls = []
    original = engine.run_method

    def interrupted(problem, instance, progress=None, **kw):
        calls.append(instance.label)
        if progress is not None:
            progress(0, 10, {})
            os.kill(os.getpid(), signal.SIGINT)
        return original(problem, instance, progress=progress, **kw)

    monkeypatch.setattr(engine, "run_method", interrupted)
    code = main(["recon", "--data", SAMPLE, "--method", "l1", "--method", "tv", "--set", "l1.iterations=50", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and calls == ["l1"] and out["not_run"] == ["tv"]


def test_one_ctrl_c_ends_the_whole_attack(monkeypatch, capsys):
    import explorer.robustness.attack as attack

    real, calls = attack.sweep, []

    def interrupted(problem, instance, eps, config, progress, clean):
        calls.append(instance.label)
        progress(0, 10, {})  # the loop is polling: from here Ctrl-C asks for a soft stop
        os.kill(os.getpid(), signal.SIGINT)
        return real(problem, instance, eps, config, progress, clean)

    monkeypatch.setattr(attack, "sweep", interrupted)
    code = main(["attack", "--data", SAMPLE, "--method", "zero_filled", "--method", "sense", "--steps", "5",
                 "--eps", "0.02,0.04", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and calls == ["zero_filled"]
    assert out["not_run"] == ["sense"]
    assert len(out["results"]) == 1 and out["results"][0]["stopped"]  # the budgets after the stop are not run


def test_a_stop_in_features_skips_the_methods_after_it():
    from explorer.data.sources import open_volume
    from explorer.engine import prepare
    from explorer.masks import MaskConfig
    from explorer.robustness.features import run_features
    from explorer.robustness.insertion import Feature

    problem = prepare(open_volume(SAMPLE).read_slice(0), MaskConfig(), "cpu")
    run = run_features(problem, (Feature(row=16, col=16, size=3),), ["l1", "tv"],
                       progress=lambda label, step, total, info: True)
    assert [r.instance for r in run.results] == ["l1"]  # stopped at once, its best so far kept
    assert run.failures == {"tv": "not run: stopped"}


def test_one_ctrl_c_ends_the_whole_ttt_after_its_references(monkeypatch, capsys):
    import explorer.robustness.ttt as ttt

    real, calls = ttt.test_time_train, []

    def interrupted(problem, instance, config, progress=None):
        calls.append(instance.label)
        progress(0, 10, {})  # the loop is polling: from here Ctrl-C asks for a soft stop
        os.kill(os.getpid(), signal.SIGINT)
        return real(problem, instance, config, progress)

    monkeypatch.setattr(ttt, "test_time_train", interrupted)
    code = main(["ttt", "--data", SAMPLE, "--method", "unet", "--method", "varnet", "--steps", "20",
                 "--reference-checkpoint", "brain", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and calls == ["unet"] and out["not_run"] == ["varnet"]
    (row,) = out["results"]
    assert row["stop_reason"] == "stopped" and row["steps"] < 20 and row["ssim_reference"] is not None


def test_ttt_refuses_a_bad_reference_before_any_training(monkeypatch, tmp_path, capsys):
    import pickle

    import explorer.robustness.ttt as ttt

    monkeypatch.setattr(ttt, "test_time_train", lambda *a, **k: pytest.fail("trained before the reference check"))
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps(os.system))
    code = main(["ttt", "--data", SAMPLE, "--method", "unet", "--reference-checkpoint", str(bad)])
    assert code == 2 and "refused" in _one_line(capsys)

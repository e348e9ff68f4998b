"""The model zoo: one call trains members of several sizes with snapshots, a rerun continues where it stopped,
and `shift --zoo` turns every checkpoint into a model of the scatter."""

import json

import pytest
import torch

from explorer.cli.main import main
from explorer.errors import ExplorerError
from explorer.recon import checkpoints as ckpts
from explorer.training.zoo import MANIFEST, ZooMember, ZooOptions, build_zoo, read_zoo
from tests.conftest import TINY_ARCH

MEMBERS = (ZooMember("u", "unet", TINY_ARCH["unet"], 4, 2), ZooMember("v", "varnet", TINY_ARCH["varnet"], 4, 1))


def _options(out, **kw):
    return ZooOptions(out=out, size=32, subjects=2, members=MEMBERS, snapshot_every=2, **kw)


def _weights(path):
    return ckpts.load_checkpoint(path).state_dict


def test_zoo_trains_every_member_with_snapshots_and_a_rerun_keeps_them(tmp_path):
    lines = []
    manifest = build_zoo(_options(tmp_path / "zoo"), log=lines.append)
    models = read_zoo(manifest.parent)
    assert [(m["label"], m["method"], m["steps"]) for m in models] == [
        ("u_step000002", "unet", 2), ("u", "unet", 4), ("v_step000002", "varnet", 2), ("v", "varnet", 4)]
    assert all(m["val_ssim"] is not None and 0 < m["val_ssim"] < 1 for m in models)
    assert len(list((tmp_path / "zoo" / "data" / "train").glob("*.h5"))) == 2
    assert not list((tmp_path / "zoo").glob("*.state.pt"))  # finished members keep no training state
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "zoo").glob("*.pt")}
    build_zoo(_options(tmp_path / "zoo"), log=lines.append)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "zoo").glob("*.pt")} == before
    assert "u: done earlier" in lines and "v: done earlier" in lines


def test_a_stopped_zoo_resumes_to_the_same_weights(tmp_path):
    build_zoo(_options(tmp_path / "once"), log=lambda line: None)
    stop_at_3 = lambda step, total, info: step == 3  # noqa: E731
    build_zoo(_options(tmp_path / "twice"), progress=stop_at_3, log=lambda line: None)
    assert [m["label"] for m in json.loads((tmp_path / "twice" / MANIFEST).read_text())["models"]] == []
    build_zoo(_options(tmp_path / "twice"), log=lambda line: None)
    for name in ("u.pt", "u_step000002.pt", "v.pt"):
        a, b = _weights(tmp_path / "once" / name), _weights(tmp_path / "twice" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_bad_zoo_inputs_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(ExplorerError, match="no readable zoo manifest"):
        read_zoo(tmp_path)
    with pytest.raises(ExplorerError, match="distinct names"):
        build_zoo(ZooOptions(out=tmp_path, members=(MEMBERS[0], MEMBERS[0])))
    with pytest.raises(ExplorerError, match="unknown brain sample dataset"):
        build_zoo(ZooOptions(out=tmp_path, family="brain", dataset="stanford"))
    for argv, message in ((["--members", "resnet"], "unknown zoo member 'resnet'"), (["--val", "x"], "--val needs --data"),
                          (["--steps", "0"], "--steps must be >= 1"), (["--loss", "mse"], "unknown loss")):
        assert main(["zoo", "--out", str(tmp_path / "z"), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["shift", "--id", "sample:knee", "--ood", "sample:brain", "--zoo", str(tmp_path)]) == 2
    assert "no readable zoo manifest" in capsys.readouterr().err
    assert main(["shift", "--id", "sample:knee", "--ood", "sample:brain"]) == 2
    assert "give at least one --method or --zoo" in capsys.readouterr().err


def test_zoo_cli_and_shift_with_the_zoo(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    zoo = tmp_path / "zoo"
    assert main(["zoo", "--out", str(zoo), "--size", "32", "--subjects", "1", "--members", "unet_c8", "--steps", "2",
                 "--snapshot-every", "1"]) == 0
    captured = capsys.readouterr()
    assert "unet_c8_step000001 " in captured.out and f"shift ... --zoo {zoo}" in captured.err
    source = "sample:knee,size=32,slices=2,coils=4"
    assert main(["shift", "--id", source, "--ood", source + ",dataset=stanford", "--zoo", str(zoo),
                 "--method", "zero_filled", "--json"]) == 0
    study = json.loads(capsys.readouterr().out)
    assert [m["label"] for m in study["models"]] == ["zero_filled", "unet_c8_step000001", "unet_c8"]
    assert all(0 < m["ssim_ood"] < 1 for m in study["models"])


def test_every_bad_zoo_manifest_is_one_line_and_escapes_reveal_nothing(tmp_path, capsys, tiny_checkpoints):
    from tests import corpus  # noqa: PLC0415

    outside = tmp_path / "secret" / "private.pt"
    outside.parent.mkdir()
    outside.write_bytes(tiny_checkpoints["unet"].read_bytes())
    cases = corpus.zoo_manifests(tmp_path / "zoos", tiny_checkpoints["unet"], outside)
    messages = {}
    for case in cases:
        with pytest.raises(ExplorerError) as err:
            read_zoo(case.path)
        assert "\n" not in str(err.value), case.name
        code = main(["shift", "--id", "sample:knee", "--ood", "sample:brain", "--zoo", str(case.path)])
        out, text = capsys.readouterr()
        assert code == 2 and text.startswith("error: ") and text.count("\n") == 1 and "Traceback" not in text, (case, text)
        messages[case.name] = str(err.value)
    escapes = ("absolute checkpoint outside", "absolute missing outside", "dotdot escape", "symlink escape")
    assert all("must lie inside the zoo folder" in messages[name] for name in escapes), messages
    assert "private.pt" not in messages["symlink escape"]  # the link's target is never named
    existing, missing = messages["absolute checkpoint outside"], messages["absolute missing outside"]
    assert existing.replace("private.pt", "X").split(": ", 1)[1] == missing.replace("no-such.pt", "X").split(": ", 1)[1]


@pytest.mark.parametrize("make", ["file", "under a file", "/proc"])
def test_zoo_out_that_cannot_hold_a_zoo_is_refused_before_training(make, tmp_path, capsys):
    out = {"file": tmp_path / "z", "under a file": tmp_path / "z" / "zoo", "/proc": "/proc/explorer-zoo"}[make]
    (tmp_path / "z").write_text("not a folder")
    assert main(["zoo", "--out", str(out), "--size", "32", "--subjects", "1", "--members", "unet_c8",
                 "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("is a file, not a folder" in err or "cannot write the zoo folder" in err), err
    assert not list(tmp_path.glob("**/*.h5"))  # refused before any data was written

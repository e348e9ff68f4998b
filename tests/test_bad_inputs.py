"""The generated bad-input corpus (tests/corpus.py) through the CLI: a one-line error (exit 2) or a result
(exit 0), never a traceback, never exit 1 (which is kept for true internal bugs), and no pickled code run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from explorer.cli.main import main
from tests import corpus
from tests.conftest import multicoil_kspace


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    return corpus.volumes(tmp_path_factory.mktemp("bad_volumes"))


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory, tiny_checkpoints):
    folder = tmp_path_factory.mktemp("bad_checkpoints")
    return corpus.checkpoints(folder, tiny_checkpoints, folder / "PWNED"), folder / "PWNED"


def _one_line_or_result(capsys, code: int, case: corpus.Case) -> str:
    out, err = capsys.readouterr()
    assert code in (0, 2), f"{case.name}: exit {code}: {err}"
    assert "Traceback" not in err and "unexpected" not in err, f"{case.name}: {err}"
    if code == 2:
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, f"{case.name}: {err!r}"
    else:
        assert not case.must_fail, f"{case.name} was accepted: {out[:200]}"
    return err


def test_the_corpus_is_large_and_varied(volumes, bad_checkpoints):
    assert len(volumes) >= 30 and len(bad_checkpoints[0]) >= 10
    assert len({c.path.name for c in volumes}) == len(volumes)


def test_every_bad_volume_gives_one_line_or_a_result_in_recon(volumes, capsys, monkeypatch):
    monkeypatch.setenv("EXPLORER_MAX_SLICE_MB", "64")
    for case in volumes:
        code = main(["recon", "--data", str(case.path), "--method", "zero_filled", "--method", "sense", "--json"])
        _one_line_or_result(capsys, code, case)


def test_every_bad_volume_gives_one_line_or_a_result_in_files_and_evaluate(volumes, capsys, tmp_path):
    assert main(["files", "--data-dir", str(volumes[0].path.parent)]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err
    for case in volumes:
        folder = tmp_path / case.path.stem
        folder.mkdir()
        (folder / case.path.name).symlink_to(case.path)
        code = main(["evaluate", "--data", str(folder), "--method", "zero_filled", "--json"])
        _one_line_or_result(capsys, code, case)


def test_every_bad_checkpoint_is_refused_and_no_pickled_code_runs(bad_checkpoints, capsys, tmp_path):
    cases, sentinel = bad_checkpoints
    data = tmp_path / "small.h5"
    from explorer.data.fastmri import write_volume

    write_volume(data, multicoil_kspace(slices=1, coils=2, h=32, w=32))
    for case in cases:
        for kind in ("unet", "varnet"):
            code = main(["recon", "--data", str(data), "--method", kind, "--set", f"{kind}.checkpoint={case.path}"])
            err = _one_line_or_result(capsys, code, case)
            assert code == 2 and case.path.name in err, f"{case.name}: {err}"
    assert not sentinel.exists()


def test_a_subprocess_sees_the_same_one_line(volumes):
    case = next(c for c in volumes if c.name == "16x16384x16384 declared")
    proc = subprocess.run([sys.executable, "-m", "explorer", "recon", "--data", str(case.path), "--method", "zero_filled"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "EXPLORER_MAX_SLICE_MB" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

"""Trained networks say when they meet data unlike their training data (anatomy, synthetic vs real, sample
variant, mask type, acceleration), from their model cards; the CLI prints the notes."""

import json

import pytest

from explorer.cli.main import main
from explorer.data.fastmri import FastMRIVolume, write_volume
from explorer.data.sample import SampleSpec, sample_path
from explorer.data.sample_sources import parse_source
from explorer.engine import MethodInstance, prepare, run_method
from explorer.masks import MaskConfig
from explorer.recon import model_store
from explorer.recon.checkpoints import random_checkpoint
from tests.conftest import TINY_ARCH, multicoil_kspace

CARD = {"data": {"anatomy": "knee", "source": "embedded sample (synthetic)",
                 "samples": [{"family": "knee", "contrast": "pd", "dataset": "fastmri", "fov": 1.0}]},
        "mask": {"type": "random", "acceleration": 4.0, "center_fraction": 0.08}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return str(random_checkpoint("unet", TINY_ARCH["unet"], tmp_path_factory.mktemp("ck") / "u.pt", card=CARD))


def _notes(checkpoint, source_or_slice, mask=MaskConfig("random", 4, 0.16, seed=0)):
    sl = source_or_slice if not isinstance(source_or_slice, str) else \
        FastMRIVolume(sample_path(parse_source(source_or_slice))).read_slice(0)
    return model_store.shift_notes("unet", checkpoint, prepare(sl, mask, "cpu"))


def test_notes_name_each_difference(checkpoint, tmp_path):
    assert _notes(checkpoint, "sample:knee,size=64,slices=1") == []  # its own training distribution
    brain = _notes(checkpoint, "sample:brain,size=64,slices=1")
    assert len(brain) == 1 and brain[0].startswith("distribution shift (trained on knee, this is brain): ")
    assert "test-time training" in brain[0] and "python -m explorer ttt" in brain[0]
    variant = _notes(checkpoint, "sample:knee,size=64,slices=1,contrast=pdfs,dataset=stanford")
    assert "trained on knee pd (fastmri), this is knee pdfs (stanford)" in variant[0]
    masks = _notes(checkpoint, "sample:knee,size=64,slices=1", MaskConfig("equispaced", 8, 0.08, seed=0))
    assert "trained with random masks, this is equispaced; trained at 4x, this is 8x" in masks[0]
    real = write_volume(tmp_path / "scan.h5", multicoil_kspace(1, 4, 64, 64), None, attrs={"acquisition": "CORPD_FBK"})
    assert "trained on the synthetic embedded sample, this is a real scan" in _notes(
        checkpoint, FastMRIVolume(real).read_slice(0))[0]


def test_results_carry_the_notes_and_the_cli_prints_them(checkpoint, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    sl = FastMRIVolume(sample_path(SampleSpec(family="brain", size=64, slices=1))).read_slice(0)
    result = run_method(prepare(sl, MaskConfig("random", 4, 0.16, seed=0), "cpu"),
                        MethodInstance.of("unet", {"checkpoint": checkpoint}))
    assert result.notes and result.notes[0].startswith("distribution shift (trained on knee, this is brain)")
    args = ["recon", "--data", "sample:brain,size=64,slices=1", "--center-fraction", "0.16", "--method", "unet",
            "--set", f"unet.checkpoint={checkpoint}", "--method", "sense"]
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert rows[0]["notes"] == list(result.notes)
    assert rows[1]["notes"] == ["1 ESPIRiT map set (auto: second eigenvalue >= 0.95 over 0.0% of the object)"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "  unet: distribution shift (trained on knee, this is brain)" in out and "  sense: 1 ESPIRiT map set" in out


def test_evaluate_collects_the_notes_once_per_instance(checkpoint, capsys, tmp_path):
    from explorer.data.sample import write_sample

    write_sample(tmp_path / "brain", SampleSpec(family="brain", size=64, slices=2, coils=4))
    args = ["evaluate", "--data", str(tmp_path / "brain"), "--center-fraction", "0.16", "--method", "unet",
            "--set", f"unet.checkpoint={checkpoint}", "--method", "zero_filled"]
    assert main([*args, "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert len(notes["unet"]) == 1 and notes["unet"][0].startswith("distribution shift (trained on knee, this is brain)")
    assert notes["zero_filled"] == []
    assert main([*args, "--out", str(tmp_path / "t.parquet")]) == 0
    assert capsys.readouterr().out.count("  unet: distribution shift") == 1
    from explorer.engine.table import read_records

    assert all(json.loads(r.notes) == notes["unet"] for r in read_records(tmp_path / "t.parquet") if r.label == "unet")

"""Model-card annotations (explorer.training.cards, ``python -m explorer card``): provenance merged into the card in
the checkpoint and its .json, weights untouched, what training recorded protected, bad inputs one line."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.cli.main import main
from explorer.recon.checkpoints import build_model, load_checkpoint, save_checkpoint
from explorer.recon.networks import get_network
from explorer.training.cards import annotate

NOTE = {"provenance": {"data": [{"repo": "owner/name", "commit": "0" * 40, "terms": "non-commercial research"}],
                       "split": {"train": "1-480", "val": "481-500"}}}


@pytest.fixture()
def ckpt(tmp_path):
    arch = get_network("unet").tiny
    model = build_model("unet", arch)
    path = save_checkpoint(tmp_path / "net.pt", model.state_dict(), "unet", arch,
                           card={"steps": 7, "val_ssim": 0.5, "data": {"anatomy": "brain"}}, half=True)
    return path, model.state_dict()


def test_note_lands_in_both_cards_and_weights_stay(ckpt):
    path, _ = ckpt
    before = torch.load(path, weights_only=True)["state_dict"]
    card = annotate(path, NOTE)
    assert card["provenance"] == NOTE["provenance"] and card["steps"] == 7
    assert load_checkpoint(path).card["provenance"] == NOTE["provenance"]
    assert json.loads(path.with_suffix(".json").read_text())["provenance"] == NOTE["provenance"]
    after = torch.load(path, weights_only=True)["state_dict"]
    assert before.keys() == after.keys()
    assert all(before[k].dtype == after[k].dtype and torch.equal(before[k], after[k]) for k in before)
    # a second note adds to a nested object key by key
    card = annotate(path, {"provenance": {"hardware": "2 CPU cores"}})
    assert card["provenance"]["hardware"] == "2 CPU cores" and card["provenance"]["split"] == NOTE["provenance"]["split"]


def test_what_training_recorded_cannot_be_replaced(ckpt):
    path, _ = ckpt
    raw = path.read_bytes()
    with pytest.raises(Exception, match="val_ssim"):
        annotate(path, {"val_ssim": 0.99})
    assert path.read_bytes() == raw  # nothing written


@pytest.mark.parametrize("case", ["missing", "state dict", "not json", "not an object", "missing key"])
def test_bad_inputs_one_line(capsys, tmp_path, ckpt, case):
    path, state = ckpt
    note = tmp_path / "note.json"
    note.write_text(json.dumps(NOTE))
    argv = ["card", str(path), "--merge", str(note)]
    if case == "missing":
        argv[1] = str(tmp_path / "nope.pt")
    elif case == "state dict":
        plain = tmp_path / "plain.pt"
        torch.save(state, plain)
        argv[1] = str(plain)
    elif case == "not json":
        note.write_text("{oops")
    elif case == "not an object":
        note.write_text("[1, 2]")
    else:
        argv += ["--key", "unet_brain-real"]
    raw = path.read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert path.read_bytes() == raw


def test_cli_merges_one_key_of_a_shared_note(capsys, tmp_path, ckpt):
    path, _ = ckpt
    note = tmp_path / "note.json"
    note.write_text(json.dumps({"net": NOTE, "other": {"x": 1}}))
    assert main(["card", str(path), "--merge", str(note), "--key", "net"]) == 0
    assert load_checkpoint(path).card["provenance"]["split"]["train"] == "1-480"
    assert "x" not in load_checkpoint(path).card
    assert main(["card", str(path)]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["provenance"]["data"][0]["repo"] == "owner/name"

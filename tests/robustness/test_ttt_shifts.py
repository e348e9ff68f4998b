"""The TTT paper's four shifts as the product defines them (explorer.robustness.ttt_shifts)."""

from __future__ import annotations

import pytest

from explorer.data.sample_sources import parse_source
from explorer.recon.checkpoints import ANATOMIES
from explorer.robustness.ttt_shifts import SHIFTS, get_shift


def test_four_shifts_with_the_papers_windows_and_valid_samples():
    assert [s.name for s in SHIFTS] == ["anatomy", "dataset", "contrast", "acceleration"]  # the paper's order
    for shift in SHIFTS:
        spec = parse_source(shift.source)  # a valid sample source
        assert spec.family == shift.family
        assert shift.checkpoint in ANATOMIES  # the network adapted is a shipped one
        assert shift.reference != shift.checkpoint or shift.acceleration != 4  # Q differs from P
    # seed-code-facts: W = 20 for the dataset shift (both networks) and the contrast shift's U-net, else 100
    assert [(s.window_for("unet"), s.window_for("varnet")) for s in SHIFTS] == [(100, 100), (20, 20), (20, 100),
                                                                               (100, 100)]
    assert get_shift("dataset").source == "sample:knee,dataset=stanford"
    assert get_shift("contrast").source == "sample:brain,contrast=t1"
    assert get_shift("acceleration").acceleration == 2 and get_shift("acceleration").source == "sample:knee"
    with pytest.raises(KeyError):
        get_shift("modality")

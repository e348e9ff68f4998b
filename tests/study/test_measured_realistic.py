"""The realistic-corruption measurement's table from the ``realistic`` command's real outputs on a small volume."""

from __future__ import annotations

import contextlib
import io
import json

from explorer.cli.main import main
from explorer.data.fastmri import write_volume
from explorer.study.measured_realistic import LEVELS, realistic_parts, render_realistic
from tests.conftest import multicoil_kspace


def test_table_from_the_commands_outputs(tmp_path):
    path = write_volume(tmp_path / "m.h5", multicoil_kspace(slices=1, coils=2, h=48, w=48))
    outputs = []
    for kind, levels in (("noise", "30,10"), ("motion", "2")):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["realistic", "--data", str(path), "--method", "zero_filled", "--kind", kind, "--levels",
                         levels, "--json"]) == 0
        outputs.append((f"knee {kind}", json.loads(out.getvalue())))
    text = render_realistic(outputs)
    head = text.splitlines()[0]
    assert head.count("knee:") == 3 and "SNR 30 dB" in head and "2 deg + 2 px" in head
    rows = {r["level"]: r for r in outputs[0][1]["rows"]}
    zero = next(line for line in text.splitlines() if line.startswith("| Zero-filled |"))
    assert zero.split(" | ")[1] == f"{rows[30.0]['ssim_drop']:.3f}"
    assert f"(‖e‖/‖k‖ {rows[10.0]['ratio']:.3f})" in head
    assert "| U-net | - | - | - |" in text  # a method not run: dashes


def test_parts_cover_both_samples_and_every_kind():
    labels = [p.label for p in realistic_parts()]
    assert labels == [f"{a} {k}" for a in ("knee", "brain") for k in LEVELS]

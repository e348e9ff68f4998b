"""The four TTT shifts' gap measurement: its commands, and its table from the real ``evaluate`` output."""

from __future__ import annotations

import json

from explorer.cli.main import main
from explorer.recon.checkpoints import random_checkpoint
from explorer.robustness.ttt_shifts import SHIFTS, get_shift
from explorer.study import measured
from explorer.study.measured_gaps import PAPERS, SUBJECTS, checkpoint_file, kinds_with_both, parts, render_gaps


def test_commands_cover_every_shift_on_its_held_back_subjects():
    found = measured.get("ttt-shift-gaps")
    assert found.parts == parts()
    by_shift = {s.name: [p for p in found.parts if p.label == s.name] for s in SHIFTS}
    for shift in SHIFTS:
        argvs = [p.argv for p in by_shift[shift.name]]
        assert len(argvs) == len(SUBJECTS)
        for argv, subject in zip(argvs, SUBJECTS):
            data = argv[argv.index("--data") + 1]
            assert data.startswith(f"sample:{shift.family},seed={subject},") and shift.variant in data
            assert argv[argv.index("--acceleration") + 1] == f"{shift.acceleration:g}"
        assert "unet" in kinds_with_both(shift)  # every shift's U-net pair is shipped
        for kind in kinds_with_both(shift):
            assert f"{kind}_Q.checkpoint={checkpoint_file(kind, shift.reference)}" in argvs[0]
    assert get_shift("acceleration").acceleration == 2 and get_shift("dataset").window == 20
    assert set(found.files) >= {checkpoint_file("unet", s.reference) for s in SHIFTS}


def test_table_pools_the_subjects_and_states_the_gap(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    p = random_checkpoint("unet", {"chans": 4, "num_pool_layers": 1}, tmp_path / "p.pt", seed=1)
    q = random_checkpoint("unet", {"chans": 4, "num_pool_layers": 1}, tmp_path / "q.pt", seed=2)
    outputs = []
    for subject, slices in ((201, 2), (202, 1)):
        argv = ["evaluate", "--data", f"sample:knee,size=32,coils=2,seed={subject},slices={slices},dataset=stanford",
                "--method", "zero_filled", "--method", "l1", "--method", "tv", "--method", "unet_P=unet", "--set",
                f"unet_P.checkpoint={p}", "--method", "unet_Q=unet", "--set", f"unet_Q.checkpoint={q}", "--json"]
        assert main(argv) == 0
        outputs.append(("dataset", json.loads(capsys.readouterr().out)))
    text = render_gaps(outputs)
    mean = {}
    for label in ("zero_filled", "l1", "tv", "unet_P", "unet_Q"):
        rows = [r for _, d in outputs for r in d["results"] if r["label"] == label]
        mean[label] = sum(r["ssim"] * r["slices"] for r in rows) / sum(r["slices"] for r in rows)
    row = next(line for line in text.splitlines() if line.startswith("| dataset |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "`sample:knee,dataset=stanford` at 4x (3)"
    assert cells[3:8] == [f"{mean[m]:.3f}" for m in ("zero_filled", "l1", "tv", "unet_P", "unet_Q")]
    assert cells[8] == f"**{mean['unet_Q'] - mean['unet_P']:+.3f}**"
    a, b = PAPERS[("dataset", "unet")]
    assert cells[9] == f"{b - a:+.3f} ({a:.3f} -> {b:.3f})"
    assert "| anatomy |" not in text  # a shift without output has no row

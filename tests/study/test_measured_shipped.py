"""The shipped-networks measurement: its commands, and its table from the real ``evaluate`` output."""

from __future__ import annotations

import json

import numpy as np

from explorer.cli.main import main
from explorer.study import measured
from explorer.study.measured_shipped import ANATOMIES, SUBJECTS, parts, render_shipped


def test_commands_score_each_anatomy_with_its_own_checkpoints():
    found = measured.get("shipped-networks")
    assert found.parts == parts() and len(parts()) == len(ANATOMIES) * len(SUBJECTS)
    for part in parts():
        argv = part.argv
        assert argv[argv.index("--data") + 1].startswith(f"sample:{part.label},seed=")
        assert f"unet.checkpoint={part.label}" in argv and f"varnet.checkpoint={part.label}" in argv


def test_table_from_two_subjects(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    outputs = []
    for subject in (201, 202):
        argv = ["evaluate", "--data", f"sample:knee,size=32,coils=2,seed={subject},slices=1", "--method", "zero_filled",
                "--method", "tv", "--method", "unet=unet", "--set", "unet.checkpoint=knee", "--json"]
        assert main(argv) == 0
        outputs.append(("knee", json.loads(capsys.readouterr().out)))
    text = render_shipped(outputs)
    ssim = {label: [r["ssim"] for _, d in outputs for r in d["results"] if r["label"] == label]
            for label in ("zero_filled", "tv", "unet")}
    best = max(ssim, key=lambda k: np.mean(ssim[k]))
    for label, values in ssim.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {label}"))
        knee, brain = [c.strip() for c in row.strip("|").split("|")[1:]]
        assert knee.strip("*").startswith(f"{np.mean(values):.3f} ± {np.std(values):.3f} (") and knee.endswith(", 2)" + ("**" if label == best else ""))
        assert brain == "-"
    assert "| l1 | - | - |" in text

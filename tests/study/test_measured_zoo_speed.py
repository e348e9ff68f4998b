"""The shift-zoo and attack-speed measurements: their tables drawn from the real commands' output at tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from explorer.study import measured
from explorer.study.measured_speed import RATIO_TARGET, render_speed
from explorer.study.measured_zoo import MODELS, SHIFTS, parts, render_zoo

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], cache: Path) -> dict:
    run = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "EXPLORER_CACHE_DIR": str(cache)})
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_both_are_registered_with_their_commands():
    zoo = measured.get("shift-zoo")
    assert [p.argv[0] for p in zoo.parts] == ["zoo", "shift", "shift"]
    assert zoo.parts == parts()
    shift_args = zoo.parts[1].argv
    # every family of the papers is there, the un-trained one included, and the zoo joins the scatter
    assert {m for _, m, _ in MODELS} >= {"zero_filled", "sense", "l1", "tv", "convdecoder", "unet", "varnet"}
    assert "--zoo" in shift_args and shift_args[shift_args.index("--ood") + 1] == SHIFTS[0][1]
    speed = measured.get("attack-speed")
    assert speed.scripts() == ("bench/bench_attack.py",)
    assert "explorer.robustness.attack" in speed.entries()  # the script's imports are hashed


def test_speed_table_from_the_benchmarks_json(tmp_path):
    doc = _run(["bench/bench_attack.py", "--smoke", "--json"], tmp_path)
    assert [r["label"] for r in doc["rows"]] == ["zero_filled", "unet"]
    text = render_speed([("bench", doc)])
    lines = text.splitlines()
    assert len(lines) == 2 + len(doc["rows"]) + 2
    for line, row in zip(lines[2:], doc["rows"]):
        assert line.startswith(f"| {row['label']} | {row['strategy']} |")
        over = row["ratio"] > RATIO_TARGET
        assert f"{row['ratio']:.2f}x" in line and ("(over)" in line) == over
    assert "2-step attack" in lines[0] and "64x64" in text


def test_zoo_table_from_a_tiny_zoo_and_the_shift_commands(tmp_path):
    zoo = _run(["-m", "explorer", "zoo", "--out", str(tmp_path / "zoo"), "--size", "64", "--subjects", "2",
                "--members", "unet_c8", "--steps", "2", "--snapshot-every", "1", "--json"], tmp_path)
    assert [m["label"] for m in zoo["models"]] == ["unet_c8_step000001", "unet_c8"]
    models = ["--method", "zero_filled", "--method", "sense", "--method", "a=l1", "--set", "a.lam=0.002",
              "--method", "b=l1", "--set", "b.lam=0.02", "--method", "c=tv"]
    outputs = [("zoo", zoo)]
    for name, ood in SHIFTS:
        doc = _run(["-m", "explorer", "shift", "--id", "sample:knee,size=64", "--ood", f"{ood},size=64", *models,
                    "--zoo", str(tmp_path / "zoo"), "--max-slices", "1", "--json"], tmp_path)
        assert len(doc["models"]) == 7
        outputs.append((name, doc))
    text = render_zoo(outputs)
    for name, doc in outputs[1:]:
        x = np.array([r["ssim_id"] for r in doc["models"]])
        y = np.array([r["ssim_ood"] for r in doc["models"]])
        slope, r = np.polyfit(x, y, 1)[0], np.corrcoef(x, y)[0, 1]
        assert f"| {name} | **all** | 7 | | | **slope {slope:.2f}, r = {r:+.2f}** |" in text
        sparse = [row for row in doc["models"] if row["family"] == "sparse"]
        assert f"| {name} | sparse | 3 |" in text and len(sparse) == 3
        trained = [row for row in doc["models"] if row["family"] == "trained"]
        assert f"| {name} | trained | 2 | " in text and "2 models: no fit" in text
        for row in trained:
            assert row["label"].startswith("unet_c8")
    for label in ("zero_filled", "a", "unet_c8_step000001"):
        assert f"| {label} | " in text
    assert "2 checkpoints" in text and "supervised loss" in text

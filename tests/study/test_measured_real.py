"""The real-brain measurements' tables (explorer.study.measured_real) from hand-made command outputs: the best SSIM
ranked only among methods scored on every slice, the margins of the real-anatomy networks over l1/TV, and TTT rows."""

from __future__ import annotations

from explorer.study.measured_real import measured_parts, real_parts, render_measured, render_real


def _row(label, ssim, psnr=30.0):
    return {"label": label, "ssim": ssim, "ssim_std": 0.01, "psnr": psnr}


def test_real_table_ranks_full_rows_and_states_margins():
    full = {"slices": [["a.h5", i] for i in range(31)],
            "results": [_row("zero_filled", 0.6), _row("l1", 0.85), _row("tv", 0.84), _row("unet_real", 0.80)]}
    few = {"slices": [["a.h5", i] for i in range(6)], "results": [_row("convdecoder", 0.95)]}
    text = render_real([("sc 4x", full), ("sc 4x", few)])
    assert "| l1-wavelet | - | - | **0.850 ± 0.010 (30.00)** |" in text  # the ConvDecoder's 0.95 on 6 slices not ranked
    assert "0.950 ± 0.010 (30.00)" in text and "**0.950" not in text
    assert "U-net sc 4x: -0.050" in text and "Slices per method: 6 or 31" in text


def test_measured_table_and_ttt_rows():
    ev = {"slices": [["espirit8_0001.h5", 0]], "results": [_row("l1", 0.9), _row("unet_real", 0.7)]}
    ttt = {"slice": 0, "results": [{"label": "unet_real", "ssim_before": 0.7, "ssim_after": 0.75, "steps": 40,
                                    "stop_reason": "window"}]}
    text = render_measured([("espirit8_0001", ev), ("espirit8_0001", ttt)])
    assert "| l1-wavelet | 0.900 (30.00) | 0.900 |" in text
    assert "| U-net brain-real | 0.700 -> 0.750 (40, window) |" in text
    assert "| VarNet brain-real | - |" in text


def test_parts_name_the_checkpoints_they_measure():
    argv = [a for p in real_parts() + measured_parts() for a in p.argv]
    assert "unet_real.checkpoint=assets/checkpoints/unet_brain-real.pt" in argv
    assert "unet_real.checkpoint=assets/checkpoints/unet_brain-real-sc.pt" in argv
    assert sum(a == "ttt" for a in argv) == 6  # two networks x three measured slices

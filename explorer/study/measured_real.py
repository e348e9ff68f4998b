"""The real-anatomy test set (issue 26): every method on 31 real brain slices that no network trained on.

The data are public GitHub files turned into fastMRI-layout volumes by ``python -m explorer dataset build`` (README
"Real brain data" gives the commands; nothing is committed): SIAT-500 slices 1-480 train and 481-500 validate the
``brain-real`` networks, the 31 EDAEPRec slices test them, single-coil (k = F x) and semi-real multi-coil (the image
times ESPIRiT maps of the 8-coil espirit-matlab-examples slice, 40 dB complex noise). The table: SSIM (PSNR) per
method at 4x and 8x (random masks, centre 0.08 / 0.04, seed 0 + slice number), fastMRI's per-slice SSIM.
"""

from __future__ import annotations

from explorer.study.measured import METHOD_CODE, METHOD_FILES, _groups, register
from explorer.study.results import Measurement, Part

#: Where ``dataset build`` writes the volumes (README "Real brain data"), relative to the checkout.
REAL_DATA = "data/real-brain"
#: The real-anatomy checkpoints, per setting: (network kind, file).
REAL_NETWORKS = {"mc": (("unet", "assets/checkpoints/unet_brain-real.pt"),
                        ("varnet", "assets/checkpoints/varnet_brain-real.pt")),
                 "sc": (("unet", "assets/checkpoints/unet_brain-real-sc.pt"),)}
#: The networks trained on the synthetic brain phantoms (the shipped ``brain`` checkpoints), per setting.
SYNTHETIC_NETWORKS = {"mc": ("unet", "varnet"), "sc": ("unet",)}
#: Slices the ConvDecoder runs on (evenly spread over the 31; about 40 s each on 2 CPU cores).
CONVDECODER_SLICES = 6
SETTINGS = {"mc": "multi-coil semi-real (8 coils)", "sc": "single-coil"}
ACCELERATIONS = (4, 8)
#: Rows of the table: (label, display name).
ROWS = (("zero_filled", "Zero-filled"), ("sense", "SENSE (CG)"), ("l1", "l1-wavelet"), ("tv", "TV"),
        ("convdecoder", f"ConvDecoder (un-trained; {CONVDECODER_SLICES} of the slices)"),
        ("unet_real", "U-net brain-real"), ("varnet_real", "VarNet brain-real"),
        ("unet_synthetic", "U-net brain (synthetic phantoms)"), ("varnet_synthetic", "VarNet brain (synthetic phantoms)"))


def _column(setting: str, acceleration: int) -> str:
    return f"{setting} {acceleration}x"


def real_parts() -> tuple[Part, ...]:
    """Per setting and acceleration: one ``evaluate`` of every method on all 31 test slices, one of the ConvDecoder on
    :data:`CONVDECODER_SLICES` of them."""
    parts = []
    for setting in SETTINGS:
        data = f"{REAL_DATA}/{setting}/test"
        methods = ["--method", "zero_filled"] + (["--method", "sense"] if setting == "mc" else []) + \
                  ["--method", "l1", "--method", "tv"]
        for kind, path in REAL_NETWORKS[setting]:
            methods += ["--method", f"{kind}_real={kind}", "--set", f"{kind}_real.checkpoint={path}"]
        for kind in SYNTHETIC_NETWORKS[setting]:
            methods += ["--method", f"{kind}_synthetic={kind}", "--set", f"{kind}_synthetic.checkpoint=brain"]
        for acc in ACCELERATIONS:
            mask = ("--mask", "random", "--acceleration", str(acc), "--seed", "0")
            parts.append(Part(_column(setting, acc), ("evaluate", "--data", data, *mask, *methods, "--json")))
            parts.append(Part(_column(setting, acc), ("evaluate", "--data", data, *mask, "--method", "convdecoder",
                                                      "--max-slices", str(CONVDECODER_SLICES), "--json")))
    return tuple(parts)


def render_real(outputs: list[tuple[str, dict]]) -> str:
    """SSIM ± sd (PSNR dB) per method and column; the best SSIM of a column in bold; then, per column, the
    real-anatomy networks' margin over the better of l1 and TV."""
    grouped = _groups(outputs)
    columns = [_column(s, a) for s in SETTINGS for a in ACCELERATIONS]
    cells: dict[str, dict[str, dict]] = {c: {} for c in columns}
    slices: dict[str, dict[str, int]] = {c: {} for c in columns}
    for column, docs in grouped.items():
        for doc in docs:
            for row in doc["results"]:
                cells[column][row["label"]] = row
                slices[column][row["label"]] = len(doc["slices"])
    head = " | ".join(f"{SETTINGS[c.split()[0]]} {c.split()[1]}" for c in columns)
    lines = [f"| method | {head} |", "|---|" + "---|" * len(columns)]
    for label, name in ROWS:
        if not any(label in cells[c] for c in columns):
            continue
        shown = []
        for c in columns:
            row = cells[c].get(label)
            full = max(slices[c].values(), default=0)  # rows on fewer slices (the ConvDecoder) are not ranked
            best = max((r["ssim"] for key, r in cells[c].items() if slices[c][key] == full), default=None)
            text = "-" if row is None else f"{row['ssim']:.3f} ± {row['ssim_std']:.3f} ({row['psnr']:.2f})"
            shown.append(f"**{text}**" if row is not None and row["ssim"] == best else text)
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    margins = []
    for c in columns:
        sparse = max((cells[c][k]["ssim"] for k in ("l1", "tv") if k in cells[c]), default=None)
        for key in ("unet_real", "varnet_real"):
            if key in cells[c] and sparse is not None:
                margins.append(f"{dict(ROWS)[key].split(' ')[0]} {c}: {cells[c][key]['ssim'] - sparse:+.3f}")
    counts = sorted({n for c in columns for n in slices[c].values()})
    return "\n".join(lines) + (
        f"\n\nSSIM ± sd over slices (PSNR in dB); best of each column in bold among the methods scored on every slice. "
        f"Slices per method: {' or '.join(map(str, counts))}. Real-anatomy network minus the better of "
        f"l1 and TV (SSIM): {'; '.join(margins)}.")


register(Measurement(
    name="real-brain-test", title="every method on the 31 real EDAEPRec brain test slices, multi-coil and single-coil",
    parts=real_parts(), render=render_real, code=METHOD_CODE,
    files=METHOD_FILES + tuple(path for nets in REAL_NETWORKS.values() for _, path in nets)
    + tuple(f"assets/checkpoints/{kind}_brain.pt" for kind in ("unet", "varnet")),
    note="Data: `python -m explorer dataset build` of yqx7150/EDAEPRec test_data_31 (commit 371176ee), semi-real "
         "multi-coil with the maps of mikgroup/espirit-matlab-examples data/full.cfl (commit 61e3b9cb), 40 dB noise; "
         "networks trained at 4x only (the 8x columns test them off their training acceleration); l1 and TV with "
         "their defaults tuned on the synthetic samples; our protocol, fastMRI's per-slice SSIM (data range = the "
         "slice reference's max)."))


__all__ = ["ACCELERATIONS", "CONVDECODER_SLICES", "REAL_DATA", "REAL_NETWORKS", "ROWS", "SETTINGS", "real_parts",
           "render_real"]

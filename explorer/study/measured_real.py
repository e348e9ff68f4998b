"""The real-anatomy test set (issue 26): every method on 31 real brain slices that no network trained on.

The data are public GitHub files turned into fastMRI-layout volumes by ``python -m explorer dataset build`` (README
"Real brain data" gives the commands; nothing is committed): SIAT-500 slices 1-480 train and 481-500 validate the
``brain-real`` networks, the 31 EDAEPRec slices test them, single-coil (k = F x) and semi-real multi-coil (the image
times ESPIRiT maps of the 8-coil espirit-matlab-examples slice, 40 dB complex noise). The table: SSIM (PSNR) per
method at 4x and 8x (random masks, centre 0.08 / 0.04, seed 0 + slice number), fastMRI's per-slice SSIM.
"""

from __future__ import annotations

from collections import defaultdict

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


def _groups(outputs: list[tuple[str, dict]]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for label, output in outputs:
        grouped[label].append(output)
    return grouped


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


# --- the real multi-coil slices (measured k-space, out of the networks' distribution) ------------------------------

#: The three public real multi-coil brain slices, built with ``dataset build --coils measured``: file stem -> what.
MEASURED = {"espirit8_0001": "mikgroup/espirit-matlab-examples full.cfl: 8 coils, 230x180",
            "mprage4_0001": "icon-lab/A-LORAKS-CS MPRAGE: 4 coils, 256x256, T1",
            "sense16_0001": "mchiew/SENSE-tutorial raw_data.mat: 16 coils, 96x96"}


def measured_parts() -> tuple[Part, ...]:
    """Per measured slice: every method at 4x (one ``evaluate``), then test-time training of each real-anatomy network
    on it (our protocol)."""
    parts = []
    methods = ["--method", "zero_filled", "--method", "sense", "--method", "l1", "--method", "tv",
               "--method", "convdecoder"]
    for kind, path in REAL_NETWORKS["mc"]:
        methods += ["--method", f"{kind}_real={kind}", "--set", f"{kind}_real.checkpoint={path}"]
    for kind in SYNTHETIC_NETWORKS["mc"]:
        methods += ["--method", f"{kind}_synthetic={kind}", "--set", f"{kind}_synthetic.checkpoint=brain"]
    mask = ("--mask", "random", "--acceleration", "4", "--seed", "0")
    for stem in MEASURED:
        data = f"{REAL_DATA}/measured/{stem}.h5"
        parts.append(Part(stem, ("evaluate", "--data", data, *mask, *methods, "--json")))
        for kind, path in REAL_NETWORKS["mc"]:
            parts.append(Part(stem, ("ttt", "--data", data, "--slice", "0", *mask, "--method", f"{kind}_real={kind}",
                                     "--set", f"{kind}_real.checkpoint={path}", "--json")))
    return tuple(parts)


def render_measured(outputs: list[tuple[str, dict]]) -> str:
    """SSIM (PSNR) per method and measured slice, then test-time training of the real-anatomy networks per slice."""
    grouped = _groups(outputs)
    stems = [s for s in MEASURED if s in grouped]
    cells = {s: {r["label"]: r for d in grouped[s] if "slices" in d for r in d["results"]} for s in stems}
    lines = ["| method | " + " | ".join(MEASURED[s] for s in stems) + " | mean SSIM |", "|---|" + "---|" * (len(stems) + 1)]
    for label, name in ROWS:
        found = [cells[s].get(label) for s in stems]
        if not any(found):
            continue
        ssims = [r["ssim"] for r in found if r]
        shown = ["-" if r is None else f"{r['ssim']:.3f} ({r['psnr']:.2f})" for r in found]
        lines.append(f"| {name.split(' (un-trained')[0]} | " + " | ".join(shown) + f" | {sum(ssims) / len(ssims):.3f} |")
    lines += ["", "| network | " + " | ".join(f"TTT on {s.split('_')[0]}: SSIM before -> after (steps, stop)"
                                              for s in stems) + " |", "|---|" + "---|" * len(stems)]
    for kind, _ in REAL_NETWORKS["mc"]:
        shown = []
        for s in stems:
            r = next((d["results"][0] for d in grouped[s] if "results" in d and "slices" not in d
                      and d["results"][0]["label"] == f"{kind}_real"), None)
            shown.append("-" if r is None else f"{r['ssim_before']:.3f} -> {r['ssim_after']:.3f} ({r['steps']}, "
                                               f"{r['stop_reason']})")
        lines.append(f"| {dict(ROWS)[f'{kind}_real']} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + (
        "\n\nSSIM (PSNR dB), fastMRI's per-slice SSIM against the RSS of the fully sampled coil images; 4x random mask "
        "(centre 0.08, seed 0). Test-time training: our protocol (<= 200 steps, window 20, 5% of the sampled columns "
        "outside the centre held out, rollback). No network trained on these scanners exists, so no gap closed is "
        "defined; l1 and TV are the classical yardstick beside them.")





def measurements(method_code: tuple[str, ...], method_files: tuple[str, ...]) -> list[Measurement]:
    """The two real-brain measurements; ``method_code`` / ``method_files``: the method modules and data every
    measurement of methods depends on (:data:`explorer.study.measured.METHOD_CODE` / ``METHOD_FILES``), which
    :mod:`explorer.study.measured` passes in when it registers them."""
    return [
        Measurement(
            name="real-brain-test", title="every method on the 31 real EDAEPRec brain test slices, multi-coil and single-coil",
            parts=real_parts(), render=render_real, code=method_code,
            files=method_files + tuple(path for nets in REAL_NETWORKS.values() for _, path in nets)
            + tuple(f"assets/checkpoints/{kind}_brain.pt" for kind in ("unet", "varnet")),
            note="Data: `python -m explorer dataset build` of yqx7150/EDAEPRec test_data_31 (commit 371176ee), semi-real "
                 "multi-coil with the maps of mikgroup/espirit-matlab-examples data/full.cfl (commit 61e3b9cb), 40 dB noise; "
                 "networks trained at 4x only (the 8x columns test them off their training acceleration); l1 and TV with "
                 "their defaults tuned on the synthetic samples; our protocol, fastMRI's per-slice SSIM (data range = the "
                 "slice reference's max)."),
        Measurement(
            name="real-brain-measured", title="every method and test-time training on three real multi-coil brain slices",
            parts=measured_parts(), render=render_measured, code=method_code,
            files=method_files + tuple(path for _, path in REAL_NETWORKS["mc"])
            + tuple(f"assets/checkpoints/{kind}_brain.pt" for kind in ("unet", "varnet")),
            note="Data: `python -m explorer dataset build --coils measured` of mikgroup/espirit-matlab-examples data/full.cfl "
                 "(commit 61e3b9cb), icon-lab/A-LORAKS-CS `LORAKS V2.1/examples/MPRAGE_multi_channel.mat` kData (8f47dd45) and "
                 "mchiew/SENSE-tutorial raw_data.mat (6d478a82): measured k-space, out of distribution for every trained "
                 "network (scanner, coils, contrast, size); our protocol."),
    ]


__all__ = ["ACCELERATIONS", "CONVDECODER_SLICES", "MEASURED", "REAL_DATA", "REAL_NETWORKS", "ROWS", "SETTINGS",
           "measured_parts", "measurements", "real_parts", "render_measured", "render_real"]

"""Built-in study specs: the headline findings of Darestani, Chaudhari & Heckel (ICML 2021) and the test-time-training
follow-up (ICML 2022) on the embedded samples (``python -m explorer study --preset paper-fast --out DIR``);
``--data knee=DIR brain=DIR stanford=DIR`` points them at real fastMRI / Stanford directories instead (then slices are
the middle ones of every volume).

Both presets hold the papers' four method groups (baseline, sparse with several lambdas, an un-trained network, the
trained networks) in every experiment:

1. attacks at two budgets under the papers' objective per family (``objective: paper``): the SSIM drop per method;
2. fine details against overall quality: small features inserted on two slices, recovery vs whole-image SSIM;
3. the ID-vs-OOD relation across models for the anatomy (knee -> brain) and dataset (fastMRI-like -> Stanford-like
   knee) shifts, and the adversarially filtered shift (the knee slice the VarNet does worst on);
4. test-time training on the TTT paper's four shifts (:data:`explorer.robustness.ttt_shifts.SHIFTS`), each network
   trained on P adapted to two slices of Q with the network trained on Q as the reference: anatomy (the knee U-net
   and VarNet on brain slices), dataset (the knee U-net on the Stanford-like knee), contrast (the brain U-net on T1
   slices) and acceleration (the knee U-net at 2x); only the anatomy shift has a VarNet reference. Under the papers'
   protocol: ``paper-fast`` caps it at 80 steps with a window of 20 (the rule can fire after 60), ``paper`` runs
   their 2500 steps with their window per shift and network.

``paper-fast`` is sized for 2 CPU cores (the un-trained network runs a 100-step fit); ``paper`` uses each method's
own defaults (the ConvDecoder's 400-step fit) and the papers' TTT limits, which take far longer on a CPU.

``--data real-brain=DIR`` (a folder built by the README's "Real brain data" commands: ``DIR/mc/test`` with the 31
semi-real 8-coil EDAEPRec test slices, ``DIR/measured`` with the three measured multi-coil slices) adds the real-data
arms (:func:`real_brain_arms`): the knee networks against real brain (anatomy shift), the real-anatomy networks'
test slices against the measured slices (contrast, coil and scanner shift), and test-time training of the
real-anatomy networks on the measured slices (no network trained on them exists, so no gap closed: SSIM before and
after).
"""

from __future__ import annotations

from pathlib import Path

from explorer.errors import ExplorerError

PRESETS: tuple[str, ...] = ("paper-fast", "paper")
DATA_KEYS: tuple[str, ...] = ("knee", "brain", "stanford", "real-brain")
#: The real-anatomy networks of the real-data arms: (label, network kind, shipped file).
REAL_NETWORKS: tuple[tuple[str, str, str], ...] = (("unet_brain-real", "unet", "unet_brain-real.pt"),
                                                   ("varnet_brain-real", "varnet", "varnet_brain-real.pt"))
#: Test slices of the real-data arms in ``paper-fast`` (evenly spread; ``paper`` takes all).
FAST_REAL_SLICES = 5


def _volumes(folder: Path, what: str) -> list[Path]:
    found = sorted(folder.glob("*.h5")) if folder.is_dir() else []
    if not found:
        raise ExplorerError(f"real-brain: no .h5 volumes in {folder} ({what}); build them with the README's "
                            "'Real brain data' commands (python -m explorer dataset build)")
    return found


def real_brain_arms(folder: str, fast: bool, untrained: dict | str) -> list[dict]:
    """The real-data experiments of ``--data real-brain=DIR`` (see the module's docstring).

    Raises:
        ExplorerError: ``DIR/mc/test`` or ``DIR/measured`` missing or without volumes, or a real-anatomy checkpoint
            missing.
    """
    from explorer.resources import checkpoint_dir  # noqa: PLC0415

    root = Path(folder).expanduser().resolve()
    tests = _volumes(root / "mc" / "test", "the semi-real multi-coil test slices")
    measured = _volumes(root / "measured", "the measured multi-coil slices")
    if fast and len(tests) > FAST_REAL_SLICES:
        step = (len(tests) - 1) / (FAST_REAL_SLICES - 1)
        tests = [tests[round(i * step)] for i in range(FAST_REAL_SLICES)]
    networks = []
    for label, kind, name in REAL_NETWORKS:
        path = checkpoint_dir() / name
        if not path.is_file():
            raise ExplorerError(f"real-brain: the real-anatomy checkpoint {name} is missing from {checkpoint_dir()}")
        networks.append({"label": label, "method": kind, "config": {"checkpoint": str(path)}})
    test_set = [{"source": str(p), "slices": "middle"} for p in tests]
    measured_set = [{"source": str(p), "slices": "middle"} for p in measured]
    methods = ["zero_filled", "sense", "l1", "tv", untrained, *networks]
    ttt = {"protocol": "paper", "window": 20, **({"steps": 80} if fast else {})}  # the papers' window for a dataset shift
    return [
        {"shift": {"ood": test_set}},  # the study's knee set and networks against real brain: anatomy shift
        {"shift": {"data": test_set, "ood": measured_set, "methods": methods}},  # contrast, coils, scanner
        {"ttt": {**ttt, "data": measured_set, "methods": networks}},
    ]


def ttt_shifts(fast: bool, sources: dict | None = None) -> list[dict]:
    """Test-time training on the TTT paper's four shifts: per shift, one experiment on two slices of Q (its own data,
    and its own mask when the shift is one of acceleration) with every network kind that has both shipped
    checkpoints (trained on P, and on Q as the reference), labelled ``<kind>_<P> (<shift>)``.

    Args:
        fast: ``paper-fast``'s cap (80 steps, window 20); else the papers' 2500 steps and their window.
        sources: ``{sample source: slices -> data item}`` replacing a shift's sample with the user's data.
    """
    from explorer.recon.networks import kind_names  # noqa: PLC0415
    from explorer.resources import checkpoint_dir  # noqa: PLC0415
    from explorer.robustness.ttt_shifts import SHIFTS  # noqa: PLC0415

    experiments = []
    for shift in SHIFTS:
        files = {k: [checkpoint_dir() / f"{k}_{n}.pt" for n in (shift.checkpoint, shift.reference)] for k in kind_names()}
        kinds = [k for k, pair in files.items() if all(f.is_file() for f in pair)]
        if not kinds:
            continue
        data = (sources or {}).get(shift.source, lambda slices: {"source": shift.source, "slices": slices})([1, 2])
        for (window, reference), group in _groups(shift, files, kinds, fast).items():
            settings = {"protocol": "paper", "window": window, **({"steps": 80} if fast else {}),
                        "reference_checkpoint": reference, "data": [data],
                        "methods": [{"label": f"{k}_{shift.checkpoint} ({shift.name})", "method": k,
                                     "config": {"checkpoint": shift.checkpoint}} for k in group]}
            if shift.acceleration != 4:
                settings["masks"] = [{"type": "random", "acceleration": shift.acceleration, "seed": 0}]
            experiments.append({"ttt": settings})
    return experiments


def _groups(shift, files: dict, kinds: list[str], fast: bool) -> dict[tuple[int, str], list[str]]:
    """The kinds grouped by stopping window and reference (one experiment each, since an experiment names one of
    each): a reference in an anatomy slot by its name (each kind resolves its own file), another by its file;
    ``paper-fast`` uses the window 20 for all."""
    from explorer.recon.checkpoints import ANATOMIES  # noqa: PLC0415

    groups: dict[tuple[int, str], list[str]] = {}
    for kind in kinds:
        reference = shift.reference if shift.reference in ANATOMIES else str(files[kind][1])
        groups.setdefault((20 if fast else shift.window_for(kind), reference), []).append(kind)
    return groups


def preset(name: str, data: dict[str, str] | None = None) -> dict:
    """The raw spec of a built-in preset (see :func:`explorer.study.spec.parse_spec`).

    Args:
        data: ``{"knee" | "brain" | "stanford": directory}`` replacing the embedded samples; ``"real-brain":
            directory`` adding the real-data arms (:func:`real_brain_arms`).

    Raises:
        ExplorerError: an unknown preset or data key, or a real-brain folder without its volumes.
    """
    if name not in PRESETS:
        raise ExplorerError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    data = dict(data or {})
    unknown = [k for k in data if k not in DATA_KEYS]
    if unknown:
        raise ExplorerError(f"unknown --data key {unknown[0]!r}; use {', '.join(DATA_KEYS)} (e.g. knee=DIR)")
    fast = name == "paper-fast"

    def src(key: str, sample: str, slices) -> dict:
        return {"source": data[key], "slices": "middle"} if key in data else {"source": sample, "slices": slices}

    knee, brain = src("knee", "sample:knee", [1, 2, 3]), src("brain", "sample:brain", [1, 2, 3])
    stanford = src("stanford", "sample:knee,dataset=stanford", [1, 2, 3])
    untrained = {"label": "convdecoder", "method": "convdecoder", "config": {"iterations": 100} if fast else {}}
    methods = ["zero_filled", "sense",
               {"label": "l1_lam0.002", "method": "l1", "config": {"lam": 0.002}},
               {"label": "l1", "method": "l1"},
               {"label": "l1_lam0.02", "method": "l1", "config": {"lam": 0.02}},
               {"label": "tv_lam0.003", "method": "tv", "config": {"lam": 0.003}},
               {"label": "tv", "method": "tv"},
               {"label": "tv_lam0.02", "method": "tv", "config": {"lam": 0.02}},
               untrained, "unet", "varnet"]
    groups = ["zero_filled", "sense", "l1", "tv", untrained, "unet", "varnet"]
    real = real_brain_arms(data["real-brain"], fast, untrained) if "real-brain" in data else []
    sources = {"sample:knee": lambda s: src("knee", "sample:knee", s), "sample:brain": lambda s: src("brain", "sample:brain", s),
               "sample:knee,dataset=stanford": lambda s: src("stanford", "sample:knee,dataset=stanford", s)}
    return {
        "name": name,
        "data": [knee],
        "masks": [{"type": "random", "acceleration": 4, "center_fraction": 0.08, "seed": 0}],
        "methods": methods,
        "experiments": [
            {"shift": {"ood": [brain]}},
            {"shift": {"ood": [stanford]}},
            {"filtered": {"filter": ["varnet"], "keep": 1, "methods": groups}},
            {"attack": {"eps": [0.02, 0.08], "steps": 10, "objective": "paper",
                        "data": [src("knee", "sample:knee", [2])], "methods": groups}},
            {"features": {"count": 4, "sizes": [3, 5], "contrasts": [0.17], "seed": 0,
                          "data": [src("knee", "sample:knee", [1, 3])],
                          "methods": ["zero_filled", "l1", "tv", untrained, "unet", "varnet"]}},
            *ttt_shifts(fast, sources),
            *real,
        ],
    }

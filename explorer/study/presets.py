"""Built-in study specs. ``paper``: every headline finding of Darestani, Chaudhari & Heckel (ICML 2021) and the
test-time-training follow-up (ICML 2022) on the embedded samples, sized to finish in about 15 minutes on 2 CPU
cores (``python -m explorer study --preset paper --out DIR``); ``--data knee=DIR brain=DIR stanford=DIR`` points it
at real fastMRI / Stanford directories instead (then slices are the middle ones of every volume).

Findings and what measures them:

1. attacks across families (baseline, sparse, trained) at two budgets: the SSIM drop per method;
2. fine details against overall quality: small features inserted on two slices, recovery vs whole-image SSIM;
3. the ID-vs-OOD relation across models for the anatomy (knee -> brain) and the dataset (fastMRI-like ->
   Stanford-like knee) shifts: SSIM on both sets per model (several lambdas per sparse method, both networks);
4. test-time training closing the anatomy gap: the knee U-net and VarNet adapted on brain slices, the brain
   networks as the reference.
"""

from __future__ import annotations

from explorer.errors import ExplorerError

PRESETS: tuple[str, ...] = ("paper",)
DATA_KEYS: tuple[str, ...] = ("knee", "brain", "stanford")


def preset(name: str, data: dict[str, str] | None = None) -> dict:
    """The raw spec of a built-in preset (see :func:`explorer.study.spec.parse_spec`).

    Args:
        data: ``{"knee" | "brain" | "stanford": directory}`` replacing the embedded samples.

    Raises:
        ExplorerError: an unknown preset or data key.
    """
    if name not in PRESETS:
        raise ExplorerError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    data = dict(data or {})
    unknown = [k for k in data if k not in DATA_KEYS]
    if unknown:
        raise ExplorerError(f"unknown --data key {unknown[0]!r}; use {', '.join(DATA_KEYS)} (e.g. knee=DIR)")

    def src(key: str, sample: str, slices) -> dict:
        return {"source": data[key], "slices": "middle"} if key in data else {"source": sample, "slices": slices}

    knee, brain = src("knee", "sample:knee", [1, 2, 3]), src("brain", "sample:brain", [1, 2, 3])
    stanford = src("stanford", "sample:knee,dataset=stanford", [1, 2, 3])
    methods = ["zero_filled", "sense",
               {"label": "l1_lam0.002", "method": "l1", "config": {"lam": 0.002}},
               {"label": "l1", "method": "l1"},
               {"label": "l1_lam0.02", "method": "l1", "config": {"lam": 0.02}},
               {"label": "tv_lam0.003", "method": "tv", "config": {"lam": 0.003}},
               {"label": "tv", "method": "tv"},
               {"label": "tv_lam0.02", "method": "tv", "config": {"lam": 0.02}},
               "unet", "varnet"]
    return {
        "name": "paper",
        "data": [knee],
        "masks": [{"type": "random", "acceleration": 4, "center_fraction": 0.08, "seed": 0}],
        "methods": methods,
        "experiments": [
            {"shift": {"ood": [brain]}},
            {"shift": {"ood": [stanford]}},
            {"attack": {"eps": [0.02, 0.08], "steps": 10, "data": [src("knee", "sample:knee", [2])],
                        "methods": ["zero_filled", "sense", "l1", "tv", "unet", "varnet"]}},
            {"features": {"count": 4, "sizes": [3, 5], "contrasts": [0.17], "seed": 0,
                          "data": [src("knee", "sample:knee", [1, 3])],
                          "methods": ["zero_filled", "l1", "tv", "unet", "varnet"]}},
            {"ttt": {"steps": 30, "reference_checkpoint": "brain", "data": [src("brain", "sample:brain", [1, 2])],
                     "methods": [{"label": "unet_knee", "method": "unet", "config": {"checkpoint": "knee"}},
                                 {"label": "varnet_knee", "method": "varnet", "config": {"checkpoint": "knee"}}]}},
        ],
    }

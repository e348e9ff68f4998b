"""Embedded-sample sources and variants: ``sample:<family>[,field=value...]`` -> :class:`SampleSpec`, the variants
the app and the shift page offer, and the sample variant of a written volume (for model cards)."""

from __future__ import annotations

import json

from explorer.data.sample import CONTRASTS, DATASETS, FAMILIES, SampleSpec, validate
from explorer.errors import ExplorerError

VARIANTS: dict[str, str] = {  # sample sources of the shift axes -> a label
    "sample:knee": "knee, fastMRI-like 2D FSE, PD",
    "sample:knee,contrast=pdfs": "knee, fastMRI-like 2D FSE, PD fat-suppressed",
    "sample:knee,dataset=stanford": "knee, Stanford-like 3D FSE, PD",
    "sample:knee,contrast=pdfs,dataset=stanford": "knee, Stanford-like 3D FSE, PD fat-suppressed",
    "sample:brain": "brain, T2",
    "sample:brain,contrast=t1": "brain, T1",
}
SAMPLE_OPTIONS: dict[str, dict[str, str]] = {  # per family: source fields -> a label (the app's sample picker)
    "knee": {"": "8 coils, PD (fastMRI-like)", "contrast=pdfs": "8 coils, PD fat-suppressed",
             "dataset=stanford": "8 coils, Stanford-like 3D FSE", "fov=0.75": "8 coils, 0.75x phase-encode FOV (folded)",
             "coils=1": "single-coil"},
    "brain": {"": "8 coils, T2 (fastMRI-like)", "contrast=t1": "8 coils, T1",
              "fov=0.6": "8 coils, 0.6x phase-encode FOV (folded)", "coils=1": "single-coil"},
}
_SOURCE_FIELDS = {"size": int, "slices": int, "coils": int, "seed": int, "contrast": str, "dataset": str,
                  "fov": float}


def parse_source(text: str, **defaults) -> SampleSpec:
    """The spec of a sample source ``sample:<family>[,field=value...]``.

    Fields: ``size``, ``slices``, ``coils``, ``seed``, ``contrast``, ``dataset`` (e.g.
    ``sample:knee,dataset=stanford,seed=201``); ``defaults`` fill fields the text does not set.

    Raises:
        ExplorerError: not a sample source, an unknown family or field, a bad value.
    """
    if not text.startswith("sample:"):
        raise ExplorerError(f"{text!r} is not a sample source (sample:<family>[,field=value...])")
    family, *items = text[len("sample:"):].split(",")
    if family not in FAMILIES:
        raise ExplorerError(f"unknown sample family {family!r}; choose one of {', '.join(FAMILIES)}")
    fields = dict(defaults)
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in _SOURCE_FIELDS:
            raise ExplorerError(f"bad sample field {item!r} in {text!r}; use field=value with field one of "
                                f"{', '.join(_SOURCE_FIELDS)}")
        try:
            fields[key] = _SOURCE_FIELDS[key](value)
        except ValueError:
            kind = "a number" if _SOURCE_FIELDS[key] is float else "an integer"
            raise ExplorerError(f"sample {key} must be {kind}, got {value!r}") from None
    return validate(SampleSpec(family=family, **fields))


SYNTHETIC = "embedded sample (synthetic)"


def sample_variant(attrs: dict) -> dict | None:
    """The embedded-sample variant of a volume (``{"family", "contrast", "dataset", "fov"}``, defaults resolved)
    from its ``sample_spec`` attribute, or ``None`` for any other file (a real scan)."""
    raw = attrs.get("sample_spec")
    if raw is None:
        return None
    try:
        spec = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None
    family = spec.get("family", "knee")
    return {"family": family, "contrast": spec.get("contrast") or CONTRASTS.get(family, ("",))[0],
            "dataset": spec.get("dataset") or DATASETS.get(family, ("fastmri",))[0], "fov": float(spec.get("fov", 1.0))}

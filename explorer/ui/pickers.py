"""Pickers shared by the pages: the slice (plane, index) and mask, and the method instances.

Both render widgets under a page's key prefix (``"reconstruct"``, ``"attack"``, ...), so each page keeps its
own choices; methods are offered and configured from their :class:`~explorer.recon.base.MethodSpec` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

from explorer.data.sources import PLANES
from explorer.engine import Problem
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance, MethodSpec
from explorer.ui import cache, widgets
from explorer.ui.state import Source

FAMILY_LABELS = {"baseline": "classical", "sparse": "sparse / ℓ1", "untrained": "un-trained network",
                 "trained": "trained network"}
# What a method costs on one slice, from its declared ``Capabilities.cost`` (a badge on each option of the picker).
COST_BADGES = {"instant": "instant", "interactive": "seconds", "long": "minutes"}
DEFAULT_MASK = {"brain": "equispaced"}  # fastMRI challenge masks by anatomy (knee: random)
PLANE_HELP = ("Raw 3D ISMRMRD volumes: kx-ky planes are the papers' 2D slices (1D masks); ky-kz planes "
              "(after an inverse FFT along the readout) suit 2D Poisson masks.")


@dataclass(frozen=True)
class SliceChoice:
    """What the slice picker chose: ``problem`` is the cached undersampled slice (shared: never mutate)."""

    plane: str
    index: int
    mask: MaskConfig
    problem: Problem


def slice_and_mask(prefix: str, source: Source, container=None) -> SliceChoice:
    """Plane (raw 3D ISMRMRD only), slice slider and mask controls; returns the cached problem.

    Raises:
        ExplorerError: unreadable data or an invalid mask (callers wrap this in ``widgets.stop_on_error``).
    """
    box = container if container is not None else st.container()
    with box:
        plane = "kxky"
        if cache.is_raw_ismrmrd(source):
            plane = st.radio("k-space plane", PLANES, horizontal=True, key=f"{prefix}.plane", help=PLANE_HELP)
            cache.ensure_plane_cache(source, plane)
        volume = cache.open_volume(source, plane)
        if volume.num_slices > 1:
            index = st.slider("Slice", 0, volume.num_slices - 1, volume.num_slices // 2, key=f"{prefix}.slice",
                              help=f"{volume.name}: {volume.num_slices} slices")
        else:
            index = 0
            st.caption(f"{volume.name}: a single slice")
        mask = widgets.mask_controls(f"{prefix}.mask", default_type=DEFAULT_MASK.get(source.family, "random"))
    return SliceChoice(plane, int(index), mask, cache.problem(source, plane, int(index), mask))


def cost_badge(spec: MethodSpec) -> str:
    """How long ``spec`` takes on one slice, from its declared cost: ``"instant"``, ``"seconds"`` or ``"minutes"``."""
    return COST_BADGES.get(spec.capabilities.cost, spec.capabilities.cost)


def option_label(spec: MethodSpec, extra: str | None = None) -> str:
    """A picker option: the method's name, what it is (its family, or ``extra``) and its cost badge, e.g.
    ``"U-net · trained network · seconds"`` (typing a method's name matches its option only)."""
    return f"{spec.label} · {extra or FAMILY_LABELS.get(spec.family, spec.family)} · {cost_badge(spec)}"


def default_methods(methods: dict[str, MethodSpec]) -> list[str]:
    """A classical, a sparse and a trained method to start with, chosen from the declared capabilities (registry
    order): the first instant method, the first that takes seconds without trained weights, the first with trained
    weights. Minute-long methods are never a default."""
    picks = [
        next((n for n, s in methods.items() if s.capabilities.cost == "instant"), None),
        next((n for n, s in methods.items() if s.capabilities.cost == "interactive" and not s.capabilities.weights),
             None),
        next((n for n, s in methods.items() if s.capabilities.weights and s.capabilities.cost != "long"), None),
    ]
    return [n for n in dict.fromkeys(picks) if n is not None]


class Picked(list):
    """The chosen method instances (a list), and whether they may run: ``confirmed`` is False while minute-long
    methods are chosen and the user has not confirmed them (pages disable their Run button then)."""

    confirmed: bool = True


def confirm_long(prefix: str, specs: list[MethodSpec]) -> bool:
    """A warning and a checkbox when minute-long methods (``capabilities.long``) are among ``specs``; whether the
    user confirmed them (always True without such methods)."""
    long = list(dict.fromkeys(s.label for s in specs if s.capabilities.long))
    if not long:
        return True
    st.warning(f"**{', '.join(long)}** fit{'s' if len(long) == 1 else ''} every slice from scratch: minutes per slice "
               "on a CPU (Stop ends a fit early and keeps its best image).", icon=":material/hourglass_top:")
    return st.checkbox(f"Yes, run the minute-long method{'s' if len(long) > 1 else ''}", key=f"{prefix}.confirm_long",
                       help="Runs stay disabled until you confirm: a method that takes minutes is easy to pick by "
                            "mistake.")


def _add(prefix: str, name: str) -> None:
    """Add another instance of method ``name`` (numbered 2, 3, ...)."""
    extra = st.session_state.setdefault(f"{prefix}.extra_instances", [])
    taken = {n for m, n in extra if m == name}
    extra.append((name, next(n for n in range(2, 100) if n not in taken)))


def _remove(prefix: str, name: str, number: int) -> None:
    key = f"{prefix}.extra_instances"
    st.session_state[key] = [(m, n) for m, n in st.session_state.get(key, []) if (m, n) != (name, number)]


def method_instances(prefix: str, methods: dict[str, MethodSpec], default: list[str], anatomy: str | None,
                     label: str = "Methods to compare", help_text: str | None = None,
                     describe: Callable[[MethodSpec], str] | None = None) -> Picked:
    """A multiselect of ``methods`` (each option with its cost badge), a confirmation when minute-long methods are
    chosen, "add another instance", and one parameter expander per instance.

    The multiselect filters by substring and has no "select all / select N matches" entry: typing "U-net" and Enter
    picks the U-net alone.

    Args:
        prefix: widget key prefix (``f"{prefix}.methods"``, ``f"{prefix}.params..."``, ...).
        methods: ``{name: spec}`` on offer (e.g. only the attackable ones).
        default: names selected at first.
        anatomy: the data's anatomy (anatomy-dependent parameter defaults).
        describe: optional extra text per method in the multiselect.

    Returns:
        the instances in display order: chosen methods, then the extra instances labelled ``"<label> #n"``; its
        ``confirmed`` is False while minute-long methods wait for the user's confirmation.

    Raises:
        ExplorerError: a parameter value a method rejects.
    """
    def fmt(name: str) -> str:
        spec = methods[name]
        return option_label(spec, describe(spec) if describe else None)

    chosen = st.multiselect(label, list(methods), default=[d for d in default if d in methods],
                            key=f"{prefix}.methods", format_func=fmt, filter_mode="contains", select_all=False,
                            help=(help_text or "Any registered method; its parameters appear below with their "
                                  "defaults.") + " The badge says how long each takes on one slice: instant, "
                                                 "seconds or minutes.")
    confirmed = confirm_long(prefix, [methods[n] for n in chosen])
    extras = [(name, n) for name, n in st.session_state.setdefault(f"{prefix}.extra_instances", []) if name in chosen]
    add_col, add_button = st.columns([3, 1], vertical_alignment="bottom")
    if chosen:
        another = add_col.selectbox("Add another instance of a chosen method (e.g. a second checkpoint)", chosen,
                                    format_func=lambda n: methods[n].label, key=f"{prefix}.add_method",
                                    help="The same method again under its own label and parameters, side by side.")
        add_button.button("Add instance", icon=":material/add:", key=f"{prefix}.add_instance",
                          on_click=_add, args=(prefix, another))
    slots = [(name, "") for name in chosen] + [(name, f"#{n}") for name, n in extras]
    instances = Picked()
    instances.confirmed = confirmed
    with st.container():  # always present: keeps what follows at a fixed position
        columns = st.columns(3) if slots else []
        for i, (name, slot) in enumerate(slots):
            spec = methods[name]
            title = spec.label if not slot else f"{spec.label} {slot}"
            with columns[i % 3].expander(f"**{title}** parameters", icon=":material/settings:"):
                st.caption(spec.description)
                config = widgets.method_config(spec, f"{prefix}.params", anatomy=anatomy, slot=slot)
                if slot:
                    st.button("Remove this instance", key=f"{prefix}.remove.{name}{slot}", type="tertiary",
                              icon=":material/delete:", on_click=_remove, args=(prefix, name, int(slot[1:])))
            instances.append(MethodInstance(title if slot else name, name, config))
    return instances

"""Shared Streamlit widgets: generic method-parameter inputs, mask controls, error display,
and the run-with-progress loop.

Method parameters are rendered from :class:`~explorer.recon.base.ParamSpec` alone
(bool -> checkbox, choices -> selectbox, int/float -> number input, anything else -> text
box converted by ``MethodSpec.make_config``), never from a method's name.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from typing import Iterator

import pandas as pd
import streamlit as st

from explorer.engine.core import loss_history
from explorer.errors import ExplorerError
from explorer.export import npy_bytes, png_bytes
from explorer.figures.images import loss_figure
from explorer.masks import INTEGER_ACCELERATION, MASK_TYPES, MaskConfig, default_center_fraction
from explorer.metrics import METRIC_DEFINITIONS
from explorer.recon.base import MethodSpec, ParamSpec
from explorer.recon.networks import kind_names
from explorer.ui import checkpoint_store, paths, present
from explorer.ui.feedback import Feedback
from explorer.ui.state import metric

MASK_LABELS = {
    "random": "Random (fastMRI)",
    "equispaced": "Equispaced (fastMRI)",
    "equispaced_fraction": "Equispaced, exact fraction",
    "magic": "MAGIC (fastMRI)",
    "magic_fraction": "MAGIC, exact fraction",
    "poisson": "2D Poisson disc (variable density)",
}


def show_error(exc: BaseException) -> None:
    """Show a user error as one ``st.error`` line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    st.error(text, icon=":material/error:")


@contextlib.contextmanager
def stop_on_error() -> Iterator[None]:
    """Turn an :class:`ExplorerError` raised inside the block into ``st.error`` and stop the page.

    The rest of the page is skipped cleanly; the sidebar and other pages keep working.
    """
    try:
        yield
    except ExplorerError as exc:
        show_error(exc)
        st.stop()
    except MemoryError:
        show_error(ExplorerError("out of memory: use a smaller slice, fewer methods or smaller settings"))
        st.stop()


# --------------------------------------------------------------------------- parameters

def param_widget(param: ParamSpec, key: str, container=st):
    """One input widget for ``param`` (default value and help from the ParamSpec)."""
    label = param.name.replace("_", " ")
    help_text = param.help or None
    if param.choices:
        options = list(param.choices)
        index = options.index(param.default) if param.default in options else 0
        return container.selectbox(label, options, index=index, key=key, help=help_text)
    if param.type is bool:
        return container.checkbox(label, value=bool(param.default), key=key, help=help_text)
    if param.type is int:
        lo = None if param.min is None else int(math.ceil(param.min))
        hi = None if param.max is None else int(math.floor(param.max))
        return container.number_input(label, min_value=lo, max_value=hi, value=_clamp(int(param.default), lo, hi),
                                      step=1, key=key, help=help_text)
    if param.type is float:
        lo = None if param.min is None else float(param.min)
        hi = None if param.max is None else float(param.max)
        default = _clamp(float(param.default), lo, hi)
        return container.number_input(label, min_value=lo, max_value=hi, value=default,
                                      step=_float_step(default, lo, hi), format="%g", key=key, help=help_text)
    return container.text_input(label, value="" if param.default is None else str(param.default), key=key,
                                help=help_text)


def _clamp(value, lo, hi):
    """``value`` inside ``[lo, hi]`` (a default outside its own range must not crash the page)."""
    if lo is not None and value < lo:
        return lo
    if hi is not None and value > hi:
        return hi
    return value


def _float_step(default: float, lo: float | None, hi: float | None) -> float:
    """A step of about a tenth of the default's order of magnitude (or of the range)."""
    scale = abs(default)
    if scale == 0 and lo is not None and hi is not None and hi > lo:
        scale = (hi - lo) / 10
    if scale == 0 or not math.isfinite(scale):
        return 0.01
    return 10.0 ** math.floor(math.log10(scale)) / 10


def method_config(spec: MethodSpec, key_prefix: str, container=st, anatomy: str | None = None, slot: str = ""):
    """Render ``spec``'s parameters (defaults for data of ``anatomy``) and return its validated frozen config.

    Parameters whose default depends on the anatomy get widget keys per anatomy, so switching
    between knee and brain data shows each anatomy's default (and keeps the user's edits per anatomy).
    ``slot`` tells several instances of one method apart (their widgets get their own keys).

    Raises:
        ExplorerError: a value the method rejects (range, type, choices).
    """
    params = spec.params(anatomy)
    if not params:
        container.caption("This method has no parameters.")
        return spec.make_config({}, anatomy=anatomy)
    varying = set(spec.anatomy_defaults(anatomy))
    keys = {p.name: f"{key_prefix}.{spec.name}{slot}.{p.name}" + (f".{anatomy or 'any'}" if p.name in varying else "")
            for p in params}
    values = {p.name: param_widget(p, keys[p.name], container) for p in params}
    network = spec.name in kind_names()  # a registered network kind: its method carries a checkpoint
    extras = checkpoint_store.shipped_extras(spec.name) if network else {}
    if extras:
        container.caption("Also shipped: " + "; ".join(
            f"`{name}`" + (f" ({about})" if (about := _trained_on(spec.name, path)) else "") for name, path in extras.items())
            + " — type the name as the checkpoint.")
    for name, value in values.items():  # a parameter naming a file (a checkpoint) reads only what the app may read
        if not isinstance(value, str):
            continue
        shipped = checkpoint_store.shipped_file(spec.name, value) if network else None
        if shipped is not None:  # the product's own shipped file: by name, or its path
            values[name] = str(shipped)
        elif paths.is_path(value):
            paths.confine_path(value, f"{spec.name}.{name}", own_uploads=True)
    container.button("Reset to defaults", key=f"{key_prefix}.{spec.name}{slot}.__reset", type="tertiary",
                     icon=":material/restart_alt:", on_click=_reset, args=(list(keys.values()),))
    return spec.make_config({k: v for k, v in values.items() if v is not None}, anatomy=anatomy)


def _trained_on(kind: str, path) -> str:
    """What a shipped checkpoint's card says it was trained on, in a few words ("" when it says nothing)."""
    from explorer.recon.model_store import checkpoint_info  # noqa: PLC0415

    try:
        card = checkpoint_info(str(path), kind)["card"]
    except ExplorerError:
        return ""
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    bits = [str(data[k]) for k in ("anatomy", "challenge") if data.get(k)]
    source = (card.get("provenance") or {}).get("summary") if isinstance(card.get("provenance"), dict) else None
    return ", ".join(bits + ([source] if source else []))


def _reset(keys: list[str]) -> None:
    for key in keys:
        st.session_state.pop(key, None)


# --------------------------------------------------------------------------- mask

def mask_controls(key_prefix: str, container=st, default_type: str = "random") -> MaskConfig:
    """Mask type, acceleration, centre fraction (fastMRI default unless overridden) and seed.

    Raises:
        ExplorerError: an invalid combination (e.g. a fractional acceleration for equispaced).
    """
    c = container
    types = list(MASK_TYPES)
    mask_type = c.selectbox("Mask", types, index=types.index(default_type) if default_type in types else 0,
                            format_func=lambda t: MASK_LABELS.get(t, t), key=f"{key_prefix}.type",
                            help="fastMRI's 1D column masks (random for knee, equispaced for brain in the "
                                 "challenge) or a 2D variable-density Poisson-disc mask.")
    integer = mask_type in INTEGER_ACCELERATION
    left, right = c.columns(2)
    acceleration = left.number_input("Acceleration R", min_value=1.0, max_value=64.0, value=4.0, step=1.0 if integer else 0.5,
                                     format="%g", key=f"{key_prefix}.acceleration",
                                     help="Nominal undersampling factor: about 1/R of the k-space lines are kept"
                                          + (" (integer for this mask)." if integer else "."))
    seed = right.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key=f"{key_prefix}.seed",
                              help="Random seed of the mask pattern.")
    default_cf = default_center_fraction(acceleration)
    use_default = c.toggle(f"fastMRI centre fraction ({default_cf:g} at {acceleration:g}×)", value=True,
                           key=f"{key_prefix}.cf_default",
                           help="Fraction of fully sampled low-frequency lines: fastMRI uses 0.08 at 4× and 0.04 at 8×.")
    center_fraction = None
    if not use_default:
        center_fraction = c.number_input("Centre fraction", min_value=0.001, max_value=0.999, value=default_cf,
                                         step=0.01, format="%g", key=f"{key_prefix}.cf",
                                         help="Fraction of k-space lines (or of each axis for 2D masks) in the fully "
                                              "sampled centre.")
    return MaskConfig(type=mask_type, acceleration=float(acceleration), center_fraction=center_fraction, seed=int(seed))


# --------------------------------------------------------------------------- running

class _Throttled(Feedback):
    """Progress callback driving an ``st.progress`` bar (and a live loss curve), ~10 updates a second.

    A click while a method runs becomes a stop request (:class:`~explorer.ui.feedback.Feedback`: the method
    returns its best estimate so far, which gets cached), re-raised by :func:`run_with_status` once that result
    is stored.
    """

    CURVE_SECONDS = 0.5  # the loss curve is redrawn at most twice a second

    def __init__(self, bar, label: str, curve=None):
        super().__init__()
        self.bar, self.label, self.curve = bar, label, curve
        self.last_curve = 0.0
        self.losses: list[tuple[int, float]] = []

    def __call__(self, step: int, total: int, info: dict) -> bool | None:
        self.losses.extend(loss_history(step, info))

        def render(now: float) -> None:
            extra = " · ".join(f"{k} {v:.3g}" for k, v in (info or {}).items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool))
            self.bar.progress(min(max(step / max(total, 1), 0.0), 1.0),
                              text=f"{self.label}: step {step}/{total}" + (f" · {extra}" if extra else ""))
            if self.curve is not None and self.losses and (step >= total or now - self.last_curve >= self.CURVE_SECONDS):
                self.last_curve = now
                self.curve.plotly_chart(loss_figure({self.label: self.losses}, height=220), theme=None,
                                        config={"displayModeBar": False})

        return self.draw(step, total, render)


def run_with_status(request, container=None, refit_stopped: bool = False) -> tuple[list, dict[str, str]]:
    """Results of every method instance in ``request`` (a :class:`~explorer.ui.state.Request`).

    Cached results return at once; if any instance must run, an ``st.status`` box shows a
    progress bar per instance (fed by its progress callback), a live loss curve for long fits
    (``capabilities.cost == "long"``) and their wall time, with a Stop button when a method that is
    not instant runs: stopping (or any other click) ends the running fit early and keeps its best
    image. An instance that fails with an :class:`ExplorerError` does not stop the others.

    Args:
        request: what to run.
        container: where the status box goes (default: here). Pass a container that is
            always present so the elements after it keep their positions: Streamlit
            remounts a chart whose position changed, losing the user's zoom.
        refit_stopped: run again the instances whose shown result was stopped early.

    Returns:
        ``(results in request order without the failed ones, {instance label: error message})``.
    """
    from explorer.ui import cache  # noqa: PLC0415

    args = (request.source, request.plane, request.index, request.mask)
    results = {inst.label: cache.cached_result(*args, inst) for inst in request.methods}
    if refit_stopped:
        results = {label: (None if r is not None and r.stopped else r) for label, r in results.items()}
    errors: dict[str, str] = {}
    missing = [inst for inst in request.methods if results[inst.label] is None]
    if missing:
        start = time.perf_counter()
        box = container if container is not None else st
        with box.status(f"Reconstructing with {len(missing)} method(s)…", expanded=True) as status:
            if any(inst.capabilities.cost != "instant" for inst in missing):
                st.button("Stop", key="run_with_status.stop", icon=":material/stop_circle:",
                          help="Stop the running method now and keep its best image so far (clicking anything "
                               "else on the page does the same).")
            for inst in missing:
                label = inst.display
                bar = st.progress(0.0, text=f"{label}: starting…")
                feedback = _Throttled(bar, label, st.empty() if inst.capabilities.long else None)
                try:
                    result = cache.run(*args, inst, progress=feedback, refit_stopped=refit_stopped)
                except ExplorerError as exc:
                    errors[inst.label] = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
                    if feedback.interrupt is not None:
                        raise feedback.interrupt from None
                    bar.progress(1.0, text=f"{label}: failed")
                    continue
                if feedback.interrupt is not None:
                    raise feedback.interrupt  # result stored: now let Streamlit rerun or stop
                maps = f" (+ {result.maps_seconds:.2f} s coil maps)" if result.maps_seconds else ""
                what = (f"stopped at step {result.steps[0]}/{result.steps[1]}" if result.stopped and result.steps
                        else "done")
                bar.progress(1.0, text=f"{label}: {what} in {result.seconds:.2f} s{maps}")
                results[inst.label] = result
            elapsed = time.perf_counter() - start
            if errors:
                status.update(label=f"{len(errors)} of {len(missing)} method(s) failed", state="error", expanded=False)
            else:
                status.update(label=f"Reconstructed {len(missing)} method(s) in {elapsed:.1f} s", state="complete",
                              expanded=False)
    return [results[inst.label] for inst in request.methods if results[inst.label] is not None], errors


# --------------------------------------------------------------------------- results

_METRIC_COLUMNS = {
    "SSIM": st.column_config.NumberColumn(format="%.4f", help="Structural similarity (higher is better)"),
    "PSNR (dB)": st.column_config.NumberColumn(format="%.2f", help="Peak SNR, data range = reference max"),
    "NMSE": st.column_config.NumberColumn(format="%.5f", help="Normalised mean squared error (lower is better)"),
    "Recon (s)": st.column_config.NumberColumn(format="%.2f", help="Wall time of the reconstruction"),
    "Coil maps (s)": st.column_config.NumberColumn(format="%.2f", help="ESPIRiT maps (computed once per slice and mask)"),
}


def metrics_table(results: list, key: str) -> pd.DataFrame:
    """Show (and return) one row per :class:`~explorer.engine.MethodResult`: SSIM, PSNR, NMSE
    (when there is a reference) and timings (a dash where a method needs no coil maps)."""
    table = pd.DataFrame([{
        "Method": r.label,
        **({"SSIM": r.metrics["ssim"], "PSNR (dB)": r.metrics["psnr"], "NMSE": r.metrics["nmse"]} if r.metrics else {}),
        "Recon (s)": r.seconds,
        "Coil maps (s)": r.maps_seconds,
    } for r in results])
    config = dict(_METRIC_COLUMNS)
    if "Coil maps (s)" in table and table["Coil maps (s)"].isna().any():
        table["Coil maps (s)"] = [present.MISSING if v is None or v != v else f"{v:.2f}" for v in table["Coil maps (s)"]]
        config["Coil maps (s)"] = st.column_config.TextColumn(help="ESPIRiT maps (computed once per slice and mask)")
    st.dataframe(table, hide_index=True, key=key, column_config=config, width="stretch")
    st.caption(f"Metrics: {metric()} ({METRIC_DEFINITIONS[metric()]}); choose another in the sidebar.")
    return table


def download_buttons(results: list, stem: str, window: tuple[float, float], key: str) -> None:
    """``.npy`` and windowed ``.png`` of each reconstruction, and the metrics as ``.csv``
    (downloads do not rerun the page)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    for r in results:
        name, npy, png = st.columns([2, 1, 1], vertical_alignment="center")
        name.write(r.label)
        npy.download_button(".npy", npy_bytes(r.image), f"{stem}_{r.instance}.npy", "application/octet-stream",
                            key=f"{key}.npy.{r.instance}", on_click="ignore", icon=":material/download:")
        png.download_button(".png", png_bytes(r.image, *window), f"{stem}_{r.instance}.png", "image/png",
                            key=f"{key}.png.{r.instance}", on_click="ignore", icon=":material/download:")
    st.download_button("Metrics (.csv)", metrics_csv_text(results), f"{stem}_metrics.csv", "text/csv",
                       key=f"{key}.csv", on_click="ignore", icon=":material/table:")


def metric_rows(results: list) -> list[dict]:
    """Raw rows (one per result): method, label, SSIM / PSNR / NMSE (when scored) and timings."""
    return [{"label": r.label, "method": r.method, **{k: (r.metrics or {}).get(k) for k in ("ssim", "psnr", "nmse")},
             "seconds": r.seconds, "maps_seconds": r.maps_seconds, "stopped": r.stopped} for r in results]


def metrics_csv_text(results: list) -> str:
    """The metrics of ``results`` as CSV with human headers (the sidebar's metric definition in every row)."""
    return present.csv_text(metric_rows(results), {"metric": metric()})


def show_notes(container, label: str, notes) -> None:
    """A result's notes (coil map sets chosen, a trained network's distribution shift) as info lines."""
    for note in notes:
        shift = note.startswith("distribution shift")
        container.info(f"**{label}**: {note}", icon=":material/swap_horiz:" if shift else ":material/layers:")


def notes_box(container, notes: list[tuple[str, str]], key: str | None = None) -> None:
    """All notes on a page's results (``[(method, note)]``: checkpoints, coil maps, a distribution shift) in one
    collapsed expander, so the results stay at the top of the screen. Nothing is drawn without notes."""
    notes = list(dict.fromkeys(notes))
    if not notes:
        return
    shift = any("distribution shift" in note for _, note in notes)
    title = f"{len(notes)} note{'s' if len(notes) > 1 else ''} on these results" + (
        " (including a distribution shift)" if shift else "")
    with container.expander(title, icon=":material/swap_horiz:" if shift else ":material/info:", key=key):
        st.markdown("\n".join(f"- **{label}**: {note}" for label, note in notes))


def stopped_note(container, stopped: list[tuple[str, str]], button: str) -> None:
    """One warning naming every result that was stopped early (``[(method, where)]``)."""
    if not stopped:
        return
    what = "; ".join(f"**{label}** was stopped{where}" for label, where in stopped)
    container.warning(f"{what}: the best image so far is shown. Press **{button}** to run "
                      f"{'it' if len(stopped) == 1 else 'them'} again in full.", icon=":material/stop_circle:")


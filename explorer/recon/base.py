"""The reconstructor contract and the method registry.

Contract (deepinv-style, used by everything): a reconstructor is built from a
frozen config and called as ``recon(y, op) -> x`` with

* ``y``: measured (masked) k-space, complex ``(B, C, H, W)``;
* ``op``: the :class:`~explorer.physics.Operator` that produced it (mask + coil maps);
* ``x``: complex image ``(B, H, W)``, differentiable w.r.t. ``y`` where the method allows.

``explorer.pipeline.run_method`` calls reconstructors under ``torch.no_grad()``;
methods that fit parameters (un-trained networks) enable gradients internally with
``torch.enable_grad()``. Long-running methods accept ``progress(step, total, info) -> bool | None``; returning
True asks them to stop early (they then return their best estimate so far).

Methods register with :func:`register`; configs are frozen dataclasses whose fields
carry ``metadata={"help": ..., "min": ..., "max": ..., "choices": ...}``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

from explorer.errors import ExplorerError
from explorer.physics import Operator

ProgressFn = Callable[[int, int, dict], "bool | None"]


class Reconstructor(Protocol):
    """``recon(y (B, C, H, W), op, progress=None) -> x (B, H, W) complex``."""

    def __call__(self, y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor: ...


@dataclass(frozen=True)
class ParamSpec:
    """One user-settable parameter of a method (for the UI and ``methods`` listing)."""

    name: str
    type: type
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: registry key (CLI ``--method NAME``).
        label: display name.
        family: "baseline", "sparse", "untrained" or "trained".
        config_cls: frozen dataclass of its parameters.
        factory: ``config -> Reconstructor``.
        description: one line shown in the UI.
        needs_maps: ``config -> bool``: whether it needs coil sensitivity maps.
        anatomy_defaults: ``anatomy ("knee" | "brain" | None) -> {param: value}``: defaults that
            depend on the data (a tuned ``lam``, the checkpoint trained on that anatomy); they
            replace the config class defaults in :meth:`params` and :meth:`make_config`.
        describe: ``(config, anatomy) -> str | None``: a note on a configured run for the UI (e.g. which
            checkpoint, and whether it meets an anatomy it was not trained on).
        cache_token: ``config -> hashable``: what else a result depends on besides the config (e.g.
            the identity of a checkpoint file, so retrained weights are not served from a cache).
    """

    name: str
    label: str
    family: str
    config_cls: type
    factory: Callable[[Any], Reconstructor]
    description: str
    needs_maps: Callable[[Any], bool]
    anatomy_defaults: Callable[[str | None], dict[str, Any]] = lambda anatomy: {}
    describe: Callable[[Any, str | None], str | None] = lambda config, anatomy: None
    cache_token: Callable[[Any], Any] = lambda config: None

    def params(self, anatomy: str | None = None) -> list[ParamSpec]:
        """The parameters with their types, defaults (for data of ``anatomy``) and help."""
        hints = typing.get_type_hints(self.config_cls)
        defaults = self.anatomy_defaults(anatomy)
        out = []
        for f in dataclasses.fields(self.config_cls):
            md = f.metadata
            out.append(ParamSpec(f.name, hints[f.name], defaults.get(f.name, f.default), md.get("help", ""),
                                 md.get("min"), md.get("max"), md.get("choices")))
        return out

    def make_config(self, values: dict[str, Any] | None = None, anatomy: str | None = None):
        """Build a validated config from ``values`` (strings are converted) over the defaults for ``anatomy``."""
        values = {**self.anatomy_defaults(anatomy), **dict(values or {})}
        specs = {p.name: p for p in self.params()}
        kwargs = {}
        for key, raw in values.items():
            if key not in specs:
                raise ExplorerError(f"{self.name} has no parameter {key!r}; it has {', '.join(specs) or 'none'}")
            kwargs[key] = _convert(self.name, specs[key], raw)
        return self.config_cls(**kwargs)


REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, label: str, family: str, config_cls: type, description: str,
             needs_maps: Callable[[Any], bool] = lambda cfg: False,
             anatomy_defaults: Callable[[str | None], dict[str, Any]] = lambda anatomy: {},
             describe: Callable[[Any, str | None], str | None] = lambda config, anatomy: None,
             cache_token: Callable[[Any], Any] = lambda config: None):
    """Decorator registering ``factory(config) -> Reconstructor`` under ``name`` (see :class:`MethodSpec`)."""

    def deco(factory):
        if name in REGISTRY:
            raise RuntimeError(f"method {name!r} registered twice")
        REGISTRY[name] = MethodSpec(name, label, family, config_cls, factory, description, needs_maps, anatomy_defaults,
                                    describe, cache_token)
        return factory

    return deco


def get_method(name: str) -> MethodSpec:
    """The registered method ``name``.

    Raises:
        ExplorerError: unknown method.
    """
    _load_builtin_methods()
    if name not in REGISTRY:
        raise ExplorerError(f"unknown method {name!r}; available: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def available_methods() -> list[MethodSpec]:
    """All registered methods in registration order."""
    _load_builtin_methods()
    return list(REGISTRY.values())


def build(name: str, config=None) -> Reconstructor:
    """Instantiate method ``name`` with ``config`` (default config when ``None``)."""
    spec = get_method(name)
    return spec.factory(config if config is not None else spec.config_cls())


BUILTIN_MODULES: tuple[str, ...] = (
    "explorer.recon.classical", "explorer.recon.sparse", "explorer.recon.untrained", "explorer.recon.trained",
)


def _load_builtin_methods() -> None:
    """Import the modules that register the built-in methods (each registers on import)."""
    import importlib  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415

    for module in BUILTIN_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def _convert(method: str, spec: ParamSpec, raw: Any):
    try:
        if spec.type is bool and isinstance(raw, str):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            value = raw.lower() in ("true", "1", "yes")
        else:
            value = spec.type(raw)
    except (TypeError, ValueError):
        raise ExplorerError(f"{method}.{spec.name} must be {spec.type.__name__}, got {raw!r}") from None
    if spec.choices is not None and value not in spec.choices:
        raise ExplorerError(f"{method}.{spec.name} must be one of {', '.join(map(str, spec.choices))}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
            raise ExplorerError(f"{method}.{spec.name} must be in [{spec.min}, {spec.max}], got {value}")
    return value

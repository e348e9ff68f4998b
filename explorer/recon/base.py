"""The reconstructor contract and the method registry.

Contract (deepinv-style, used by everything): a reconstructor is built from a
frozen config and called as ``recon(y, op) -> x`` with

* ``y``: measured (masked) k-space, complex ``(B, C, H, W)``;
* ``op``: the :class:`~explorer.physics.Operator` that produced it (mask + coil maps);
* ``x``: complex image ``(B, H, W)``, in the caller's grad mode: how it depends on ``y`` is declared
  by the method's :class:`Capabilities` (``gradient``).

Methods that fit parameters (un-trained networks) enable gradients internally with
``torch.enable_grad()``. Long-running methods accept ``progress(step, total, info) -> bool | None``; returning
True asks them to stop early (they then return their best estimate so far). Progress is reported
at most about :data:`PROGRESS_INTERVAL` apart (and at the last step): reporting may synchronise a GPU.
Fits put ``"loss"`` in ``info`` and ``"history"``: the ``(step, loss)`` pairs since the previous report.

Every caller (the engine, the app, the CLI, the robustness loops) branches on a method's
declared :class:`Capabilities`, never on its name or family. A method that owns trainable
weights (``capabilities.weights``) builds a :class:`NetworkReconstructor`: its ``torch.nn.Module``
is reachable and the reconstructor can be rebuilt around another module (e.g. a trainable copy).

Methods register with :func:`register`; configs are frozen dataclasses whose fields
carry ``metadata={"help": ..., "min": ..., "max": ..., "choices": ...}``. One method can run several
times in one comparison as :class:`MethodInstance` s (label + method + config).

This layer never imports the orchestration layer (:mod:`explorer.engine`).
"""

from __future__ import annotations

import dataclasses
import re
import time
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import nn

from explorer.errors import ExplorerError
from explorer.physics import Operator

ProgressFn = Callable[[int, int, dict], "bool | None"]

PROGRESS_INTERVAL = 0.2  # seconds between progress reports of an iterative method

GRADIENTS: tuple[str, ...] = ("exact", "data_consistency", "none")
COSTS: tuple[str, ...] = ("instant", "interactive", "long")


@dataclass(frozen=True)
class Capabilities:
    """What a method declares about itself; callers branch on these fields only.

    Attributes:
        gradient: how the output depends on ``y`` under autograd. ``"exact"``: the derivative of
            the whole reconstruction (unrolled iterations, network end to end); ``"data_consistency"``:
            only through a final data-consistency step (a per-slice fit is not differentiated; the
            robustness loops then optimise the fit jointly instead: its reconstructor is a
            :class:`FitReconstructor`); ``"none"``: not differentiable.
        weights: the method owns trained weights (its reconstructor is a :class:`NetworkReconstructor`).
        batches: reconstructing several slices in one call is cheaper than one by one.
        cost: ``"instant"`` (well under a second: safe to compute before asked), ``"interactive"``
            (seconds), ``"long"`` (a per-slice fit of a minute or more: reports a loss, can be stopped).
        adapt_lr: Adam learning rate of test-time training of the weights (methods with ``weights``; the
            TTT paper's: U-net 1e-5, VarNet 1e-4), or ``None``.
    """

    gradient: str = "exact"
    weights: bool = False
    batches: bool = False
    cost: str = "interactive"
    adapt_lr: float | None = None

    def __post_init__(self) -> None:
        if self.gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {self.gradient!r}")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {COSTS}, got {self.cost!r}")

    @property
    def differentiable(self) -> bool:
        """Whether autograd through ``recon`` gives the reconstruction's exact derivative w.r.t. ``y``."""
        return self.gradient == "exact"

    @property
    def long(self) -> bool:
        """A long per-slice fit (shows a loss curve; worth a Stop button)."""
        return self.cost == "long"


class Reconstructor(Protocol):
    """``recon(y (B, C, H, W), op, progress=None) -> x (B, H, W) complex``."""

    def __call__(self, y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor: ...


@runtime_checkable
class NetworkReconstructor(Protocol):
    """The reconstructor of a method with trained weights (``Capabilities.weights``).

    Attributes:
        module: the ``torch.nn.Module`` it runs (for a shared cached model: frozen, eval mode).

    Methods:
        with_module(module): the same reconstructor around another module (e.g. a deep copy being
            adapted at test time); the module must sit on the device of ``y``.
        kspace(y, op): the predicted multi-coil k-space ``(B, C, H, W)`` (not masked) whose coil
            images the method's output summarises, so ``||M (y - kspace(y, op))||`` is a
            self-supervised loss for every network (see each method for how it is formed).
    """

    module: nn.Module

    def __call__(self, y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor: ...

    def with_module(self, module: nn.Module) -> "NetworkReconstructor": ...

    def kspace(self, y: torch.Tensor, op: Operator) -> torch.Tensor: ...


class FitGenerator(Protocol):
    """A per-slice fit's network at its seeded start (see :class:`FitReconstructor`).

    Attributes:
        module: the generator network (trainable; optimise its parameters).
        lr: the fit's learning rate; iterations: the fit's number of steps.

    Methods:
        coil_images(): complex coil images ``(C, H, W)`` in the units of ``y``, differentiable
            w.r.t. the module's parameters.
    """

    module: nn.Module
    lr: float
    iterations: int

    def coil_images(self) -> torch.Tensor: ...


@runtime_checkable
class FitReconstructor(Protocol):
    """The reconstructor of a method whose output depends on ``y`` only through data consistency
    (``Capabilities.gradient == "data_consistency"``): its fit can be optimised jointly with something else.

    Methods:
        generator(y, op): the fit's network for measurements ``y`` ``(1, C, H, W)`` at its seeded start.
        data_consistency(coils, y, op): ``x (B, H, W)``: sampled k-space of ``coils`` ``(B, C, H, W)``
            replaced by ``y``, coils combined (as the method's output).
    """

    def __call__(self, y: torch.Tensor, op: Operator, progress: ProgressFn | None = None) -> torch.Tensor: ...

    def generator(self, y: torch.Tensor, op: Operator) -> FitGenerator: ...

    def data_consistency(self, coils: torch.Tensor, y: torch.Tensor, op: Operator) -> torch.Tensor: ...


class Throttle:
    """Decides when an iterative method reports progress: at most every ``interval`` seconds, and at the last step.

    Reporting turns tensors into floats (a GPU synchronisation), so a method computes its
    report only when :meth:`due` says so; without a callback nothing is ever due.
    """

    def __init__(self, progress: ProgressFn | None, interval: float | None = None):
        self.progress, self._last = progress, float("-inf")
        self.interval = PROGRESS_INTERVAL if interval is None else interval

    def due(self, step: int, total: int) -> bool:
        """Whether to report step ``step`` of ``total`` now."""
        if self.progress is None:
            return False
        now = time.perf_counter()
        if step >= total or step <= 1 or now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def report(self, step: int, total: int, info: dict) -> bool:
        """Call the callback; True if it asks to stop."""
        return bool(self.progress is not None and self.progress(step, total, info))


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
        capabilities: :class:`Capabilities` (what callers may branch on).
        weights_file: ``config -> path | None``: the weights file a configured run reads (provenance).
        data_notes: ``(config, problem) -> list[str]``: what the user should know about running this
            configuration on that problem (e.g. a trained network meeting data unlike its training data).
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
    capabilities: Capabilities = field(default_factory=Capabilities)
    weights_file: Callable[[Any], Any] = lambda config: None
    data_notes: Callable[[Any, Any], list[str]] = lambda config, problem: []

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
             cache_token: Callable[[Any], Any] = lambda config: None,
             capabilities: Capabilities | None = None,
             weights_file: Callable[[Any], Any] = lambda config: None,
             data_notes: Callable[[Any, Any], list[str]] = lambda config, problem: []):
    """Decorator registering ``factory(config) -> Reconstructor`` under ``name`` (see :class:`MethodSpec`)."""

    def deco(factory):
        if name in REGISTRY:
            raise RuntimeError(f"method {name!r} registered twice")
        REGISTRY[name] = MethodSpec(name, label, family, config_cls, factory, description, needs_maps, anatomy_defaults,
                                    describe, cache_token, capabilities or Capabilities(), weights_file, data_notes)
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


LABEL_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 _.+#()-]{0,62}[A-Za-z0-9_.+#()-])?")


@dataclass(frozen=True)
class MethodInstance:
    """One configured run of a method in a comparison: ``label`` (unique in it), method ``name``, ``config``.

    Frozen and picklable; the same method can appear several times under different labels
    (e.g. VarNet with the knee checkpoint beside VarNet with the brain checkpoint).
    """

    label: str
    name: str
    config: Any = None

    def __post_init__(self) -> None:
        if not LABEL_PATTERN.fullmatch(self.label or ""):
            raise ExplorerError(f"method label {self.label!r} must be 1-64 letters, digits, spaces or _.+#()- "
                                "(starting with a letter or digit)")
        spec = get_method(self.name)
        if self.config is None:
            object.__setattr__(self, "config", spec.config_cls())
        elif not isinstance(self.config, spec.config_cls):
            raise ExplorerError(f"{self.label}: config {type(self.config).__name__} is not a {spec.config_cls.__name__}")

    @property
    def spec(self) -> MethodSpec:
        """The registered :class:`MethodSpec`."""
        return get_method(self.name)

    @property
    def capabilities(self) -> Capabilities:
        return self.spec.capabilities

    @property
    def display(self) -> str:
        """The label, or the method's display name when the label is just the registry name."""
        return self.spec.label if self.label == self.name else self.label

    def build(self) -> Reconstructor:
        """The reconstructor of this instance."""
        return self.spec.factory(self.config)

    @classmethod
    def of(cls, name: str, values: dict[str, Any] | None = None, anatomy: str | None = None,
           label: str | None = None) -> "MethodInstance":
        """An instance of method ``name`` with parameter ``values`` over the defaults for ``anatomy``."""
        spec = get_method(name)
        return cls(label or name, name, spec.make_config(values, anatomy=anatomy))


BUILTIN_MODULES: tuple[str, ...] = (
    "explorer.recon.classical", "explorer.recon.sparse", "explorer.recon.untrained", "explorer.recon.unet",
    "explorer.recon.varnet",
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

"""Trained-network kinds: one registered :class:`NetworkKind` per network, holding everything the product needs of it.

A kind says how to build the network and recognise its weights (checkpoints), which reconstructor runs it and with
which parameters (the method of the same name), its shipped checkpoints and the command that trains them, and how
it is trained (examples, loss, learning rates, architecture flags). Checkpoint files, the model store, training, the
zoo and the ``train`` command iterate :func:`network_kinds`; none of them names a network.

A kind registers with :func:`explorer.recon.trained.register_network`, which also registers its method. The built-in
kinds are fastMRI's U-net (:mod:`explorer.recon.unet`) and end-to-end VarNet (:mod:`explorer.recon.varnet`). Adding a
third: one module beside them and its name in :data:`explorer.recon.base.BUILTIN_MODULES` (and, optionally, its
shipped checkpoints under ``assets/checkpoints/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

import torch
from torch import nn

from explorer.errors import ExplorerError
from explorer.recon.base import available_methods


class Example(NamedTuple):
    """One masked training slice (batch dim 1), on the training device.

    Attributes:
        y: masked k-space ``(1, C, H, W)`` complex64.
        mask: bool ``(1, 1, H|1, W)``.
        image: the network's image input ``(1, h, w)``, or ``None`` for a network fed with k-space.
        target: ``(1, h, w)``: what the kind's loss compares the output with (e.g. the normalised reference).
        max_value: ``(1,)`` the SSIM data range.
        maps: ESPIRiT maps ``(1, C, H, W)`` for the self-supervised term (multicoil data), else ``None``.
    """

    y: torch.Tensor
    mask: torch.Tensor
    image: torch.Tensor | None
    target: torch.Tensor
    max_value: torch.Tensor
    maps: torch.Tensor | None = None


#: ``(y, mask, crop, target, max_value, maps) -> Example``: a kind's training example from a masked slice.
ExampleFn = Callable[[torch.Tensor, torch.Tensor, tuple[int, int], torch.Tensor, torch.Tensor, "torch.Tensor | None"],
                     Example]
#: ``device -> loss``, ``loss(model, examples of one shape) -> scalar``: a kind's supervised training loss.
CriterionFn = Callable[[torch.device], Callable[[nn.Module, list[Example]], torch.Tensor]]


@dataclass(frozen=True)
class Shipped:
    """How a kind's shipped checkpoints (``assets/checkpoints/<kind>_<anatomy>.pt``) are trained: the architecture
    and schedule flags of ``python -m explorer train``, and extra flags per anatomy."""

    arch: str
    schedule: str
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkKind:
    """One trained network.

    Attributes:
        name: the method name, the checkpoint's ``model`` field and ``train --model``; label: display name.
        description: the method's one line.
        build: ``**arch -> nn.Module`` (freshly initialised).
        default_arch: constructor kwargs and their defaults; official_arch: the published architecture.
        recognised: the kwargs a state dict determines (the others, e.g. dropout, leave no trace in the weights).
        recognise: ``state dict -> arch kwargs``, or ``None`` when the weights are not this kind's (keys as the
            network names them, wrappers stripped).
        key_prefixes: top-level key prefixes of this kind's state dict; lightning_prefix: the attribute fastMRI's
            Lightning module keeps it under (``"unet."``), stripped on loading.
        recon: the reconstructor class, ``recon(module, crop)`` (a :class:`~explorer.recon.base.NetworkReconstructor`).
        config: its method's frozen config class (fields ``checkpoint`` and ``crop``).
        adapt_lr: Adam learning rate of test-time training; train_lr: of training (fastMRI's defaults).
        loss_name: the supervised loss, as model cards name it.
        flags: ``train`` command flags ``{flag: (kwarg, help)}`` setting architecture kwargs.
        shipped: how the shipped checkpoints are trained.
        tiny: a tiny architecture (tests, smoke runs).
        multicoil_only: trains on multicoil data only; column_masks_only: trains with 1D (column) masks only.
        input_side: ``arch -> (pooling layers, "reference" | "k-space")``: the side that must hold ``2^pools`` pixels.
        example: builds a training example (:data:`ExampleFn`); criterion: its supervised loss (:data:`CriterionFn`).
    """

    name: str
    label: str
    description: str
    build: Callable[..., nn.Module]
    default_arch: Mapping[str, Any]
    official_arch: Mapping[str, Any]
    recognised: tuple[str, ...]
    recognise: Callable[[dict[str, torch.Tensor]], "dict[str, Any] | None"]
    key_prefixes: tuple[str, ...]
    lightning_prefix: str
    recon: type
    config: type
    adapt_lr: float
    train_lr: float
    loss_name: str
    flags: Mapping[str, tuple[str, str]]
    shipped: Shipped
    tiny: Mapping[str, Any]
    input_side: Callable[[Mapping[str, Any]], tuple[int, str]]
    example: ExampleFn
    criterion: CriterionFn
    multicoil_only: bool = False
    column_masks_only: bool = False


NETWORKS: dict[str, NetworkKind] = {}


def add_network(kind: NetworkKind) -> NetworkKind:
    """Put ``kind`` in the registry (use :func:`explorer.recon.trained.register_network`, which also registers its
    method).

    Raises:
        ValueError: the name is taken.
    """
    if kind.name in NETWORKS:
        raise ValueError(f"network kind {kind.name!r} registered twice")
    NETWORKS[kind.name] = kind
    return kind


def network_kinds() -> list[NetworkKind]:
    """Every registered network kind, in registration order."""
    available_methods()  # imports the modules of the built-in kinds
    return list(NETWORKS.values())


def kind_names() -> tuple[str, ...]:
    """The registered kinds' names."""
    return tuple(k.name for k in network_kinds())


def get_network(name: str) -> NetworkKind:
    """The registered kind ``name``.

    Raises:
        ExplorerError: unknown kind (the message lists them).
    """
    kinds = {k.name: k for k in network_kinds()}
    if name not in kinds:
        raise ExplorerError(f"unknown model kind {name!r}; choose one of {', '.join(kinds)}")
    return kinds[name]


def kind_of_config(config: Any) -> NetworkKind:
    """The kind whose method is configured by ``config``."""
    return next(k for k in network_kinds() if isinstance(config, k.config))


__all__ = ["CriterionFn", "Example", "ExampleFn", "NETWORKS", "NetworkKind", "Shipped", "add_network", "get_network",
           "kind_names", "kind_of_config", "network_kinds"]

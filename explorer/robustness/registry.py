"""The experiment registry: what a study needs of each robustness experiment, registered once by the experiment.

An :class:`Experiment` declares its spec settings (keys, help and a check), which method instances take part
(from their capabilities, never their names), the groups of slices it runs on (a shift pair has two), how one unit
runs (a :class:`~explorer.engine.tasks.Task` and the settings in, records out), its summary rows, its report
sections and its page in the app. The study (:mod:`explorer.study`), its report, the Study page, the app's
navigation and the CLI iterate :func:`experiments`; none of them names an experiment.

Registering one (a new module, or a test)::

    register(Experiment(name="noise", title="Noise", description="...", settings={"sigma": "noise level"},
                        check=check_noise, run=run_noise, summary=noise_rows))
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from explorer.data.selection import DataItem
from explorer.engine.tasks import ProblemCache, Record, Task
from explorer.errors import ExplorerError
from explorer.recon.base import MethodInstance


@dataclass(frozen=True)
class Section:
    """One part of a study report (HTML and the Study page render it the same way).

    Attributes:
        title: heading; caption: a line under it (settings, protocol, what the axes mean).
        figure: a plotly figure or ``None``; tables: ``(caption, rows)`` pairs, rows plain dicts.
    """

    title: str
    figure: Any = None
    tables: tuple[tuple[str, list[dict]], ...] = ()
    caption: str = ""


@dataclass(frozen=True)
class Verdict:
    """One of the papers' conclusions beside what a run measured.

    Attributes:
        claim: the conclusion in the papers' words (the talk's conclusions slide).
        verdict: ``"agrees"``, ``"disagrees"`` or ``"undecided"``.
        measured: the numbers it rests on (one line).
        rule: the rule that turned them into the verdict, fixed before any run.
    """

    claim: str
    verdict: str
    measured: str
    rule: str

    def row(self) -> dict:
        return {"the papers' conclusion": self.claim, "this run": self.verdict, "measured": self.measured,
                "rule": self.rule}


def judge(value: float | None, agrees: Callable[[float], bool], disagrees: Callable[[float], bool]) -> str:
    """``"agrees"`` / ``"disagrees"`` by the two rules, ``"undecided"`` when neither holds or there is no value."""
    if value is None or not math.isfinite(value):
        return "undecided"
    return "agrees" if agrees(value) else "disagrees" if disagrees(value) else "undecided"


@dataclass(frozen=True)
class Page:
    """An experiment's page in the app: the script (``"pages/attack.py"``), its navigation title and icon.

    ``rows``: the page a study row of the experiment opens on, when not this one. That page offers the slice and mask
    widgets ``<page>.slice``, ``<page>.mask.*`` and a method picker: several methods (``<page>.methods``), or one
    (``<page>.method``, with ``picks_one``).
    """

    path: str
    title: str
    icon: str
    rows: str | None = None
    picks_one: bool = False

    @property
    def stem(self) -> str:
        """The page's widget-key prefix (``"attack"`` for ``pages/attack.py``)."""
        return self.path.rsplit("/", 1)[-1].removesuffix(".py")

    @property
    def row_page(self) -> str:
        """The page a study row opens on."""
        return self.rows or self.path


@dataclass(frozen=True)
class Group:
    """Slices an experiment runs on: ``role`` (``""``, or e.g. ``"id"`` / ``"ood:<set>"`` for a shift pair), its data
    (``None``: the experiment's) and the settings its units carry (``None``: the experiment's; ``{}`` lets units be
    shared between experiments, as a shift's in-distribution units are shared by every pair)."""

    role: str = ""
    data: tuple[DataItem, ...] | None = None
    settings: dict | None = None


def _everyone(instance: MethodInstance) -> bool:
    return True


def _own_data(settings: dict) -> tuple[Group, ...]:
    return (Group(),)


def _nothing(records: Sequence[Record]) -> list:
    return []


def _no_check(settings: dict) -> None:
    return None


@dataclass(frozen=True)
class Experiment:
    """A robustness experiment as a study sees it.

    Attributes:
        name: the spec key (``experiments: [- attack: {...}]``) and the results table's ``experiment`` column.
        title: display name; description: one line (the ``experiments`` command, the report).
        settings: ``{key: help}`` of the settings a spec may give (besides ``data`` and ``methods``).
        check: ``settings -> None``, raising :class:`~explorer.errors.ExplorerError` on a bad value (unknown keys
            are refused before it is called).
        check_labels: ``(settings, labels of the instances it runs) -> None``, for settings that name instances.
        run: ``(task, settings, problems) -> [Record]``: one unit (a slice, a mask, a method instance).
        takes: ``instance -> bool``: whether a method instance takes part (from its capabilities).
        groups: ``settings -> (Group, ...)``: the slice groups it runs on (default: its data, no role).
        pinned: configure every instance once, on the first in-distribution volume (data-dependent defaults such as
            a tuned lambda or checkpoint ``auto`` then keep that value on every group).
        summary: ``records -> rows``: its summary table (records of this experiment only, failed ones included).
        report: ``records -> [Section]``: its part of the report (figures and tables).
        conclusions: ``records -> [Verdict]``: the papers' conclusions this experiment tests, each judged on its
            records by a rule fixed in advance (the report's conclusions page).
        page: its page in the app, or ``None``.
    """

    name: str
    title: str
    description: str
    run: Callable[[Task, dict, ProblemCache], list[Record]]
    settings: Mapping[str, str] = field(default_factory=dict)
    check: Callable[[dict], None] = _no_check
    check_labels: Callable[[dict, Sequence[str]], None] | None = None
    takes: Callable[[MethodInstance], bool] = _everyone
    groups: Callable[[dict], tuple[Group, ...]] = _own_data
    pinned: bool = False
    summary: Callable[[Sequence[Record]], list[dict]] = _nothing
    report: Callable[[Sequence[Record]], list[Section]] = _nothing
    conclusions: Callable[[Sequence[Record]], list["Verdict"]] = _nothing
    page: Page | None = None

    def validate(self, settings: dict, where: str, labels: Sequence[str] = ()) -> None:
        """Refuse unknown keys, then :attr:`check` the values (and :attr:`check_labels` against the instance
        ``labels``); errors name ``where``.

        Raises:
            ExplorerError: one line.
        """
        extra = set(settings) - set(self.settings)
        if extra:
            allowed = f"; use {', '.join(sorted(self.settings))}" if self.settings else ""
            raise ExplorerError(f"{where}: unknown {self.name} setting {sorted(extra)[0]!r}{allowed}")
        try:
            self.check(settings)
            if self.check_labels is not None:
                self.check_labels(settings, list(labels))
        except TypeError as exc:
            raise ExplorerError(f"{where}: bad {self.name} setting ({exc})") from None
        except ExplorerError as exc:
            raise ExplorerError(f"{where}: {exc}") from None


_EXPERIMENTS: dict[str, Experiment] = {}

#: The modules that register the built-in experiments (each registers on import), in navigation order.
BUILTIN_MODULES: tuple[str, ...] = (
    "explorer.robustness.evaluate", "explorer.robustness.attack", "explorer.robustness.features",
    "explorer.robustness.shift", "explorer.robustness.filtered", "explorer.robustness.ttt",
)


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry (returns it).

    Raises:
        ValueError: the name is taken.
    """
    if experiment.name in _EXPERIMENTS:
        raise ValueError(f"experiment {experiment.name!r} registered twice")
    _EXPERIMENTS[experiment.name] = experiment
    return experiment


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def experiments() -> list[Experiment]:
    """Every registered experiment: the built-in ones in :data:`BUILTIN_MODULES` order (whatever imported them
    first), then the others in registration order."""
    _load_builtin()
    rank = {module: i for i, module in enumerate(BUILTIN_MODULES)}
    return sorted(_EXPERIMENTS.values(), key=lambda e: rank.get(e.run.__module__, len(rank)))


def get_experiment(name: str) -> Experiment:
    """The registered experiment ``name``.

    Raises:
        ExplorerError: no such experiment (the message lists them).
    """
    _load_builtin()
    if name not in _EXPERIMENTS:
        raise ExplorerError(f"unknown experiment {name!r}; choose one of {', '.join(e.name for e in experiments())}")
    return _EXPERIMENTS[name]


def mean_sd(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and standard deviation of the finite values (NaN, NaN when there are none): summaries over slices."""
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return (float(a.mean()), float(a.std())) if a.size else (float("nan"), float("nan"))


def records_of(records: Sequence[Record], name: str, ok: bool = True) -> list[Record]:
    """The records of experiment ``name`` (``ok``: without an error)."""
    return [r for r in records if r.experiment == name and not (ok and r.error)]


__all__ = ["BUILTIN_MODULES", "Experiment", "Group", "Page", "Section", "Verdict", "experiments", "get_experiment",
           "judge", "mean_sd", "records_of", "register"]

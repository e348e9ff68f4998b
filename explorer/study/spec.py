"""Study specifications: a YAML (or JSON) file -> a validated :class:`StudySpec`, every mistake a one-line error.

A spec lists what to measure::

    data:                          # files, directories (every .h5 under them) or embedded samples
      - source: sample:knee
        slices: [1, 2, 3]          # default: the middle slice; "all" for every slice
    masks:                         # default: fastMRI's random mask, 4x, seed 0
      - {type: random, acceleration: 4, center_fraction: 0.08, seed: 0}
    methods:                       # a method name, LABEL=METHOD, or {label, method, config}
      - zero_filled
      - {label: l1_small, method: l1, config: {lam: 0.002}}
      - unet
    metric: fastmri                # or volume, paper (explorer.metrics.METRIC_DEFINITIONS); named in every row
    experiments:                   # default: [clean]; any registered experiment (python -m explorer experiments)
      - clean
      - attack: {eps: [0.02, 0.04, 0.08], steps: 20, objective: clean}
      - features: {count: 3, sizes: [3, 5], contrasts: [0.17], seed: 0}
      - shift: {ood: [{source: sample:brain}]}
      - ttt: {steps: 50, reference_checkpoint: brain, methods: [unet]}

Any experiment may name its own ``data``, ``methods`` and ``masks`` (same forms as the top level), replacing the
study's for that experiment (e.g. attacks on one slice, test-time training only for the networks, an acceleration
shift at 2x).

Paths are resolved against ``base`` (the spec file's folder) when relative, on the machine that runs each unit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer.data.selection import DataItem, parse_item
from explorer.errors import ExplorerError
from explorer.masks import MaskConfig
from explorer.metrics import METRIC_DEFINITIONS
from explorer.robustness.registry import get_experiment

_TOP = ("name", "data", "masks", "methods", "experiments", "metric")


@dataclass(frozen=True)
class MethodItem:
    """One method instance: ``label``, registry ``method``, ``config`` overrides (JSON-ready)."""

    label: str
    method: str
    config: tuple[tuple[str, Any], ...] = ()

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.config)


@dataclass(frozen=True)
class Experiment:
    """An experiment of the spec: its kind (a registered experiment, :mod:`explorer.robustness.registry`), settings
    (a JSON string, hashable), and its own data, methods and masks when it names them (else the study's)."""

    kind: str
    settings: str = "{}"
    data: tuple[DataItem, ...] | None = None
    methods: tuple["MethodItem", ...] | None = None
    masks: tuple[MaskConfig, ...] | None = None

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.settings)


@dataclass(frozen=True)
class StudySpec:
    """A validated study (see the module docstring)."""

    data: tuple[DataItem, ...]
    methods: tuple[MethodItem, ...]
    masks: tuple[MaskConfig, ...] = (MaskConfig(),)
    experiments: tuple[Experiment, ...] = (Experiment("clean"),)
    name: str = "study"
    metric: str = "fastmri"
    base: str = "."
    raw: dict = field(default_factory=dict, compare=False, hash=False)

    def resolve(self, source: str) -> str:
        """A data source as the workers open it: samples as they are, relative paths under :attr:`base`."""
        return DataItem(source).resolve(self.base)


MAX_SPEC_BYTES = 1_000_000  # a spec is a page of YAML; anything larger is a mistake or an attack
MAX_DEPTH = 8  # nesting of mappings and lists (a spec needs 5: experiments[i].shift.ood[j].source)
MAX_LIST = 64  # items of a list inside the spec's settings (budgets, sizes, methods, masks, experiments)
MAX_DATA = 10_000  # entries of a data list


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec file (YAML or JSON).

    Raises:
        ExplorerError: unreadable file, not YAML, or any invalid entry (one line naming it).
    """
    path = Path(path).expanduser()
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise ExplorerError(f"{path.name} is larger than {MAX_SPEC_BYTES // 1000} kB; a study spec is a short "
                                "YAML file")
        data = path.read_bytes()
    except OSError as exc:
        raise ExplorerError(f"cannot read the study spec {path} ({exc.strerror or exc})") from None
    return parse_spec(spec_from_text(data, path.name), base=str(path.parent.resolve()))


def spec_from_text(data: bytes | str, name: str = "the spec") -> Any:
    """YAML (or JSON) text -> Python objects, refusing what would hang or crash the parser.

    Raises:
        ExplorerError: over :data:`MAX_SPEC_BYTES`, not UTF-8, nested deeper than :data:`MAX_DEPTH` brackets, or
            not valid YAML (with its line).
    """
    import yaml  # noqa: PLC0415

    if isinstance(data, bytes):
        if len(data) > MAX_SPEC_BYTES:
            raise ExplorerError(f"{name} is larger than {MAX_SPEC_BYTES // 1000} kB; a study spec is a short YAML file")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ExplorerError(f"{name} is not UTF-8 text (byte {exc.start})") from None
    elif len(data.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise ExplorerError(f"{name} is larger than {MAX_SPEC_BYTES // 1000} kB; a study spec is a short YAML file")
    depth = deepest = 0
    for char in data:  # flow-style nesting ([ and {) is what makes YAML's recursive parser deep
        depth += (char in "[{") - (char in "]}")
        deepest = max(deepest, depth)
    if deepest > 2 * MAX_DEPTH:
        raise ExplorerError(f"{name} nests brackets {deepest} deep; a study spec needs at most {MAX_DEPTH}")
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ExplorerError(f"{name} is not valid YAML{where}") from None
    except RecursionError:
        raise ExplorerError(f"{name} nests too deep; a study spec needs at most {MAX_DEPTH} levels") from None


def check_plain(value: Any, where: str, depth: int = 0, seen: set[int] | None = None) -> None:
    """Refuse what no spec entry takes: nesting over :data:`MAX_DEPTH`, lists over :data:`MAX_LIST` items (data
    lists: :data:`MAX_DATA`), numbers that are not finite, keys that are not strings, values YAML builds
    beyond mappings, lists, strings, numbers, booleans and null (dates, sets, binary).

    Raises:
        ExplorerError: one line naming the entry.
    """
    import math  # noqa: PLC0415

    if depth > MAX_DEPTH:
        raise ExplorerError(f"{where} nests deeper than {MAX_DEPTH} levels")
    seen = set() if seen is None else seen
    if isinstance(value, (dict, list)):
        if id(value) in seen:  # a YAML alias: the same object again (checked once, so aliases cannot explode)
            return
        seen.add(id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ExplorerError(f"{where or 'the spec'}: key {key!r} must be a string")
            check_plain(item, f"{where}.{key}" if where else key, depth + 1, seen)
    elif isinstance(value, list):
        limit = MAX_DATA if where.endswith("data") else MAX_LIST
        if len(value) > limit:
            raise ExplorerError(f"{where} has {len(value)} entries; at most {limit}")
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]", depth + 1, seen)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ExplorerError(f"{where} must be a finite number, got {value}")
    elif value is not None and not isinstance(value, (str, int, bool)):
        raise ExplorerError(f"{where} must be a mapping, list, string or number, got a {type(value).__name__}")


def parse_spec(raw: Any, base: str = ".") -> StudySpec:
    """Validate a spec already parsed into Python objects (see :func:`load_spec`)."""
    if not isinstance(raw, dict):
        raise ExplorerError("a study spec must be a mapping with data, methods and experiments")
    check_plain(raw, "")
    unknown = [k for k in raw if k not in _TOP]
    if unknown:
        raise ExplorerError(f"unknown study spec key {unknown[0]!r}; use {', '.join(_TOP)}")
    data = tuple(parse_item(item, f"data[{i}]") for i, item in enumerate(_list(raw.get("data"), "data")))
    methods = tuple(_method_item(item, f"methods[{i}]") for i, item in enumerate(_list(raw.get("methods"), "methods")))
    labels = [m.label for m in methods]
    dup = next((label for label in labels if labels.count(label) > 1), None)
    if dup:
        raise ExplorerError(f"method label {dup!r} is used twice; give each instance its own label")
    masks = tuple(_mask(item, f"masks[{i}]") for i, item in enumerate(_list(raw.get("masks"), "masks", required=False)))
    experiments = tuple(_experiment(item, f"experiments[{i}]", labels)
                        for i, item in enumerate(_list(raw.get("experiments"), "experiments", required=False)))
    name = raw.get("name", "study")
    if not isinstance(name, str) or not name.strip():
        raise ExplorerError("name must be a non-empty string")
    metric = raw.get("metric", "fastmri")
    if not isinstance(metric, str) or metric not in METRIC_DEFINITIONS:
        raise ExplorerError(f"metric must be one of {', '.join(METRIC_DEFINITIONS)}, got {metric!r}")
    return StudySpec(data, methods, masks or (MaskConfig(),), experiments or (Experiment("clean"),), name.strip(),
                     metric, base, raw)


def _list(value: Any, what: str, required: bool = True) -> list:
    if value is None:
        if required:
            raise ExplorerError(f"the study spec needs a non-empty list {what!r}")
        return []
    if not isinstance(value, list) or (required and not value):
        raise ExplorerError(f"{what} must be a {'non-empty ' if required else ''}list")
    return value


def _method_item(item: Any, where: str) -> MethodItem:
    from explorer.recon.base import available_methods, get_method  # noqa: PLC0415

    if isinstance(item, str):
        label, sep, name = item.partition("=")
        item = {"label": label, "method": name} if sep else {"method": item}
    if not isinstance(item, dict) or not isinstance(item.get("method"), str):
        raise ExplorerError(f"{where} must be a method name, LABEL=METHOD, or a mapping with 'method'")
    extra = set(item) - {"label", "method", "config"}
    if extra:
        raise ExplorerError(f"{where}: unknown key {sorted(extra)[0]!r}; use label, method, config")
    name = item["method"].strip()
    names = [m.name for m in available_methods()]
    if name not in names:
        raise ExplorerError(f"{where}: unknown method {name!r}; choose one of {', '.join(names)}")
    label = str(item.get("label") or name).strip()
    config = item.get("config") or {}
    if not isinstance(config, dict):
        raise ExplorerError(f"{where}.config must be a mapping of parameters")
    try:
        get_method(name).make_config(config)  # names and values checked now, before any work
    except ExplorerError as exc:
        raise ExplorerError(f"{where}: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:  # a value of the wrong kind that the config did not name
        raise ExplorerError(f"{where}.config: a value of the wrong type ({_first_line(exc)})") from None
    return MethodItem(label, name, tuple(sorted(config.items())))


def _mask(item: Any, where: str) -> MaskConfig:
    if not isinstance(item, dict):
        raise ExplorerError(f"{where} must be a mapping (type, acceleration, center_fraction, seed)")
    extra = set(item) - {"type", "acceleration", "center_fraction", "seed"}
    if extra:
        raise ExplorerError(f"{where}: unknown key {sorted(extra)[0]!r}; use type, acceleration, center_fraction, seed")
    try:
        return MaskConfig(str(item.get("type", "random")), float(item.get("acceleration", 4.0)),
                          None if item.get("center_fraction") is None else float(item["center_fraction"]),
                          int(item.get("seed", 0)))
    except (TypeError, ValueError):
        raise ExplorerError(f"{where}: acceleration and center_fraction must be numbers, seed an integer") from None
    except ExplorerError as exc:
        raise ExplorerError(f"{where}: {exc}") from None


def _experiment(item: Any, where: str, labels: list[str]) -> Experiment:
    if isinstance(item, str):
        item = {item: {}}
    if not isinstance(item, dict) or len(item) != 1:
        raise ExplorerError(f"{where} must be an experiment name or a one-key mapping {{name: settings}}")
    kind, settings = next(iter(item.items()))
    try:
        entry = get_experiment(str(kind))
    except ExplorerError as exc:
        raise ExplorerError(f"{where}: {exc}") from None
    if not isinstance(settings or {}, dict):
        raise ExplorerError(f"{where}: the settings of {kind} must be a mapping")
    settings = dict(settings or {})
    data = methods = masks = None
    if "masks" in settings:
        masks = tuple(_mask(m, f"{where}.masks[{i}]") for i, m in enumerate(_list(settings.pop("masks"), f"{where}.masks")))
    if "data" in settings:
        data = tuple(parse_item(d, f"{where}.data[{i}]") for i, d in enumerate(_list(settings.pop("data"),
                                                                                    f"{where}.data")))
    if "methods" in settings:
        methods = tuple(_method_item(m, f"{where}.methods[{i}]")
                        for i, m in enumerate(_list(settings.pop("methods"), f"{where}.methods")))
    try:
        entry.validate(settings, where, [m.label for m in methods] if methods else labels)
    except ExplorerError as exc:
        raise ExplorerError(f"{where}: {exc}" if not str(exc).startswith(where) else str(exc)) from None
    except (TypeError, ValueError, OverflowError) as exc:  # a value of the wrong kind that the check did not name
        raise ExplorerError(f"{where}: a setting of {entry.name} has the wrong type ({_first_line(exc)})") from None
    return Experiment(entry.name, json.dumps(settings, sort_keys=True), data, methods, masks)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["MAX_DATA", "MAX_DEPTH", "MAX_LIST", "MAX_SPEC_BYTES", "DataItem", "Experiment", "MethodItem", "StudySpec",
           "check_plain", "load_spec", "parse_spec", "spec_from_text"]

"""Every long run of the app keys its request on the sidebar's metric definition, so changing the definition marks
a shown result stale (instead of labelling old numbers with the new definition), and the run scores with it."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import explorer.ui.runs as runs

#: Runs whose request needs no metric: the study scores with its spec's own ``metric:``.
OWN_METRIC = {"StudyRequest@explorer.ui.runs.study"}


def requests():
    for info in pkgutil.iter_modules(runs.__path__):
        module = importlib.import_module(f"explorer.ui.runs.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if name.endswith("Request") and cls.__module__ == module.__name__ and dataclasses.is_dataclass(cls):
                yield f"{name}@{module.__name__}", cls


def test_every_run_request_carries_the_metric_definition():
    found = dict(requests())
    assert len(found) >= 6
    missing = [key for key, cls in found.items()
               if key not in OWN_METRIC and "metric" not in {f.name for f in dataclasses.fields(cls)}]
    assert missing == []


def test_a_changed_metric_makes_a_request_differ():
    from explorer.masks import MaskConfig
    from explorer.ui.runs.shift import ShiftRequest

    base = ShiftRequest("sample:knee", "sample:brain", (), MaskConfig(), 2, 64)
    assert base.metric == "fastmri"
    assert dataclasses.replace(base, metric="volume") != base

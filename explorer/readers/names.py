"""What people read for a reader study's tasks and analysis tables: the same names and order on the Reader studies
page (:mod:`explorer.ui.reader_studies_results`) and in the study report (:mod:`explorer.readers.report`)."""

from __future__ import annotations

from typing import Iterable

from explorer.readers.tasks import AFC, DETECTION, LIKERT

#: Task -> its name.
TASK_NAMES = {LIKERT: "Likert ratings", AFC: "Two-alternative forced choice (2AFC)", DETECTION: "Lesion detection"}

#: Analysis table (:data:`explorer.readers.analysis.CAPTIONS`' names) -> its title.
TITLES = {
    "ratings": "Mean rating per method",
    "rating_differences": "Differences between methods",
    "preference": "2AFC preference per pair",
    "method_preference": "2AFC wins per method",
    "detection": "Detection: ROC and localisation-aware (LROC) areas per method",
    "agreement": "Inter-reader agreement",
    "icc": "Inter-reader agreement: intraclass correlation",
    "consistency": "Intra-reader consistency (repeated cases)",
    "metric_correlation": "Reader scores against the metrics",
    "metric_agreement": "2AFC choices against the metrics",
}

#: The tables shown first: what the readers saw per method, then whether the metrics predict it.
HEADLINE = ("ratings", "preference", "detection", "metric_correlation", "metric_agreement")


def display_order(tables: Iterable[str]) -> list[str]:
    """The analysis tables (names) in the order they are shown: :data:`HEADLINE` first, then the rest (differences,
    agreement, consistency) in their own order."""
    names = list(tables)
    return [k for k in HEADLINE if k in names] + [k for k in names if k not in HEADLINE]


__all__ = ["HEADLINE", "TASK_NAMES", "TITLES", "display_order"]

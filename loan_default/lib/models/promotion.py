"""Champion/challenger: a challenger takes over only when clearly better on held-out work.

Both models are scored on the same loans, from application months held out for both: after
each one's last fitted month (the end of its validation window, where it is calibrated), with
labels observed as of the decision. The challenger's out-of-time window is left out, so the
figure it reports stays an honest one: it is never used to choose. Too few such loans means no
promotion. Each decision keeps its evidence: the months, n, both ROC-AUCs and the paired
difference with a 95% DeLong interval.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from loan_default.lib.models.families import FAMILIES
from loan_default.lib.models.metrics import paired_roc_auc_difference
from loan_default.lib.models.registry import RegistryRecord
from loan_default.lib.months import add_months, month_range


@dataclass(frozen=True)
class Comparison:
    """Two models scored on the same held-out loans."""

    months: tuple[date, ...]
    n: int
    challenger_auc: float | None = None
    champion_auc: float | None = None
    difference: float | None = None
    difference_low: float | None = None
    difference_high: float | None = None

    @classmethod
    def of(
        cls, months: Sequence[date], y: np.ndarray, challenger: np.ndarray, champion: np.ndarray
    ) -> Comparison:
        if len(np.unique(y)) < 2:
            return cls(tuple(months), len(y))
        paired = paired_roc_auc_difference(y, challenger, champion)
        return cls(
            tuple(months),
            len(y),
            paired.first,
            paired.second,
            paired.difference,
            paired.low,
            paired.high,
        )


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def candidates(
    latest: Mapping[str, RegistryRecord], judged: Collection[str]
) -> list[RegistryRecord]:
    """The versions to judge: of each declared family, its newest version when it is a
    challenger not judged yet. A family the code no longer declares is not judged. The best
    validation ROC-AUC comes first: the order only decides which first version becomes
    champion unopposed."""
    found = [
        record
        for name in FAMILIES
        if (record := latest.get(name)) is not None
        and record.status == "challenger"
        and record.version_id not in judged
    ]
    return sorted(found, key=lambda r: -(r.metrics["validation"]["roc_auc"] or 0))


def last_fitted_month(windows: dict) -> date:
    """The newest application month a version is fitted or calibrated on."""
    return date.fromisoformat(windows["validation"][1])


def comparison_months(
    challenger_windows: dict, champion_windows: dict, newest_labeled_application: date
) -> list[date]:
    """Application months held out for both versions and labelled, without the challenger's
    out-of-time window."""
    first = add_months(max(map(last_fitted_month, (challenger_windows, champion_windows))), 1)
    oot_first, oot_last = (date.fromisoformat(m) for m in challenger_windows["oot"])
    return [
        m
        for m in month_range(first, add_months(newest_labeled_application, 1))
        if not oot_first <= m <= oot_last
    ]


def decide(comparison: Comparison | None, margin: float, min_loans: int) -> Decision:
    """Promote when there is no champion, or when the challenger beats it by `margin` ROC-AUC
    on at least `min_loans` held-out loans."""
    if comparison is None:
        return Decision(True, "no champion yet: the first model becomes champion")
    if comparison.n < min_loans:
        return Decision(
            False,
            f"too few loans held out for both: n={comparison.n} < minimum {min_loans}; "
            "the champion stays",
        )
    if comparison.difference is None:
        return Decision(False, "the held-out loans hold one class only: no ROC-AUC to compare")
    figures = (
        f"ROC-AUC {comparison.challenger_auc:.4f} vs champion {comparison.champion_auc:.4f} on "
        f"n={comparison.n} held-out loans: difference {comparison.difference:+.4f} "
        f"(95% CI {comparison.difference_low:+.4f} to {comparison.difference_high:+.4f})"
    )
    if comparison.difference >= margin:
        return Decision(True, f"{figures} >= margin {margin}")
    return Decision(False, f"{figures} < margin {margin}")

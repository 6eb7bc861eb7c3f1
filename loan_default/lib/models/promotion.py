"""Champion/challenger: a challenger takes over only when clearly better on held-out work.

Both models are scored on the same loans, from application months held out for both: after
each one's last fitted month (the end of its validation window, where it is calibrated), with
labels observed as of the decision. The challenger's out-of-time window is left out, so the
figure it reports stays an honest one: it is never used to choose.

The rule (`GateRule`, thresholds.json "promotion"): the newest `lookback_months` of those months
are pooled, and the challenger is promoted when the one-sided lower confidence bound of the
paired ROC-AUC difference (DeLong), difference - z(confidence) x standard error, is above
`margin`. A challenger not promoted is judged again as new held-out months are labelled
(`has_new_evidence`). Its false-promotion rate and power at this platform's scale are measured
by simulation in `gate_simulation`. Each decision keeps its evidence: the months, n, both
ROC-AUCs, the difference, its two-sided 95% DeLong interval and the one-sided lower bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from typing import TypeVar

import numpy as np

from loan_default.lib.models.families import FAMILIES
from loan_default.lib.models.metrics import paired_roc_auc_difference
from loan_default.lib.models.registry import RegistryRecord
from loan_default.lib.months import add_months, month_range

# A month: a date in the gate, a month index in the simulation.
Month = TypeVar("Month")


@dataclass(frozen=True)
class Comparison:
    """Two models scored on the same held-out loans: the ROC-AUCs, their paired difference
    (challenger - champion) with its two-sided 95% DeLong interval and standard error."""

    months: tuple[date, ...]
    n: int
    challenger_auc: float | None = None
    champion_auc: float | None = None
    difference: float | None = None
    difference_low: float | None = None
    difference_high: float | None = None
    standard_error: float | None = None

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
            paired.standard_error,
        )


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    # The one-sided lower bound judged against the margin (None when nothing was compared).
    lower_bound: float | None = None


@dataclass(frozen=True)
class GateRule:
    """Promote when the paired ROC-AUC difference, pooled over the newest `lookback_months`
    held-out months, clears `margin` with its one-sided lower bound at `confidence`."""

    margin: float
    confidence: float
    lookback_months: int
    # Decisions on held-out loans a challenger gets before it stops being a candidate.
    max_decisions: int = 3

    def __post_init__(self) -> None:
        number = (int, float)
        if isinstance(self.margin, bool) or not (
            isinstance(self.margin, number) and math.isfinite(self.margin)
        ):
            raise ValueError(f"promotion margin must be a number, got {self.margin!r}")
        if self.margin < 0:
            raise ValueError(
                f"promotion margin must be >= 0, got {self.margin}: a negative margin "
                "promotes a challenger that may be worse than the champion"
            )
        if isinstance(self.confidence, bool) or not (
            isinstance(self.confidence, number) and 0.5 < self.confidence < 1
        ):
            raise ValueError(
                f"promotion confidence must lie strictly between 0.5 and 1, got {self.confidence!r}"
            )
        if isinstance(self.lookback_months, bool) or not isinstance(self.lookback_months, int):
            raise ValueError(
                f"promotion lookback_months must be an integer, got {self.lookback_months!r}"
            )
        if self.lookback_months < 1:
            raise ValueError(
                f"promotion lookback_months must be at least 1, got {self.lookback_months}"
            )

    @classmethod
    def of(cls, section: Mapping) -> GateRule:
        """The rule of thresholds.json's "promotion" section (keys starting with _ are notes)."""
        fields = ("margin", "confidence", "lookback_months", "max_decisions")
        missing = [f for f in fields if f not in section]
        unknown = sorted(k for k in section if k not in fields and not str(k).startswith("_"))
        if missing or unknown:
            raise ValueError(
                f'thresholds "promotion": missing {missing or "nothing"}, '
                f"unknown {unknown or 'nothing'}; expected {list(fields)}"
            )
        lookback = section["lookback_months"]
        if isinstance(lookback, float) and lookback.is_integer():
            lookback = int(lookback)
        return cls(section["margin"], section["confidence"], lookback, section["max_decisions"])

    @property
    def z(self) -> float:
        """The standard normal quantile at `confidence` (1.645 at 0.95)."""
        return NormalDist().inv_cdf(self.confidence)

    def lower_bound(self, difference, standard_error):
        """difference - z x standard error: floats or numpy arrays alike."""
        return difference - self.z * standard_error

    def promotes(self, difference, standard_error):
        """The rule itself: the lower bound strictly above the margin (floats or arrays)."""
        return self.lower_bound(difference, standard_error) > self.margin

    def pooled(self, months: Iterable[Month]) -> list[Month]:
        """The newest `lookback_months` of the months held out for both, oldest first."""
        return sorted(set(months))[-self.lookback_months :]


def has_new_evidence(months: Iterable[date], judged_months: Iterable[date]) -> bool:
    """Whether the (pooled) comparison months hold a month no earlier decision about the same
    challenger and champion has seen: only then is there something new to judge."""
    return bool(set(months) - set(judged_months))


def candidates(latest: Mapping[str, RegistryRecord]) -> list[RegistryRecord]:
    """The versions to judge: of each declared family, its newest version while it is a
    challenger (judged again as new held-out labels arrive, see `still_candidate`). A family
    the code no longer declares is not judged. The best
    validation ROC-AUC comes first: the order only decides which first version becomes
    champion unopposed."""
    found = [
        record
        for name in FAMILIES
        if (record := latest.get(name)) is not None and record.status == "challenger"
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


def _months_text(months: Sequence[date]) -> str:
    """Months as runs: '2024-11..2025-01 and 2025-03 (4 months)'."""
    runs: list[list[date]] = []
    for month in sorted(months):
        if runs and add_months(runs[-1][-1], 1) == month:
            runs[-1].append(month)
        else:
            runs.append([month])
    spans = [f"{r[0]:%Y-%m}" if len(r) == 1 else f"{r[0]:%Y-%m}..{r[-1]:%Y-%m}" for r in runs]
    text = spans[0] if len(spans) == 1 else ", ".join(spans[:-1]) + " and " + spans[-1]
    count = len(months)
    return f"{text} ({count} month{'s' if count != 1 else ''})"


def judge(comparison: Comparison | None, rule: GateRule) -> Decision:
    """The gate's decision by `rule` on a comparison over the rule's pooled months
    (`rule.pooled(comparison_months(...))`); the reason states the evidence in words."""
    if comparison is None:
        return Decision(True, "no champion yet: the first model becomes champion")
    if len(comparison.months) > rule.lookback_months:
        raise ValueError(
            f"the comparison holds {len(comparison.months)} months, more than the look-back of "
            f"{rule.lookback_months}: pool the months with GateRule.pooled before comparing"
        )
    again = (
        "the champion stays, and the challenger is judged again when a new held-out month "
        "is labelled"
    )
    if not comparison.months or comparison.n == 0:
        return Decision(
            False, f"no loans held out for both models are labelled yet: nothing to judge; {again}"
        )
    held_out = (
        f"{comparison.n:,} loans applied in {_months_text(comparison.months)}, held out for "
        "both models and labelled"
    )
    if comparison.difference is None or comparison.standard_error is None:
        return Decision(False, f"the {held_out}, hold one class only: no ROC-AUC; {again}")
    low = float(rule.lower_bound(comparison.difference, comparison.standard_error))
    evidence = (
        f"challenger ROC-AUC {comparison.challenger_auc:.4f} vs champion "
        f"{comparison.champion_auc:.4f} on the {held_out}: difference "
        f"{comparison.difference:+.4f}, with {rule.confidence:.1%} confidence at least "
        f"{low:+.4f} (one-sided lower bound: difference - {rule.z:.3f} x standard error "
        f"{comparison.standard_error:.4f})"
    )
    if rule.promotes(comparison.difference, comparison.standard_error):
        return Decision(
            True,
            f"{evidence}, above the margin {rule.margin:+.4f}: the challenger is promoted",
            low,
        )
    return Decision(False, f"{evidence}, not above the margin {rule.margin:+.4f}: {again}", low)


def evidence_decisions(decisions: Sequence[Mapping]) -> int:
    """Decisions taken on held-out loans (n > 0); one without loans only waited."""
    return sum(1 for d in decisions if d.get("n"))


def still_candidate(decisions: Sequence[Mapping], rule: GateRule) -> bool:
    """Whether a challenger refused in `decisions` may be judged again."""
    return evidence_decisions(decisions) < rule.max_decisions


def waiting_reason(
    months: Sequence[date], earlier: Sequence[Mapping], rule: GateRule
) -> str | None:
    """Why a challenger is not judged now, or None to judge it. `months` are the pooled months
    it would be judged on; `earlier` its earlier decisions against the same champion, each with
    `n` and `window_months` (comma-separated ISO months)."""
    if not still_candidate(earlier, rule):
        return (
            f"judged {evidence_decisions(earlier)} times on held-out loans without promotion "
            f"(max_decisions {rule.max_decisions}): no longer a candidate"
        )
    judged = {
        date.fromisoformat(m)
        for d in earlier
        if d.get("window_months")
        for m in d["window_months"].split(",")
    }
    if earlier and not has_new_evidence(months, judged):
        return "no held-out month labelled since its last decision: waits for the next one"
    return None

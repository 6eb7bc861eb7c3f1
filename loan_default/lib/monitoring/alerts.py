"""Monitoring figures judged against the thresholds file: findings, and the action they call for.

The team's governance decides the action: a priority's breach of its business or
data-science threshold maps to an action in `actions` (P0 ROC-AUC below business retrains,
P1 calls for investigation, P2 is monitoring only); a label-free estimate below the business
ROC-AUC retrains before labels arrive; a shift of the score or of inputs (values or missing
share) calls for investigation and names the inputs, and retrains only when
`score_shift_retrains` is switched on.

Calibration is judged by `calibration_p_value`, the exact tail probability of the window's
observed defaults under its predicted probabilities: below a threshold, the count is outside
the band of confidence 1 - threshold (lib/monitoring/performance.calibration_band), so the
alarm follows the binomial band of the window's n, not a fixed gap in percentage points.

A metric "breaches" a threshold only strictly past it: a value exactly at a threshold holds.
Each metric reports its most severe breach only, so one bad number gives one reason. Months
inside a version's fitted window are never judged (callers pass held-out rows only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import polars as pl

ACTIONS = ("MONITOR", "ACTIVE_MONITORING", "RETRAIN")
STABILITY_LEVELS = ("shift", "watch")


@dataclass(frozen=True)
class Finding:
    """One figure past one threshold, and what the team's rules say to do about it."""

    signal: str
    priority: str
    level: str
    value: float
    threshold: float
    action: str
    direction: str  # "below" or "above": the side of the threshold the value is on
    detail: str = ""  # e.g. the inputs behind a score shift

    @property
    def reason(self) -> str:
        level = self.level.replace("_", "-")
        detail = f" [{self.detail}]" if self.detail else ""
        return (
            f"{self.signal} {self.value:.3f} {self.direction} {level} threshold "
            f"{self.threshold:.3f} ({self.priority}): {self.action}{detail}"
        )


def _past(value: float, threshold: float, higher_is_better: bool) -> bool:
    return value < threshold if higher_is_better else value > threshold


def _band_detail(metrics: Mapping[str, float | int | None], rule: Mapping) -> str:
    """The counts behind a calibration finding: observed defaults against the recorded band."""
    if metrics.get("defaults_band_low") is None:
        return ""
    return (
        f"{metrics['defaults']} defaults observed, {metrics['expected_defaults']:.1f} expected; "
        f"{1 - rule['data_science']:.0%} band [{metrics['defaults_band_low']}, "
        f"{metrics['defaults_band_high']}] of {metrics['n']} loans"
    )


DETAILS: dict[str, Callable[[Mapping, Mapping], str]] = {"calibration_p_value": _band_detail}


def judge_performance(
    metrics: Mapping[str, float | int | None],
    rules: Mapping,
    oot_baseline_roc_auc: float | None = None,
) -> list[Finding]:
    """Findings for each metric of `rules["performance"]`; missing figures are not judged."""
    findings = []
    for metric, rule in rules["performance"].items():
        value = metrics.get(metric)
        if value is None:
            continue
        higher = rule["direction"] == "higher"
        actions = rules["actions"][rule["priority"]]
        for level in ("business", "data_science"):
            if _past(value, rule[level], higher):
                findings.append(
                    Finding(
                        metric,
                        rule["priority"],
                        level,
                        value,
                        rule[level],
                        actions[level],
                        "below" if higher else "above",
                        DETAILS[metric](metrics, rule) if metric in DETAILS else "",
                    )
                )
                break
        limit = rule.get("max_degradation_from_oot")
        if limit is not None and oot_baseline_roc_auc is not None:
            drop = round(oot_baseline_roc_auc - value, 12)  # 0.85 - 0.77 is not 0.08 in floats
            if drop > limit:
                findings.append(
                    Finding(
                        f"{metric}_drop_from_oot",
                        rule["priority"],
                        "degradation",
                        drop,
                        limit,
                        actions["degradation"],
                        "above",
                    )
                )
    return findings


def judge_estimate(expected_roc_auc: float | None, rules: Mapping) -> list[Finding]:
    """The label-free ROC-AUC estimate against the ROC-AUC thresholds (before labels arrive)."""
    if expected_roc_auc is None:
        return []
    rule = rules["performance"]["roc_auc"]
    for level in ("business", "data_science"):
        if expected_roc_auc < rule[level]:
            return [
                Finding(
                    "estimated_roc_auc",
                    rule["priority"],
                    level,
                    expected_roc_auc,
                    rule[level],
                    rules["actions"]["estimate"][level],
                    "below",
                    "label-free estimate from calibrated probabilities; labels not yet arrived",
                )
            ]
    return []


@dataclass(frozen=True)
class InputShift:
    """One input's drift figures for one month."""

    feature: str
    csi: float | None
    missing_reference: float | None
    missing: float | None

    @property
    def missing_change(self) -> float | None:
        if self.missing is None or self.missing_reference is None:
            return None
        return round(self.missing - self.missing_reference, 12)  # shares: 0.15 - 0.1 is 0.05


def _level(value: float | None, thresholds: Mapping[str, float]) -> str | None:
    if value is None:
        return None
    return next((level for level in STABILITY_LEVELS if value > thresholds[level]), None)


def _names(features: list[str], limit: int = 4) -> str:
    shown = ", ".join(features[:limit])
    return f"{shown} and {len(features) - limit} more" if len(features) > limit else shown


def judge_stability(
    score_psi: float | None,
    inputs: Iterable[InputShift],
    rules: Mapping,
    group_of: Callable[[str], str] = str,
) -> list[Finding]:
    """Findings for the score's PSI and the inputs' value and missingness shifts.

    Inputs are reported by group (`group_of`, e.g. the 43 clickstream inputs as one
    "clickstream"), each group by its largest figure, naming the inputs behind it.
    """
    stability, actions = rules["stability"], rules["actions"]
    inputs = list(inputs)
    findings = []
    kinds = (
        ("csi", "feature_csi", lambda i: i.csi, "value shift"),
        ("missing", "missing_share", lambda i: i.missing_change, "missing share"),
    )
    for prefix, kind, figure, what in kinds:
        groups: dict[str, list[tuple[float, InputShift]]] = {}
        for shift in inputs:
            value = figure(shift)
            if _level(abs(value) if value is not None else None, stability[kind]):
                groups.setdefault(group_of(shift.feature), []).append((value, shift))
        for group, members in groups.items():
            members.sort(key=lambda pair: -abs(pair[0]))
            value, worst = members[0]
            level = _level(abs(value), stability[kind])
            detail = f"{what} of {len(members)} input(s): {_names([m.feature for _, m in members])}"
            if prefix == "missing":
                detail += f"; missing {worst.missing_reference:.2f} -> {worst.missing:.2f}"
            findings.append(
                Finding(
                    f"{prefix}:{group}",
                    "stability",
                    level,
                    abs(value),
                    stability[kind][level],
                    actions[level],
                    "above",
                    detail,
                )
            )
    score_level = _level(score_psi, stability["score_psi"])
    if score_level:
        shifted = sorted({f.signal for f in findings})
        retrains = score_level == "shift" and rules.get("score_shift_retrains", False)
        findings.insert(
            0,
            Finding(
                "score_psi",
                "stability",
                score_level,
                score_psi,
                stability["score_psi"][score_level],
                "RETRAIN" if retrains else actions[score_level],
                "above",
                f"shifted inputs: {', '.join(shifted)}"
                if shifted
                else "no input past its watch threshold",
            ),
        )
    return findings


def action_of(findings: Iterable[Finding]) -> str:
    """The strongest action any finding calls for; MONITOR when there is none."""
    return max((f.action for f in findings), key=ACTIONS.index, default=ACTIONS[0])


ACTIONS_SCHEMA = {
    "month": pl.Date,
    "model_family": pl.String,
    "model_version": pl.String,
    "is_champion": pl.Boolean,
    "action": pl.String,
    "reasons": pl.List(pl.String),
}


def performance_findings(row: Mapping, rules: Mapping) -> list[Finding]:
    """Findings of one monitoring.model_performance row, against its own OOT baseline."""
    return judge_performance(row, rules, row["oot_baseline_roc_auc"])


def drift_findings(
    rows: pl.DataFrame, rules: Mapping, group_of: Callable[[str], str] = str
) -> list[Finding]:
    """Findings of one version's monitoring.drift rows for one month; none when the month is
    inside the version's fitted window (shown, never judged)."""
    rows = rows.filter(pl.col("held_out"))
    if rows.is_empty():
        return []
    score = rows.filter(pl.col("kind") == "score")["psi"]
    inputs = [
        InputShift(r["feature"], r["psi"], r["missing_share_reference"], r["missing_share"])
        for r in rows.filter(pl.col("kind") == "feature").iter_rows(named=True)
    ]
    return judge_stability(score[0] if score.len() else None, inputs, rules, group_of)


def actions_table(
    performance: pl.DataFrame,
    drift: pl.DataFrame,
    estimates: pl.DataFrame,
    rules: Mapping,
    group_of: Callable[[str], str] = str,
) -> pl.DataFrame:
    """The action and reasons per monitoring month and model version.

    Month M combines what is known at M: the drift of applications M, their label-free estimate
    while their labels have not arrived (`estimates` holds the judged rows only), and the
    realized performance of label month M (held-out rows, on the window the rules judge).
    """
    judged = performance.filter(
        pl.col("held_out") & (pl.col("window") == rules["evaluate_on"])
    ).rename({"label_month": "month"})
    estimated = estimates.rename({"application_month": "month"})
    keys = ["month", "model_family", "model_version", "is_champion"]
    rows = []
    subjects = (
        pl.concat([judged.select(keys), drift.select(keys), estimated.select(keys)])
        .unique()
        .sort(keys)
    )
    for subject in subjects.iter_rows(named=True):
        match = (pl.col("month") == subject["month"]) & (
            pl.col("model_version") == subject["model_version"]
        )
        findings = [
            f
            for r in judged.filter(match).iter_rows(named=True)
            for f in performance_findings(r, rules)
        ]
        findings += [
            f
            for r in estimated.filter(match).iter_rows(named=True)
            for f in judge_estimate(r["expected_roc_auc"], rules)
        ]
        month_drift = drift.filter(match)
        if month_drift.height:
            findings += drift_findings(month_drift, rules, group_of)
        rows.append(
            {
                **subject,
                "action": action_of(findings),
                "reasons": [f.reason for f in sorted(findings, key=_severity_order)],
            }
        )
    return pl.DataFrame(rows, schema=ACTIONS_SCHEMA)


def _severity_order(finding: Finding) -> tuple[int, float]:
    """Strongest action first, then the largest figure."""
    return (-ACTIONS.index(finding.action), -finding.value)

"""Monitoring figures judged against the thresholds file: findings, and the action they call for.

A metric "breaches" a threshold only strictly past it: a value exactly at a threshold holds.
Each metric reports its most severe breach only, so one bad number gives one reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

ACTIONS = ("MONITOR", "ACTIVE_MONITORING", "RETRAIN")


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

    @property
    def reason(self) -> str:
        level = self.level.replace("_", "-")
        return (
            f"{self.signal} {self.value:.3f} {self.direction} {level} threshold "
            f"{self.threshold:.3f} ({self.priority}): {self.action}"
        )


def _past(value: float, threshold: float, higher_is_better: bool) -> bool:
    return value < threshold if higher_is_better else value > threshold


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
        for level in ("business", "data_science"):
            if _past(value, rule[level], higher):
                findings.append(
                    Finding(
                        metric,
                        rule["priority"],
                        level,
                        value,
                        rule[level],
                        rules["actions"][level],
                        "below" if higher else "above",
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
                        rules["actions"]["degradation"],
                        "above",
                    )
                )
    return findings


def judge_stability(
    score_psi: float | None, feature_csi: Mapping[str, float | None], rules: Mapping
) -> list[Finding]:
    """Findings for the score's PSI and each input feature's CSI."""
    stability, actions = rules["stability"], rules["actions"]
    figures = [("score_psi", "score_psi", score_psi)] + [
        ("feature_csi", f"csi:{feature}", value) for feature, value in feature_csi.items()
    ]
    findings = []
    for kind, signal, value in figures:
        if value is None:
            continue
        for level in ("shift", "watch"):
            if value > stability[kind][level]:
                findings.append(
                    Finding(
                        signal,
                        "stability",
                        level,
                        value,
                        stability[kind][level],
                        actions[f"{kind}_{level}"],
                        "above",
                    )
                )
                break
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


def drift_findings(rows: pl.DataFrame, rules: Mapping) -> list[Finding]:
    """Findings of one version's monitoring.drift rows for one month."""
    score = rows.filter(pl.col("kind") == "score")["psi"]
    features = rows.filter(pl.col("kind") == "feature").select("feature", "psi")
    return judge_stability(score[0] if score.len() else None, dict(features.iter_rows()), rules)


def actions_table(performance: pl.DataFrame, drift: pl.DataFrame, rules: Mapping) -> pl.DataFrame:
    """The action and reasons per monitoring month and model version.

    Month M combines what is known at M: the drift of applications M and the realized
    performance of label month M (held-out rows, on the window the rules judge).
    """
    judged = performance.filter(
        pl.col("held_out") & (pl.col("window") == rules["evaluate_on"])
    ).rename({"label_month": "month"})
    keys = ["month", "model_family", "model_version", "is_champion"]
    rows = []
    subjects = pl.concat([judged.select(keys), drift.select(keys)]).unique().sort(keys)
    for subject in subjects.iter_rows(named=True):
        match = (pl.col("month") == subject["month"]) & (
            pl.col("model_version") == subject["model_version"]
        )
        findings = [
            performance_findings(r, rules) for r in judged.filter(match).iter_rows(named=True)
        ]
        findings = [f for group in findings for f in group]
        month_drift = drift.filter(match)
        if month_drift.height:
            findings += drift_findings(month_drift, rules)
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

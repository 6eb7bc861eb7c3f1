"""Monitoring figures judged against the thresholds file: findings, and the action they call for.

A metric "breaches" a threshold only strictly past it: a value exactly at a threshold holds.
Each metric reports its most severe breach only, so one bad number gives one reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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

"""The replay's timeline: month by month, who served, what monitoring found, what was done.

One row per simulated month M: the version whose decisions applicants of month M received,
the champion after the month's actions, the failed checks and the retrain they asked for, each
gate decision with its evidence, and two views of the served decisions' quality: realized on
the cohort whose labels arrived at M (applications of M - mob), and estimated from calibrated
probabilities on the cohort of M. Beside it, per cohort, the served decisions' ROC-AUC against
counterfactual policies scored on the same loans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import plotly.graph_objects as go
import polars as pl
from sklearn.metrics import roc_auc_score

from loan_default.lib.models.metrics import paired_roc_auc_difference
from loan_default.lib.monitoring.performance import auc_interval, expected_roc_auc
from loan_default.lib.months import add_months

TIMELINE_SCHEMA = {
    "month": pl.Date,
    "served_version": pl.String,
    "served_family": pl.String,
    "champion_version": pl.String,
    "champion_family": pl.String,
    "failed_checks": pl.List(pl.String),
    "retrain_requested_by": pl.String,
    "gate_decisions": pl.List(pl.String),
    "promoted_version": pl.String,
    "actions": pl.List(pl.String),
    "realized_cohort": pl.Date,
    "realized_n": pl.Int64,
    "realized_roc_auc": pl.Float64,
    "realized_roc_auc_low": pl.Float64,
    "realized_roc_auc_high": pl.Float64,
    "estimated_roc_auc": pl.Float64,
    "runs": pl.List(pl.String),
}
COHORT_SCHEMA = {
    "policy": pl.String,
    "application_month": pl.Date,
    "model_version": pl.String,
    "n": pl.Int64,
    "defaults": pl.Int64,
    "roc_auc": pl.Float64,
    "roc_auc_low": pl.Float64,
    "roc_auc_high": pl.Float64,
}
SERVED = "served"


@dataclass(frozen=True)
class MonthEvents:
    """What the platform did at simulated month M, as its Dagster runs recorded it."""

    month: date
    runs: tuple[str, ...] = ()
    failed_checks: tuple[str, ...] = ()
    retrain_requested_by: str | None = None
    champion_after: tuple[str, str] | None = None  # (version, family) the gate left
    gate_decisions: tuple[dict, ...] = field(default_factory=tuple)


def cohort_performance(
    policy: str, scores: pl.DataFrame, labels: pl.DataFrame, mob: int
) -> pl.DataFrame:
    """ROC-AUC with its 95% interval per application month of `scores` (loan_id,
    application_month, model_version, calibrated_probability), on loans whose label arrived."""
    expected = pl.col("application_month").dt.offset_by(f"{mob}mo")
    joined = scores.join(labels.select("loan_id", "label_month", "label"), on="loan_id").filter(
        pl.col("label_month") == expected
    )
    rows = []
    for (month,), cohort in joined.sort("application_month").group_by(
        "application_month", maintain_order=True
    ):
        y = cohort["label"].to_numpy().astype(int)
        defaults, n = int(y.sum()), len(y)
        auc = (
            float(roc_auc_score(y, cohort["calibrated_probability"].to_numpy()))
            if 0 < defaults < n
            else None
        )
        low, high = auc_interval(auc, defaults, n - defaults) or (None, None)
        versions = sorted(set(cohort["model_version"].to_list()))
        rows.append(
            {
                "policy": policy,
                "application_month": month,
                "model_version": ",".join(versions),
                "n": n,
                "defaults": defaults,
                "roc_auc": auc,
                "roc_auc_low": low,
                "roc_auc_high": high,
            }
        )
    return pl.DataFrame(rows, schema=COHORT_SCHEMA)


def decision_text(decision: dict) -> str:
    """A gate decision in one line: the candidate, the verdict and its evidence."""
    verdict = "promoted" if decision.get("promoted") else "refused"
    return f"{decision.get('candidate_version')} {verdict}: {decision.get('reason')}"


def served_estimates(served: pl.DataFrame) -> dict[date, float | None]:
    """The ROC-AUC each month's served decisions expect of their cohort, from the calibrated
    probabilities they were decided with (available at once, before any label)."""
    return {
        month: expected_roc_auc(cohort["calibrated_probability"].to_numpy())
        for (month,), cohort in served.group_by("application_month")
    }


def timeline_rows(
    events: Sequence[MonthEvents],
    served: pl.DataFrame,
    served_cohorts: pl.DataFrame,
    mob: int,
) -> pl.DataFrame:
    """The timeline table. `served` holds the served decisions (application_month,
    model_version, model_family, calibrated_probability); `served_cohorts` is
    `cohort_performance` of them."""
    served_by_month = {
        month: (version, family)
        for month, version, family in served.group_by("application_month")
        .agg(pl.col("model_version").mode().first(), pl.col("model_family").mode().first())
        .iter_rows()
    }
    realized = {r["application_month"]: r for r in served_cohorts.iter_rows(named=True)}
    estimate = served_estimates(served)
    rows, champion = [], None
    for event in sorted(events, key=lambda e: e.month):
        version, family = served_by_month.get(event.month, (None, None))
        champion = event.champion_after or champion or ((version, family) if version else None)
        cohort = add_months(event.month, -mob)
        found = realized.get(cohort, {})
        promoted = next(
            (d["candidate_version"] for d in event.gate_decisions if d.get("promoted")), None
        )
        actions = [f"{check} failed" for check in event.failed_checks]
        if event.retrain_requested_by:
            actions.append(f"RETRAIN requested by {event.retrain_requested_by}")
        actions += [f"gate: {decision_text(d)}" for d in event.gate_decisions]
        rows.append(
            {
                "month": event.month,
                "served_version": version,
                "served_family": family,
                "champion_version": champion[0] if champion else None,
                "champion_family": champion[1] if champion else None,
                "failed_checks": list(event.failed_checks),
                "retrain_requested_by": event.retrain_requested_by,
                "gate_decisions": [decision_text(d) for d in event.gate_decisions],
                "promoted_version": promoted,
                "actions": actions,
                "realized_cohort": cohort,
                "realized_n": found.get("n"),
                "realized_roc_auc": found.get("roc_auc"),
                "realized_roc_auc_low": found.get("roc_auc_low"),
                "realized_roc_auc_high": found.get("roc_auc_high"),
                "estimated_roc_auc": estimate.get(event.month),
                "runs": list(event.runs),
            }
        )
    return pl.DataFrame(rows, schema=TIMELINE_SCHEMA)


def paired_gain(
    first: pl.DataFrame, second: pl.DataFrame, labels: pl.DataFrame, mob: int
) -> dict | None:
    """ROC-AUC of `first` minus `second` on the labelled loans both scored, with the paired
    95% DeLong interval: whether one policy's decisions beat another's on the same cohorts."""
    expected = pl.col("application_month").dt.offset_by(f"{mob}mo")
    both = (
        first.select("loan_id", "application_month", a="calibrated_probability")
        .join(second.select("loan_id", b="calibrated_probability"), on="loan_id")
        .join(labels.select("loan_id", "label_month", "label"), on="loan_id")
        .filter(pl.col("label_month") == expected)
    )
    y = both["label"].to_numpy().astype(int)
    if both.is_empty() or y.min() == y.max():
        return None
    paired = paired_roc_auc_difference(y, both["a"].to_numpy(), both["b"].to_numpy())
    return {
        "n": len(y),
        "months": sorted(set(both["application_month"].to_list())),
        "first_roc_auc": paired.first,
        "second_roc_auc": paired.second,
        "difference": paired.difference,
        "low": paired.low,
        "high": paired.high,
    }


POLICY_STYLE = {
    SERVED: ("served decisions (the platform's loop)", "#1f77b4"),
    "never_retrain": ("never retrain (the first champion)", "#7f7f7f"),
    "every_3_months": ("retrain every 3 months, promotion unconditional", "#ff7f0e"),
}


def timeline_chart(timeline: pl.DataFrame, cohorts: pl.DataFrame, title: str) -> go.Figure:
    """Served ROC-AUC by application month with its interval, the counterfactual policies on
    the same cohorts, and the months a retrain was requested or a version promoted."""
    figure = go.Figure()
    for policy, (name, colour) in POLICY_STYLE.items():
        rows = cohorts.filter(pl.col("policy") == policy).sort("application_month")
        if rows.is_empty():
            continue
        months = rows["application_month"].to_list()
        if policy == SERVED:
            figure.add_trace(
                go.Scatter(
                    x=months + months[::-1],
                    y=rows["roc_auc_high"].to_list() + rows["roc_auc_low"].to_list()[::-1],
                    fill="toself",
                    fillcolor="rgba(31,119,180,0.15)",
                    line={"width": 0},
                    name="served: 95% interval",
                    hoverinfo="skip",
                )
            )
        figure.add_trace(
            go.Scatter(
                x=months,
                y=rows["roc_auc"].to_list(),
                mode="lines+markers",
                name=name,
                line={"color": colour, "dash": "solid" if policy == SERVED else "dot"},
                customdata=np.stack([rows["model_version"].to_list(), rows["n"].to_list()], -1),
                hovertemplate="%{x|%Y-%m}: ROC-AUC %{y:.3f} (n=%{customdata[1]}, "
                "%{customdata[0]})<extra></extra>",
            )
        )
    for row in timeline.iter_rows(named=True):
        if row["retrain_requested_by"]:
            figure.add_vline(x=row["month"], line={"color": "#d62728", "dash": "dash"})
            figure.add_annotation(
                x=row["month"], y=1.02, yref="paper", text="retrain", showarrow=False
            )
        if row["promoted_version"]:
            figure.add_vline(x=row["month"], line={"color": "#2ca02c", "width": 3})
            figure.add_annotation(
                x=row["month"],
                y=-0.12,
                yref="paper",
                text=f"promoted {row['promoted_version'].split('-')[0]}",
                showarrow=False,
            )
    return figure.update_layout(
        title=title,
        xaxis_title="application month (the cohort decided)",
        yaxis_title="realized ROC-AUC",
        template="plotly_white",
        height=520,
        legend={"orientation": "h", "y": -0.25},
    )

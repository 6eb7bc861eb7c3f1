"""Walk-forward backtest: for each as-of label month, each family trained on its relative
windows and scored on its out-of-time month.

One OOT month holds about 500 loans, so its ROC-AUC moves by about +/-0.05 from sampling
alone; families are compared on the mean over many as-of months, with an interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Self

import plotly.graph_objects as go
import polars as pl
from scipy import stats

from loan_default.lib.gold.label_contract import LabelDefinition
from loan_default.lib.models.model_data import labeled_applications
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.training import train
from loan_default.lib.monitoring.performance import auc_interval

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
BACKTEST_SCHEMA = {
    "as_of_month": pl.Date,
    "model_family": pl.String,
    "oot_month": pl.Date,
    "train_first": pl.Date,
    "train_last": pl.Date,
    "n": pl.Int64,
    "defaults": pl.Int64,
    "roc_auc": pl.Float64,
    "roc_auc_low": pl.Float64,
    "roc_auc_high": pl.Float64,
    "brier": pl.Float64,
    "has_clickstream_share": pl.Float64,
    "validation_roc_auc": pl.Float64,
    "train_seconds": pl.Float64,
}
SUMMARY_SCHEMA = {
    "model_family": pl.String,
    "months": pl.Int64,
    "mean_roc_auc": pl.Float64,
    "sd_roc_auc": pl.Float64,
    "mean_low": pl.Float64,
    "mean_high": pl.Float64,
    "min_roc_auc": pl.Float64,
    "max_roc_auc": pl.Float64,
}


@dataclass(frozen=True)
class BacktestData:
    """What every as-of month and family share, prepared once per run: the feature store in
    (application month, loan) order and its applications joined with their labels."""

    features: pl.DataFrame
    labeled: pl.DataFrame

    @classmethod
    def of(cls, features: pl.DataFrame, labels: pl.DataFrame, label: LabelDefinition) -> Self:
        ordered = features.sort("application_month", "loan_id")
        return cls(ordered, labeled_applications(ordered, labels, label))

    def in_windows(self, windows: Windows) -> pl.DataFrame:
        """The labeled applications of the windows. Relative windows end at as-of - mob, so
        every label among them is observed by the as-of month: the rows are those of
        `labeled_applications(..., as_of)` within the windows, in the same order."""
        return self.labeled.filter(
            pl.col("application_month").is_between(windows.train[0], windows.last_application_month)
        )


def walk_forward(
    families: Sequence[str],
    as_of_months: Sequence[date],
    data: BacktestData,
    label: LabelDefinition,
    params: Mapping[str, dict],
    relative_months: tuple[int, int, int, int] = (12, 3, 2, 1),
    seed: int = 42,
    clickstream_dropout: float = 0.3,
    log: Callable[[str], None] = print,
) -> pl.DataFrame:
    """Each family trained as of each month (labels observed by then) and judged on its OOT
    month: one row per as-of month and family. Windows and each month's rows are computed once
    and shared by the families."""
    windows = {as_of: Windows.relative(as_of, label.mob, relative_months) for as_of in as_of_months}
    rows = []
    for as_of, window in windows.items():
        observed = data.in_windows(window)
        for family in families:
            started = time.perf_counter()
            row = evaluate(
                family,
                as_of,
                window,
                observed,
                data.features,
                params[family],
                seed,
                clickstream_dropout,
                log,
            )
            log(
                f"backtest as of {as_of:%Y-%m} {family}: OOT ROC-AUC {row['roc_auc']}, "
                f"fit {row['train_seconds']:.1f} s, {time.perf_counter() - started:.1f} s in all"
            )
            rows.append(row)
    return pl.DataFrame(rows, schema=BACKTEST_SCHEMA)


def evaluate(
    family: str,
    as_of: date,
    windows: Windows,
    data: pl.DataFrame,
    features: pl.DataFrame,
    params: dict,
    seed: int,
    clickstream_dropout: float,
    log: Callable[[str], None],
) -> dict:
    """One family fitted on the labeled applications `data` of `windows` (the feature store
    `features` pretrains the families that pretrain), as a backtest row. Permutation importance
    is skipped: the backtest reports none."""
    result = train(
        family,
        data,
        windows,
        params,
        seed=seed,
        clickstream_dropout=clickstream_dropout,
        unlabeled=features,
        log=log,
        importance=False,
    )
    oot = result.metrics.get("oot") or {}
    oot_rows = features.filter(pl.col("application_month").is_between(*windows.oot))
    n, defaults = oot.get("n", 0), oot.get("defaults", 0)
    interval = auc_interval(oot.get("roc_auc"), defaults, n - defaults) or (None, None)
    return {
        "as_of_month": as_of,
        "model_family": family,
        "oot_month": windows.oot[0],
        "train_first": windows.train[0],
        "train_last": windows.train[1],
        "n": n,
        "defaults": defaults,
        "roc_auc": oot.get("roc_auc"),
        "roc_auc_low": interval[0],
        "roc_auc_high": interval[1],
        "brier": oot.get("brier"),
        "has_clickstream_share": oot_rows["has_clickstream"].mean() if oot_rows.height else None,
        "validation_roc_auc": result.metrics["validation"]["roc_auc"],
        "train_seconds": result.train_seconds,
    }


def summarize(rows: pl.DataFrame) -> pl.DataFrame:
    """Per family: the mean OOT ROC-AUC over as-of months with a 95% t interval."""
    summary = []
    for (family,), group in rows.filter(pl.col("roc_auc").is_not_null()).group_by(
        "model_family", maintain_order=True
    ):
        values = group["roc_auc"]
        k, mean = values.len(), values.mean()
        sd = values.std() if k > 1 else None
        half = stats.t.ppf(0.975, k - 1) * sd / math.sqrt(k) if sd is not None else None
        summary.append(
            {
                "model_family": family,
                "months": k,
                "mean_roc_auc": mean,
                "sd_roc_auc": sd,
                "mean_low": mean - half if half is not None else None,
                "mean_high": mean + half if half is not None else None,
                "min_roc_auc": values.min(),
                "max_roc_auc": values.max(),
            }
        )
    return pl.DataFrame(summary, schema=SUMMARY_SCHEMA).sort("mean_roc_auc", descending=True)


def summary_markdown(summary: pl.DataFrame) -> str:
    lines = [
        "| family | as-of months | mean OOT ROC-AUC | 95% interval | sd | min | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary.iter_rows(named=True):
        interval = (
            f"{r['mean_low']:.3f} - {r['mean_high']:.3f}" if r["mean_low"] is not None else "-"
        )
        sd = f"{r['sd_roc_auc']:.3f}" if r["sd_roc_auc"] is not None else "-"
        lines.append(
            f"| {r['model_family']} | {r['months']} | {r['mean_roc_auc']:.3f} | {interval} | "
            f"{sd} | {r['min_roc_auc']:.3f} | {r['max_roc_auc']:.3f} |"
        )
    return "\n".join(lines)


def months_markdown(rows: pl.DataFrame) -> str:
    wide = rows.pivot(on="model_family", index="oot_month", values="roc_auc").sort("oot_month")
    families = [c for c in wide.columns if c != "oot_month"]
    lines = [
        "| OOT month | " + " | ".join(families) + " |",
        "|---" * (len(families) + 1) + "|",
    ]
    for r in wide.iter_rows(named=True):
        cells = [f"{r[f]:.3f}" if r[f] is not None else "-" for f in families]
        lines.append(f"| {r['oot_month']:%Y-%m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart_html(rows: pl.DataFrame, summary: pl.DataFrame) -> str:
    """OOT ROC-AUC per OOT month and family with its interval, and each family's mean band,
    as a standalone HTML page."""
    figure = go.Figure()
    groups = rows.sort("oot_month").group_by("model_family", maintain_order=True)
    for i, ((family,), group) in enumerate(groups):
        months = group["oot_month"].dt.strftime("%Y-%m").to_list()
        color = COLORS[i % len(COLORS)]
        figure.add_trace(
            go.Scatter(
                x=months,
                y=group["roc_auc"].to_list(),
                mode="lines+markers",
                name=family,
                line={"color": color},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (group["roc_auc_high"] - group["roc_auc"]).to_list(),
                    "arrayminus": (group["roc_auc"] - group["roc_auc_low"]).to_list(),
                },
            )
        )
        [mean] = summary.filter(pl.col("model_family") == family)["mean_roc_auc"].to_list()
        figure.add_trace(
            go.Scatter(
                x=[months[0], months[-1]],
                y=[mean, mean],
                mode="lines",
                line={"dash": "dash", "color": color},
                name=f"{family} mean {mean:.3f}",
            )
        )
    figure.update_layout(
        title="Walk-forward backtest: out-of-time ROC-AUC by OOT month (95% intervals)",
        xaxis_title="OOT application month",
        yaxis_title="ROC-AUC",
    )
    return figure.to_html(include_plotlyjs=True)

"""Human-readable training output: metric and importance tables, training-curve plots."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

METRIC_COLUMNS = (
    "n",
    "roc_auc",
    "gini",
    "ks",
    "pr_auc",
    "brier",
    "log_loss",
    "default_rate",
    "predicted_default_rate",
    "precision",
    "recall",
    "f1",
)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def metrics_markdown(metrics: dict[str, dict]) -> str:
    header = "| window | " + " | ".join(METRIC_COLUMNS) + " |"
    rule = "|---" * (len(METRIC_COLUMNS) + 1) + "|"
    rows = [
        f"| {window} | " + " | ".join(_cell(values.get(c)) for c in METRIC_COLUMNS) + " |"
        for window, values in metrics.items()
    ]
    return "\n".join([header, rule, *rows])


def importance_markdown(importance: list[tuple[str, float]]) -> str:
    rows = [f"| {name} | {drop:.4f} |" for name, drop in importance]
    return "\n".join(["| feature | validation ROC-AUC drop when shuffled |", "|---|---|", *rows])


def training_curves_html(history: list[dict]) -> str:
    """Loss and early-stopping ROC-AUC per epoch, one line per phase, as a standalone HTML
    page (the early-stopping rows are a held-out share of the training window)."""
    frame = pl.DataFrame(history)
    figure = go.Figure()
    for phase in frame["phase"].unique(maintain_order=True).to_list():
        rows = frame.filter(pl.col("phase") == phase)
        figure.add_scatter(
            x=rows["epoch"].to_list(), y=rows["loss"].to_list(), name=f"{phase} loss"
        )
        if "stop_auc" in rows.columns and rows["stop_auc"].drop_nulls().len():
            figure.add_scatter(
                x=rows["epoch"].to_list(),
                y=rows["stop_auc"].to_list(),
                name=f"{phase} early-stopping ROC-AUC",
                yaxis="y2",
            )
    figure.update_layout(
        title="TabTransformer training",
        xaxis_title="epoch",
        yaxis_title="loss",
        yaxis2={"title": "early-stopping ROC-AUC", "overlaying": "y", "side": "right"},
    )
    return figure.to_html(include_plotlyjs=True)

"""The monitoring dashboard: one self-contained HTML page of plotly figures for the risk team.

Pure polars + plotly.graph_objects (pandas is not installed, so no plotly express on lists).
plotly.js is embedded once in the page head, so the file opens offline. Every figure copes with
a fresh warehouse (no labels, no drift yet) by showing a "no data yet" note instead.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from loan_default.lib.monitoring.alerts import ACTIONS
from loan_default.lib.monitoring.monitoring_tables import input_group

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
ACTION_COLORS = {"MONITOR": "#2ca02c", "ACTIVE_MONITORING": "#f0ad4e", "RETRAIN": "#d62728"}
NO_DATA = "No data yet"


@dataclass(frozen=True)
class DashboardInputs:
    """The monitoring tables and scored rows one dashboard is drawn from."""

    performance: pl.DataFrame  # PERFORMANCE_SCHEMA: windows "month" and "rolling_<k>m"
    estimates: pl.DataFrame  # ESTIMATE_SCHEMA
    drift: pl.DataFrame  # DRIFT_SCHEMA; psi may be null
    scored_labels: pl.DataFrame  # labelled predictions with decision, label, held_out
    scores: pl.DataFrame  # every prediction, labelled or not
    actions: pl.DataFrame  # month, model_family, model_version, is_champion, action, reasons
    fairness: pl.DataFrame  # FAIRNESS_SCHEMA: per age band, clocks "application" and "label"


def _one_version(frame: pl.DataFrame, month: str) -> pl.DataFrame:
    """Per family and month the champion's rows, else the newest version's: one line a family.

    Version ids are "<family>-<timestamp>", so the largest id is the newest version.
    """
    keys = ["model_family", month, "model_version"]
    chosen = (
        frame.select(*keys, "is_champion")
        .unique()
        .sort(["is_champion", "model_version"], descending=True)
        .unique(["model_family", month], keep="first")
        .select(keys)
    )
    return frame.join(chosen, on=keys, how="semi").sort("model_family", month)


def _families(frame: pl.DataFrame) -> list[str]:
    return sorted(frame["model_family"].unique().to_list())


def _month_label(frame: pl.DataFrame, column: str) -> list[str]:
    return frame[column].dt.strftime("%Y-%m").to_list()


def _labelled(frame: pl.DataFrame, family: str) -> tuple[pl.DataFrame, str]:
    """A family's held-out labelled rows; all its rows when none is held out yet."""
    rows = _one_version(frame.filter(pl.col("model_family") == family), "application_month")
    held = rows.filter(pl.col("held_out"))
    return (held, "held out") if held.height else (rows, "all rows, none held out")


def performance_figure(performance: pl.DataFrame, rules: Mapping) -> go.Figure | None:
    """ROC-AUC per label month with its interval, the pooled line the alarms judge, thresholds."""
    rows = _one_version(performance.filter(pl.col("roc_auc").is_not_null()), "label_month")
    monthly = rows.filter(pl.col("window") == "month")
    if not monthly.height:
        return None
    figure = go.Figure()
    for i, family in enumerate(_families(monthly)):
        color, one = COLORS[i % len(COLORS)], monthly.filter(pl.col("model_family") == family)
        months = one["label_month"].to_list()
        band = dict(mode="lines", line={"width": 0}, legendgroup=family, showlegend=False)
        figure.add_scatter(x=months, y=one["roc_auc_high"].to_list(), hoverinfo="skip", **band)
        figure.add_scatter(
            x=months,
            y=one["roc_auc_low"].to_list(),
            fill="tonexty",
            fillcolor=color,
            opacity=0.2,
            name=f"{family} 95% interval",
            hoverinfo="skip",
            **band,
        )
        figure.add_scatter(
            x=months,
            y=one["roc_auc"].to_list(),
            mode="lines+markers",
            name=f"{family} month",
            line={"color": color},
            legendgroup=family,
            marker={
                "size": 9,
                "symbol": [
                    "circle" if held else "circle-open" for held in one["held_out"].to_list()
                ],
            },
        )
        pooled = rows.filter((pl.col("model_family") == family) & (pl.col("window") != "month"))
        if pooled.height:
            figure.add_scatter(
                x=pooled["label_month"].to_list(),
                y=pooled["roc_auc"].to_list(),
                mode="lines",
                name=f"{family} {pooled['window'][0]}",
                legendgroup=family,
                line={"color": color, "dash": "dash", "width": 3},
            )
    rule = rules["performance"]["roc_auc"]
    for level, dash in (("business", "solid"), ("data_science", "dot")):
        figure.add_hline(
            y=rule[level],
            line={"color": "#d62728", "dash": dash},
            annotation_text=f"{level.replace('_', '-')} threshold {rule[level]}",
        )
    return figure.update_layout(xaxis_title="label month", yaxis_title="ROC-AUC")


def estimate_figure(performance: pl.DataFrame, estimates: pl.DataFrame) -> go.Figure | None:
    """The champion's label-time estimates beside what the labels later showed."""
    estimated = _one_version(estimates.filter(pl.col("is_champion")), "label_month")
    realized = _one_version(
        performance.filter(pl.col("is_champion") & (pl.col("window") == "month")), "label_month"
    )
    if not (estimated.height or realized.height):
        return None
    figure = make_subplots(rows=1, cols=2, subplot_titles=("ROC-AUC", "default rate"))
    lines = (
        (1, estimated, "expected_roc_auc", "estimated ROC-AUC", "dash"),
        (1, realized, "roc_auc", "realized ROC-AUC", "solid"),
        (2, estimated, "expected_default_rate", "predicted default rate", "dash"),
        (2, realized, "default_rate", "realized default rate", "solid"),
    )
    for col, frame, column, name, dash in lines:
        figure.add_scatter(
            x=frame["label_month"].to_list(),
            y=frame[column].to_list(),
            name=name,
            mode="lines+markers",
            line={"dash": dash},
            row=1,
            col=col,
        )
    figure.update_xaxes(title_text="label month")
    return figure.update_yaxes(title_text="ROC-AUC", col=1).update_yaxes(
        title_text="default rate", col=2
    )


def drift_figure(drift: pl.DataFrame, rules: Mapping) -> go.Figure | None:
    """The champion's score PSI and feature CSI per application month, coloured by threshold."""
    rows = drift.filter(pl.col("is_champion"))
    if not rows.height:
        return None
    stability = rules["stability"]
    watch, shift = stability["score_psi"]["watch"], stability["score_psi"]["shift"]
    top = 2 * max(shift, stability["feature_csi"]["shift"])  # colour saturates at twice shift
    months = sorted(set(_month_label(rows, "month")))
    ordered = rows.sort("kind", "feature", descending=[True, False])  # "score" before "feature"
    names = list(dict.fromkeys(ordered["feature"].to_list()))
    cells = zip(rows["feature"], _month_label(rows, "month"), rows["psi"], strict=True)
    values = {(name, month): psi for name, month, psi in cells}
    z = [[values.get((name, month)) for month in months] for name in names]
    scale = [[0, "#f7fcf5"], [watch / top, "#fee08b"], [shift / top, "#f46d43"], [1, "#a50026"]]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=months,
            y=names,
            zmin=0,
            zmax=top,
            colorscale=scale,
            xgap=1,
            ygap=1,
            hovertemplate="%{y}, %{x}: PSI %{z:.4f}<extra></extra>",
            colorbar={
                "title": "PSI / CSI",
                "tickvals": [0, watch, shift, top],
                "ticktext": ["0", f"watch {watch}", f"shift {shift}", f"≥ {top}"],
            },
        )
    )
    return figure.update_layout(
        xaxis_title="application month",
        yaxis={"title": "score / feature", "autorange": "reversed"},
        height=max(350, 160 + 22 * len(names)),
    )


def missingness_figure(drift: pl.DataFrame, rules: Mapping) -> go.Figure | None:
    """The champion's change of missing share per input group and application month."""
    rows = drift.filter(
        pl.col("is_champion")
        & (pl.col("kind") == "feature")
        & pl.col("missing_share").is_not_null()
    )
    if not rows.height:
        return None
    thresholds = rules["stability"]["missing_share"]
    change = (
        rows.with_columns(
            group=pl.col("feature").map_elements(input_group, return_dtype=pl.String),
            change=pl.col("missing_share") - pl.col("missing_share_reference"),
        )
        .group_by("group", "month")
        .agg(pl.col("change").get(pl.col("change").abs().arg_max()))
    )
    changed = (
        change.group_by("group")
        .agg(pl.col("change").abs().max())
        .filter(pl.col("change") > thresholds["watch"])
    )
    change = change.join(changed.select("group"), on="group").sort("group", "month")
    if not change.height:
        return None
    months = sorted(set(_month_label(change, "month")))
    names = change["group"].unique(maintain_order=True).to_list()
    cells = zip(change["group"], _month_label(change, "month"), change["change"], strict=True)
    values = {(name, month): value for name, month, value in cells}
    shift = thresholds["shift"]
    figure = go.Figure(
        go.Heatmap(
            z=[[values.get((name, month)) for month in months] for name in names],
            x=months,
            y=names,
            zmin=-1,
            zmax=1,
            colorscale=[
                [0, "#2166ac"],
                [0.5 - shift / 2, "#f7f7f7"],
                [0.5 + shift / 2, "#f7f7f7"],
                [1, "#b2182b"],
            ],
            xgap=1,
            ygap=1,
            hovertemplate="%{y}, %{x}: missing share %{z:+.3f} against training<extra></extra>",
            colorbar={"title": "missing share change"},
        )
    )
    return figure.update_layout(
        xaxis_title="application month",
        yaxis={"title": "input (group)", "autorange": "reversed"},
        height=max(300, 160 + 22 * len(names)),
    )


def calibration_figure(scored_labels: pl.DataFrame) -> go.Figure | None:
    """Mean predicted vs observed default rate in score deciles: points on the diagonal hold."""
    if not scored_labels.height:
        return None
    figure = go.Figure()
    for i, family in enumerate(_families(scored_labels)):
        rows, scope = _labelled(scored_labels, family)
        rank = pl.col("calibrated_probability").rank("ordinal") - 1
        bins = (
            rows.with_columns((rank * 10 // pl.len()).alias("bin"))
            .group_by("bin")
            .agg(
                pl.col("calibrated_probability").mean().alias("predicted"),
                pl.col("label").mean().alias("observed"),
                pl.len().alias("n"),
            )
            .sort("bin")
        )
        figure.add_scatter(
            x=bins["predicted"].to_list(),
            y=bins["observed"].to_list(),
            customdata=bins["n"].to_list(),
            mode="lines+markers",
            name=f"{family} ({scope})",
            line={"color": COLORS[i % len(COLORS)]},
            hovertemplate="predicted %{x:.3f}, observed %{y:.3f}, n=%{customdata}",
        )
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", line={"dash": "dot"}
    )
    return figure.update_layout(
        xaxis={"title": "mean calibrated probability (decile)", "range": [0, 1]},
        yaxis={"title": "observed default rate", "range": [0, 1]},
    )


def score_figure(scores: pl.DataFrame) -> go.Figure | None:
    """The champion's score spread per application month, from precomputed quantiles.

    Shipping quantiles rather than every score keeps the page small however many loans there are.
    """
    probability = pl.col("calibrated_probability")
    stats = (
        scores.filter(pl.col("is_champion"))
        .group_by("application_month")
        .agg(
            *(probability.quantile(q / 100).alias(f"q{q}") for q in (5, 25, 50, 75, 95)),
            probability.mean().alias("mean"),
        )
        .sort("application_month")
    )
    if not stats.height:
        return None
    figure = go.Figure(
        go.Box(
            x=_month_label(stats, "application_month"),
            lowerfence=stats["q5"].to_list(),
            q1=stats["q25"].to_list(),
            median=stats["q50"].to_list(),
            q3=stats["q75"].to_list(),
            upperfence=stats["q95"].to_list(),
            mean=stats["mean"].to_list(),
            name="champion",
            boxmean=True,
        )
    )
    return figure.update_layout(xaxis_title="application month", yaxis_title="calibrated PD")


def comparison_figure(performance: pl.DataFrame) -> go.Figure | None:
    """ROC-AUC, KS and Brier of every family per label month, on shared months."""
    rows = _one_version(performance.filter(pl.col("window") == "month"), "label_month")
    if not rows.height:
        return None
    metrics = (("roc_auc", "ROC-AUC"), ("ks", "KS"), ("brier", "Brier"))
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for i, family in enumerate(_families(rows)):
        one = rows.filter(pl.col("model_family") == family)
        for row, (column, label) in enumerate(metrics, start=1):
            figure.add_scatter(
                x=one["label_month"].to_list(),
                y=one[column].to_list(),
                name=family,
                legendgroup=family,
                showlegend=row == 1,
                mode="lines+markers",
                line={"color": COLORS[i % len(COLORS)]},
                row=row,
                col=1,
            )
            figure.update_yaxes(title_text=label, row=row, col=1)
    figure.update_xaxes(title_text="label month", row=3, col=1)
    return figure.update_layout(height=650)


FAIRNESS_PANELS = (  # (row, col, clock, window key, column, axis title)
    (1, 1, "application", "month", "approval_rate", "approval rate"),
    (1, 2, "application", "evaluate_on", "adverse_impact_ratio", "adverse impact ratio"),
    (2, 1, "label", "evaluate_on", "false_positive_rate", "repayers declined (FPR)"),
    (2, 2, "label", "evaluate_on", "true_positive_rate", "defaulters declined (TPR)"),
)


def fairness_figure(fairness: pl.DataFrame, rules: Mapping) -> go.Figure | None:
    """The champion's approval rate and adverse impact ratio by age band and application month,
    and its error rates by band once labels arrive; hollow markers: bands too small to judge."""
    rows = fairness.filter(pl.col("is_champion") & (pl.col("n") > 0))
    if not rows.height:
        return None
    evaluate_on, limit = rules["fairness"]["evaluate_on"], rules["fairness"]["adverse_impact_ratio"]
    figure = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=[
            f"{title}, {evaluate_on if window == 'evaluate_on' else 'one month'}, by {clock} month"
            for _, _, clock, window, _, title in FAIRNESS_PANELS
        ],
    )
    bands = rows["age_band"].unique(maintain_order=True).to_list()
    for i, band in enumerate(bands):
        for row, col, clock, window, column, _ in FAIRNESS_PANELS:
            one = rows.filter(
                (pl.col("age_band") == band)
                & (pl.col("clock") == clock)
                & (pl.col("window") == (evaluate_on if window == "evaluate_on" else window))
            ).sort("month")
            figure.add_scatter(
                x=one["month"].to_list(),
                y=one[column].to_list(),
                customdata=one["n"].to_list(),
                name=band,
                legendgroup=band,
                showlegend=row == col == 1,
                mode="lines+markers",
                line={"color": COLORS[i % len(COLORS)]},
                marker={"symbol": ["circle" if j else "circle-open" for j in one["judged"]]},
                hovertemplate=f"{band}, %{{x|%Y-%m}}: %{{y:.3f}}, n=%{{customdata}}<extra></extra>",
                row=row,
                col=col,
            )
    figure.add_hline(
        y=limit["min"],
        line={"color": "#d62728", "dash": "dot"},
        annotation_text=f"four-fifths rule {limit['min']}",
        row=1,
        col=2,
    )
    for row, col, *_, title in FAIRNESS_PANELS:
        figure.update_yaxes(title_text=title, row=row, col=col)
    return figure.update_layout(height=650)


def confusion_counts(rows: pl.DataFrame) -> list[list[int]]:
    """[[TN, FP], [FN, TP]]: rows are the actual label, columns the decision."""
    return [
        [rows.filter((pl.col("label") == a) & (pl.col("decision") == d)).height for d in (0, 1)]
        for a in (0, 1)
    ]


def confusion_figure(scored_labels: pl.DataFrame) -> go.Figure | None:
    """Counts at each family's own decision threshold, one annotated heatmap a family."""
    if not scored_labels.height:
        return None
    families = _families(scored_labels)
    cohorts = [_labelled(scored_labels, family) for family in families]
    figure = make_subplots(
        rows=1,
        cols=len(families),
        subplot_titles=[
            f"{f} ({s}, n={r.height})" for f, (r, s) in zip(families, cohorts, strict=True)
        ],
    )
    for col, (rows, _) in enumerate(cohorts, start=1):
        counts = confusion_counts(rows)
        figure.add_heatmap(
            z=counts,
            x=["decided repay (0)", "decided default (1)"],
            y=["repaid (0)", "defaulted (1)"],
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            row=1,
            col=col,
        )
    figure.update_xaxes(title_text="decision")
    return figure.update_yaxes(title_text="label", autorange="reversed")


def action_strip(actions: pl.DataFrame) -> go.Figure | None:
    """The champion's action per month: green monitor, amber active monitoring, red retrain."""
    rows = actions.filter(pl.col("is_champion")).sort("month")
    if not rows.height:
        return None
    scale = [[i / 2, ACTION_COLORS[a]] for i, a in enumerate(ACTIONS)]
    hover = [
        f"{v}: {a}<br>" + "<br>".join(r or [])
        for v, a, r in zip(
            rows["model_version"], rows["action"], rows["reasons"].to_list(), strict=True
        )
    ]
    figure = go.Figure(
        go.Heatmap(
            z=[[ACTIONS.index(a) for a in rows["action"]]],
            x=_month_label(rows, "month"),
            y=["champion"],
            text=[hover],
            hovertemplate="%{x}: %{text}<extra></extra>",
            zmin=0,
            zmax=2,
            colorscale=scale,
            xgap=2,
            showscale=False,
        )
    )
    return figure.update_layout(height=180, xaxis_title="month", margin={"t": 20, "b": 40})


def actions_table(actions: pl.DataFrame) -> str | None:
    """The newest month's action of every monitored version, with the reasons behind it."""
    if not actions.height:
        return None
    newest = actions.filter(pl.col("month") == pl.col("month").max())
    rows = newest.sort("is_champion", "model_family", descending=[True, False]).iter_rows(
        named=True
    )
    body = "".join(
        f"<tr><td>{r['month']:%Y-%m}</td><td>{html.escape(r['model_family'])}</td>"
        f"<td>{html.escape(r['model_version'])}</td><td>{'yes' if r['is_champion'] else ''}</td>"
        f"<td style='background:{ACTION_COLORS.get(r['action'], '#fff')}'>{r['action']}</td>"
        f"<td>{'<br>'.join(html.escape(x) for x in r['reasons'] or []) or '-'}</td></tr>"
        for r in rows
    )
    head = "".join(f"<th>{h}</th>" for h in ("month", "family", "version", "champion", "action"))
    return f"<table><tr>{head}<th>reasons</th></tr>{body}</table>"


def _section(key: str, title: str, caption: str, content: go.Figure | str | None) -> str:
    if isinstance(content, go.Figure):
        content.update_layout(margin={"t": 40}, template="plotly_white")
        content = content.to_html(full_html=False, include_plotlyjs=False, div_id=f"{key}-figure")
    body = content or f"<p class='empty'>{NO_DATA}: nothing to show for this figure.</p>"
    return (
        f"<section id='{key}'><h2>{html.escape(title)}</h2>"
        f"<p class='caption'>{html.escape(caption)}</p>{body}</section>"
    )


STYLE = (
    "body{font-family:sans-serif;margin:1.5em auto;max-width:1200px}"
    ".caption{color:#555;margin:.2em 0 .5em}.empty{color:#999;font-style:italic}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
)


SECTIONS = {  # key: (title, caption); captions may name thresholds from the rules
    "actions": (
        "Actions, newest month",
        "One row per monitored version: the action the thresholds call for and every reason.",
    ),
    "action-strip": (
        "Champion action by month",
        "Green MONITOR, amber ACTIVE_MONITORING, red RETRAIN; hover for the reasons.",
    ),
    "performance": (
        "Performance over time: ROC-AUC by label month",
        "Band: 95% interval of one month; dashed: the pooled window the alarms judge; red lines: "
        "business {business} and data-science {data_science} thresholds; hollow markers: "
        "in-sample months (not held out).",
    ),
    "estimates": (
        "Estimated vs realized performance (champion)",
        "Dashed: what the scores predicted at application time; solid: what the labels showed "
        "mob months later. A widening gap means the model no longer knows its own accuracy.",
    ),
    "drift": (
        "Drift heatmap: champion PSI / CSI by application month",
        "Each cell compares a month's non-missing values with the training population: amber past "
        "watch {watch}, red past shift {shift}; hover for the exact value, blank cells have no "
        "values (see missingness). Months the champion was fitted on are shown, never judged.",
    ),
    "missingness": (
        "Missingness: change of the champion's inputs' missing share by application month",
        "Each cell is the month's missing share minus the training population's, per input "
        "group (the clickstream's inputs are one group); only inputs whose share moved past "
        "the watch threshold ({missing_watch}) in some month.",
    ),
    "calibration": (
        "Calibration by score decile",
        "Each point is a tenth of the loans: above the diagonal the model under-predicts "
        "defaults, below it over-predicts.",
    ),
    "scores": (
        "Champion score distribution by application month",
        "Box: quartiles; whiskers: 5th and 95th percentiles; dashed: mean. A moving box is a "
        "moving population or a moving model.",
    ),
    "comparison": (
        "Model comparison: ROC-AUC, KS and Brier by label month",
        "Higher ROC-AUC and KS and lower Brier are better; one line a family.",
    ),
    "confusion": (
        "Confusion matrices at each family's decision threshold",
        "Rows: what happened; columns: what the model decided; off-diagonal cells are errors.",
    ),
    "fairness": (
        "Fair lending: the champion by age band",
        "Approval rate (decision 0) per application month; the adverse impact ratio against the "
        "most-approved band, pooled over {fairness_window}, with the four-fifths line "
        "({air_min}); once labels arrive, the share of repayers and of defaulters declined. "
        "Hollow markers: bands under {min_band_loans} loans in the pooled window or without a "
        "valid age, shown but not judged.",
    ),
}


def build_dashboard(
    inputs: DashboardInputs, rules: Mapping, title: str = "Model monitoring"
) -> str:
    """The whole page as HTML text; `rules` is load_thresholds()["monitoring"]."""
    contents = {
        "actions": actions_table(inputs.actions),
        "action-strip": action_strip(inputs.actions),
        "performance": performance_figure(inputs.performance, rules),
        "estimates": estimate_figure(inputs.performance, inputs.estimates),
        "drift": drift_figure(inputs.drift, rules),
        "missingness": missingness_figure(inputs.drift, rules),
        "calibration": calibration_figure(inputs.scored_labels),
        "scores": score_figure(inputs.scores),
        "comparison": comparison_figure(inputs.performance),
        "confusion": confusion_figure(inputs.scored_labels),
        "fairness": fairness_figure(inputs.fairness, rules),
    }
    values = {
        **rules["performance"]["roc_auc"],
        **rules["stability"]["score_psi"],
        "missing_watch": rules["stability"]["missing_share"]["watch"],
        "fairness_window": rules["fairness"]["evaluate_on"],
        "air_min": rules["fairness"]["adverse_impact_ratio"]["min"],
        "min_band_loans": rules["fairness"]["min_band_loans"],
    }
    sections = "".join(
        _section(key, heading, caption.format(**values), contents[key])
        for key, (heading, caption) in SECTIONS.items()
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
        f"<body><h1>{html.escape(title)}</h1>{sections}</body></html>"
    )

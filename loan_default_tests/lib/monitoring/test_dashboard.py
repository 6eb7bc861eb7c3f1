"""The monitoring dashboard: every figure present, thresholds drawn, counts right, empty-safe."""

from __future__ import annotations

import copy
import json
import re
from datetime import date
from html.parser import HTMLParser

import polars as pl
import pytest

from loan_default.lib.monitoring.alerts import ACTIONS_SCHEMA
from loan_default.lib.monitoring.dashboard import (
    NO_DATA,
    SECTIONS,
    DashboardInputs,
    build_dashboard,
    confusion_counts,
)
from loan_default.lib.monitoring.fairness import FAIRNESS_SCHEMA
from loan_default.lib.monitoring.monitoring_tables import (
    DRIFT_SCHEMA,
    ESTIMATE_SCHEMA,
    PERFORMANCE_SCHEMA,
)
from loan_default.lib.thresholds import load_thresholds

CHAMP, OLD = "lgbm-20240105T000000000000", "logreg-20240101T000000000000"
VERSIONS = {"lgbm": (CHAMP, True), "logreg": (OLD, False)}
MONTHS = [date(2024, 4, 1), date(2024, 5, 1), date(2024, 6, 1)]
SCORED_LABELS_SCHEMA = {
    "model_family": pl.String,
    "model_version": pl.String,
    "is_champion": pl.Boolean,
    "application_month": pl.Date,
    "label_month": pl.Date,
    "calibrated_probability": pl.Float64,
    "decision": pl.Int8,
    "label": pl.Int64,
    "held_out": pl.Boolean,
}
SCORES_SCHEMA = {
    "model_family": pl.String,
    "is_champion": pl.Boolean,
    "application_month": pl.Date,
    "calibrated_probability": pl.Float64,
}
# (label, decision, held_out): lgbm held out TN 2, FP 1, FN 1, TP 3, plus one in-sample FP
# that must not count; logreg has nothing held out, so all five rows count: TN 3, FN 1, TP 1.
LABELLED = {
    "lgbm": [
        (0, 0, 1),
        (0, 0, 1),
        (0, 1, 1),
        (1, 0, 1),
        (1, 1, 1),
        (1, 1, 1),
        (1, 1, 1),
        (0, 1, 0),
    ],
    "logreg": [(0, 0, 0), (1, 1, 0), (1, 0, 0), (0, 0, 0), (0, 0, 0)],
}


# The champion's bands: (band, n per month, approval rate by month, judged); the pooled window
# repeats the monthly figures with three times the loans.
FAIRNESS_BANDS = [
    ("25-34", 150, (0.8, 0.8, 0.8), True),
    ("35-44", 140, (0.7, 0.6, 0.76), True),
    ("45+", 20, (0.9, 0.9, 0.9), False),
]


def _fairness() -> list[dict]:
    rows = []
    for month in MONTHS:
        i = MONTHS.index(month)
        for clock in ("application", "label"):
            for window, scale in (("month", 1), ("rolling_3m", 3)):
                for band, n, approval, judged in FAIRNESS_BANDS:
                    rows.append(
                        {**_keys("lgbm"), "month": month, "clock": clock, "window": window}
                        | {"age_band": band, "n": n * scale, "judged": judged}
                        | {"approval_rate": approval[i], "adverse_impact_ratio": approval[i] / 0.8}
                        | {"false_positive_rate": 0.1, "true_positive_rate": 0.6}
                    )
    # A non-champion's bands are not drawn.
    rows.append({**_keys("logreg"), "month": MONTHS[0], "clock": "application", "n": 9})
    return rows


def _keys(family: str) -> dict:
    version, champion = VERSIONS[family]
    return {"model_family": family, "model_version": version, "is_champion": champion}


def _inputs() -> DashboardInputs:
    performance, estimates, drift, labelled, scores, actions = [], [], [], [], [], []
    for family in VERSIONS:
        for i, month in enumerate(MONTHS):
            auc = 0.70 + 0.02 * i
            for window in ("month", "rolling_3m"):
                performance.append(
                    {
                        **_keys(family),
                        "label_month": month,
                        "application_month": date(2023, month.month, 1),
                        "window": window,
                        "held_out": i > 0,
                        "roc_auc": auc if window == "month" else auc - 0.01,
                        "roc_auc_low": auc - 0.05,
                        "roc_auc_high": auc + 0.05,
                        "ks": 0.35,
                        "brier": 0.18,
                        "default_rate": 0.29,
                    }
                )
            estimates.append(
                {**_keys(family), "label_month": month, "application_month": month}
                | {"expected_roc_auc": 0.74, "expected_default_rate": 0.3}
            )
            for feature, psi in (("score", 0.05 * i), ("age", 0.3), ("income", None)):
                kind = "score" if feature == "score" else "feature"
                drift.append({**_keys(family), "month": month, "feature": feature, "kind": kind})
                drift[-1] |= {"psi": psi, "missing_share_reference": 0.0, "missing_share": 0.0}
            for feature in ("fe_1_mean", "has_clickstream"):  # the clickstream stops in month 2
                drift.append({**_keys(family), "month": month, "feature": feature})
                drift[-1] |= {"kind": "feature", "missing_share_reference": 0.09}
                drift[-1]["missing_share"] = 1.0 if i == 2 else 0.0
            scores += [
                {**_keys(family), "application_month": month, "calibrated_probability": p / 10}
                for p in range(1, 10)
            ]
            action = "RETRAIN" if i == 2 else "MONITOR"
            reasons = (
                ["roc_auc 0.640 below business threshold 0.650 (P0): RETRAIN"] if i == 2 else []
            )
            actions.append({**_keys(family), "month": month, "action": action, "reasons": reasons})
        for j, (label, decision, held) in enumerate(LABELLED[family]):
            labelled.append(
                {**_keys(family), "application_month": MONTHS[0], "label_month": MONTHS[-1]}
                | {"calibrated_probability": 0.1 + 0.1 * j, "label": label}
                | {"decision": decision, "held_out": bool(held)}
            )
    for row in scores:
        del row["model_version"]
    return DashboardInputs(
        performance=pl.DataFrame(performance, schema=PERFORMANCE_SCHEMA),
        estimates=pl.DataFrame(estimates, schema=ESTIMATE_SCHEMA),
        drift=pl.DataFrame(drift, schema=DRIFT_SCHEMA),
        scored_labels=pl.DataFrame(labelled, schema=SCORED_LABELS_SCHEMA),
        scores=pl.DataFrame(scores, schema=SCORES_SCHEMA),
        actions=pl.DataFrame(actions, schema=ACTIONS_SCHEMA),
        fairness=pl.DataFrame(_fairness(), schema=FAIRNESS_SCHEMA),
    )


def _empty() -> DashboardInputs:
    schemas = (
        PERFORMANCE_SCHEMA,
        ESTIMATE_SCHEMA,
        DRIFT_SCHEMA,
        SCORED_LABELS_SCHEMA,
        SCORES_SCHEMA,
        ACTIONS_SCHEMA,
        FAIRNESS_SCHEMA,
    )
    return DashboardInputs(*(pl.DataFrame(schema=schema) for schema in schemas))


def _section(page: str, key: str) -> str:
    return page.split(f"<section id='{key}'>")[1].split("</section>")[0]


def _figures(section: str) -> list[dict]:
    """The data and layout arguments of each Plotly.newPlot call in a section."""
    decoder, figures = json.JSONDecoder(), []
    for call in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', section):
        data, end = decoder.raw_decode(section, call.end())
        layout, _ = decoder.raw_decode(section, re.compile(r",\s*").match(section, end).end())
        figures.append({"data": data, "layout": layout})
    return figures


@pytest.fixture(scope="module")
def rules() -> dict:
    rules = copy.deepcopy(load_thresholds()["monitoring"])
    rules["performance"]["roc_auc"].update(business=0.6137, data_science=0.7291)
    rules["fairness"]["evaluate_on"] = "rolling_3m"  # the windows this module's frames hold
    return rules


@pytest.fixture(scope="module")
def page(rules: dict) -> str:
    return build_dashboard(_inputs(), rules, title="Monitoring <test>")


def test_every_figure_is_drawn_once_with_one_plotly_js(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    assert page.count("* plotly.js v") == 1
    assert "<script src=" not in page  # nothing fetched: readable offline
    assert "Monitoring &lt;test&gt;" in page
    assert NO_DATA not in page
    for key, (title, _) in SECTIONS.items():
        assert title.replace("'", "&#x27;") in page
        if key != "actions":
            assert len(_figures(_section(page, key))) == 1, key


def test_performance_figure_draws_the_rules_thresholds(page: str) -> None:
    (figure,) = _figures(_section(page, "performance"))
    assert sorted(shape["y0"] for shape in figure["layout"]["shapes"]) == [0.6137, 0.7291]
    lines = {trace["name"]: trace for trace in figure["data"] if trace.get("name")}
    assert {"lgbm month", "lgbm rolling_3m", "logreg month", "logreg rolling_3m"} <= set(lines)
    # the first label month is in-sample: hollow marker
    assert lines["lgbm month"]["marker"]["symbol"] == ["circle-open", "circle", "circle"]


def test_confusion_matrices_count_held_out_rows_or_all(page: str) -> None:
    (figure,) = _figures(_section(page, "confusion"))
    by_family = {t["xaxis"]: t["z"] for t in figure["data"]}
    assert by_family == {"x": [[2, 1], [1, 3]], "x2": [[3, 0], [1, 1]]}  # lgbm, logreg
    titles = [a["text"] for a in figure["layout"]["annotations"]]
    assert titles == ["lgbm (held out, n=7)", "logreg (all rows, none held out, n=5)"]
    rows = pl.DataFrame({"label": [0, 1, 1, 0], "decision": [1, 1, 0, 1]})
    assert confusion_counts(rows) == [[0, 2], [1, 1]]


def test_drift_heatmap_puts_score_first_and_caps_colour_at_twice_shift(page: str) -> None:
    (figure,) = _figures(_section(page, "drift"))
    (heatmap,) = figure["data"]
    assert heatmap["y"] == ["score", "age", "fe_1_mean", "has_clickstream", "income"]
    assert heatmap["x"] == ["2024-04", "2024-05", "2024-06"]
    assert heatmap["z"][0] == [0.0, 0.05, 0.1] and heatmap["z"][4] == [None, None, None]
    assert (heatmap["zmin"], heatmap["zmax"]) == (0, 0.5)


def test_actions_table_shows_the_newest_month_with_reasons(page: str) -> None:
    table = _section(page, "actions")
    assert table.count("<tr>") == 3  # header, champion, challenger
    assert table.index(CHAMP) < table.index(OLD)
    assert "2024-06" in table and "2024-05" not in table
    assert "below business threshold 0.650 (P0): RETRAIN" in table
    (strip,) = _figures(_section(page, "action-strip"))
    assert strip["data"][0]["z"] == [[0, 0, 2]]


def test_empty_inputs_give_a_valid_page_of_no_data_notes(rules: dict) -> None:
    page = build_dashboard(_empty(), rules)
    HTMLParser().feed(page)
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    assert page.count("* plotly.js v") == 1
    assert page.count(NO_DATA) == len(SECTIONS)
    assert "Plotly.newPlot" not in page


def test_missingness_heatmap_shows_the_clickstream_as_one_group(page: str) -> None:
    (figure,) = _figures(_section(page, "missingness"))
    (heatmap,) = figure["data"]
    assert heatmap["y"] == ["clickstream"]  # age and income never changed: not drawn
    assert heatmap["z"] == [[-0.09, -0.09, 0.91]]


def test_fairness_panel_draws_the_champions_bands_and_the_four_fifths_line(
    page: str, rules: dict
) -> None:
    (figure,) = _figures(_section(page, "fairness"))
    limit = rules["fairness"]["adverse_impact_ratio"]["min"]
    assert [shape["y0"] for shape in figure["layout"]["shapes"]] == [limit]
    titles = [a["text"] for a in figure["layout"]["annotations"]]
    assert "approval rate, one month, by application month" in titles
    assert "adverse impact ratio, rolling_3m, by application month" in titles
    assert "repayers declined (FPR), rolling_3m, by label month" in titles
    assert f"four-fifths rule {limit}" in titles
    # Four panels a band, the champion's three bands only; legend entries once a band.
    assert len(figure["data"]) == 4 * len(FAIRNESS_BANDS)
    assert [t["name"] for t in figure["data"] if t["showlegend"]] == ["25-34", "35-44", "45+"]
    ratio = {t["name"]: t for t in figure["data"] if t["yaxis"] == "y2"}
    assert ratio["35-44"]["y"] == pytest.approx([0.875, 0.75, 0.95])
    assert ratio["45+"]["marker"]["symbol"] == ["circle-open"] * 3  # too small: not judged
    assert ratio["25-34"]["marker"]["symbol"] == ["circle"] * 3
    assert ratio["45+"]["customdata"] == [60, 60, 60]  # n of the pooled window

"""Fairness by age band: rates checked by hand, the four-fifths rule at its threshold, and the
edge-case rules (empty, small and unknown bands; a month without approvals)."""

from __future__ import annotations

import copy
from datetime import date

import polars as pl
import pytest

from loan_default.lib.monitoring.fairness import (
    FAIRNESS_SCHEMA,
    UNKNOWN_BAND,
    FairnessRules,
    adverse_impact_findings,
    age_band,
    band_rates,
    fairness_rows,
    not_judged_bands,
    with_adverse_impact,
)
from loan_default.lib.monitoring.monitoring_tables import ScoredVersion
from loan_default.lib.thresholds import load_thresholds

STEP = 1e-6


def rules(min_band_loans: int) -> FairnessRules:
    section = copy.deepcopy(load_thresholds()["monitoring"]["fairness"])
    section["min_band_loans"] = min_band_loans
    return FairnessRules.of(section)


# One month of 17 applications. Band, age, decision (1 = declined), label, calibrated PD:
#   14-24: 4 loans, declined 1        -> approval 3/4 = 0.75
#   25-34: 5 loans, declined 1        -> approval 4/5 = 0.80  (the most-approved judged band)
#   35-44: 5 loans, declined 2        -> approval 3/5 = 0.60
#   45+:   2 loans, declined 0        -> approval 2/2 = 1.00, but n=2 < 3: not judged, and so
#                                        not the reference despite the highest rate
#   unknown (age null): 1, declined 1 -> approval 0.00, never judged
# Adverse impact ratio = approval / 0.80 (25-34's):
#   14-24: 0.75 / 0.80 = 0.9375 (holds); 25-34: 1.0; 35-44: 0.60 / 0.80 = 0.75 (below 0.8);
#   45+: 1.00 / 0.80 = 1.25 (shown); unknown: 0.0 (shown).
# Labels: 25-34 has defaults at rows 3 and 5 (PDs 0.5 and 0.9); of them only PD 0.9 is
# declined: TPR 1/2 = 0.5; its repayers (0.1, 0.6, 0.3) are all approved: FPR 0/3 = 0.
# ROC-AUC pairs: 0.9 beats all three repayers (3), 0.5 beats 0.1 and 0.3 but not 0.6 (2): 5/6.
# 35-44 has no default: its TPR and ROC-AUC do not exist (null), FPR = 2 declined / 5 = 0.4.
APPLICATIONS = [  # (age, decision, label, calibrated_probability)
    (19, 0, 0, 0.1),
    (24, 0, 1, 0.2),
    (14, 0, 0, 0.3),
    (22, 1, 1, 0.8),
    (25, 0, 0, 0.1),
    (30, 0, 0, 0.6),
    (31, 0, 1, 0.5),
    (34, 0, 0, 0.3),
    (33, 1, 1, 0.9),
    (35, 0, 0, 0.1),
    (40, 0, 0, 0.2),
    (44, 0, 0, 0.3),
    (41, 1, 0, 0.8),
    (38, 1, 0, 0.9),
    (45, 0, 0, 0.2),
    (56, 0, 1, 0.4),
    (None, 1, 0, 0.9),
]


def scored(applications=APPLICATIONS, rule: FairnessRules | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(
        applications,
        schema={
            "age": pl.Int64,
            "decision": pl.Int8,
            "label": pl.Int64,
            "calibrated_probability": pl.Float64,
        },
        orient="row",
    )
    return frame.with_columns(age_band(pl.col("age"), (rule or rules(3)).bands))


def by_band(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["age_band"]: row for row in frame.iter_rows(named=True)}


def test_bands_come_from_the_thresholds_file_with_unknown_for_a_missing_age():
    rule = rules(3)
    assert rule.band_names == ["14-24", "25-34", "35-44", "45+", UNKNOWN_BAND]
    bands = scored()["age_band"].to_list()
    assert bands[:4] == ["14-24"] * 4 and bands[4] == "25-34" and bands[15] == "45+"
    assert bands[-1] == UNKNOWN_BAND


def test_adverse_impact_and_error_rates_by_hand():
    rule = rules(3)
    bands = by_band(band_rates(scored(), rule, labelled=True))
    approval = {b: r["approval_rate"] for b, r in bands.items()}
    assert approval == pytest.approx(
        {"14-24": 0.75, "25-34": 0.8, "35-44": 0.6, "45+": 1.0, UNKNOWN_BAND: 0.0}
    )
    ratio = {b: r["adverse_impact_ratio"] for b, r in bands.items()}
    assert ratio == pytest.approx(
        {"14-24": 0.9375, "25-34": 1.0, "35-44": 0.75, "45+": 1.25, UNKNOWN_BAND: 0.0}
    )
    assert {r["reference_band"] for r in bands.values()} == {"25-34"}
    assert {b for b, r in bands.items() if r["judged"]} == {"14-24", "25-34", "35-44"}
    assert [bands[b]["n"] for b in rule.band_names] == [4, 5, 5, 2, 1]
    assert [bands[b]["approved"] for b in rule.band_names] == [3, 4, 3, 2, 0]
    middle = bands["25-34"]
    assert (middle["defaults"], middle["default_rate"]) == (2, pytest.approx(0.4))
    assert middle["true_positive_rate"] == pytest.approx(0.5)
    assert middle["false_positive_rate"] == 0.0
    assert middle["roc_auc"] == pytest.approx(5 / 6)
    no_defaults = bands["35-44"]
    assert no_defaults["true_positive_rate"] is None and no_defaults["roc_auc"] is None
    assert no_defaults["false_positive_rate"] == pytest.approx(0.4)
    [finding] = adverse_impact_findings(band_rates(scored(), rule, labelled=True), rule)
    assert finding.signal == "adverse_impact_ratio:35-44"
    assert finding.reason.startswith("adverse_impact_ratio:35-44 0.750 below four-fifths")
    assert "25-34's 0.800" in finding.reason and finding.action == "ACTIVE_MONITORING"


def test_application_clock_has_no_label_rates():
    bands = band_rates(scored().drop("label"), rules(3), labelled=False)
    assert bands["default_rate"].is_null().all() and bands["roc_auc"].is_null().all()
    assert by_band(bands)["35-44"]["adverse_impact_ratio"] == pytest.approx(0.75)


def rates(approval: dict[str, float], n: int = 500) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "age_band": list(approval),
            "n": [n] * len(approval),
            "approval_rate": [*approval.values()],
        }
    )


@pytest.mark.parametrize(
    ("offset", "flagged"),
    [(0.0, False), (-STEP, True), (STEP, False)],  # exactly at 0.8 holds
)
def test_four_fifths_rule_at_just_below_and_just_above(offset: float, flagged: bool):
    rule = rules(100)
    # 25-34 approves 0.5; 35-44 approves 0.4 + offset: its ratio is 0.8 + offset / 0.5.
    bands = with_adverse_impact(rates({"25-34": 0.5, "35-44": 0.4 + offset}), rule)
    findings = adverse_impact_findings(bands, rule)
    assert [f.signal for f in findings] == (["adverse_impact_ratio:35-44"] if flagged else [])


@pytest.mark.parametrize(("n", "judged"), [(100, True), (99, False), (101, True)])
def test_only_bands_with_the_minimum_count_are_judged(n: int, judged: bool):
    rule = rules(100)
    bands = pl.concat(
        [rates({"25-34": 0.9, "35-44": 0.5}, n=500), rates({"45+": 0.3, "14-24": 0.99}, n=n)]
    )
    rated = by_band(with_adverse_impact(bands, rule))
    assert rated["45+"]["judged"] is judged
    # A small band is never the reference, however high its rate: 14-24 leads only when judged.
    assert rated["25-34"]["reference_band"] == ("14-24" if judged else "25-34")
    signals = {f.signal for f in adverse_impact_findings(with_adverse_impact(bands, rule), rule)}
    assert ("adverse_impact_ratio:45+" in signals) is judged
    assert "adverse_impact_ratio:35-44" in signals  # 0.5 / 0.9 or 0.5 / 0.99: flagged either way


def test_an_empty_band_has_a_row_with_zero_loans_and_no_rates():
    rule = rules(3)
    no_older = scored([a for a in APPLICATIONS if a[0] is None or a[0] < 45])
    bands = by_band(band_rates(no_older, rule, labelled=True))
    assert list(bands) == rule.band_names
    empty = bands["45+"]
    assert (empty["n"], empty["approved"], empty["judged"]) == (0, None, False)
    assert empty["approval_rate"] is None and empty["adverse_impact_ratio"] is None
    assert not_judged_bands(band_rates(no_older, rule, labelled=True), rule) == [
        "45+ (n=0 < 3)",
        "unknown (n=1, no valid age)",
    ]
    # A version without any row this month still gets every band, all empty.
    nothing = band_rates(no_older.clear(), rule, labelled=True)
    assert nothing["n"].to_list() == [0] * 5 and not nothing["judged"].any()
    assert adverse_impact_findings(nothing, rule) == []


def test_fewer_than_two_judged_bands_is_not_judged():
    rule = rules(100)
    bands = with_adverse_impact(
        pl.concat([rates({"25-34": 0.9}), rates({"35-44": 0.1}, n=99)]), rule
    )
    assert adverse_impact_findings(bands, rule) == []


def test_a_month_without_any_approval_warns_that_the_ratio_is_undefined():
    rule = rules(3)
    everyone_declined = [(age, 1, label, p) for age, _, label, p in APPLICATIONS]
    bands = band_rates(scored(everyone_declined), rule, labelled=True)
    assert bands["adverse_impact_ratio"].is_null().all()
    [finding] = adverse_impact_findings(bands, rule)
    assert finding.signal == "approval_rate" and finding.action == "ACTIVE_MONITORING"
    assert "no judged age band had an approved application" in finding.reason


def test_fairness_rows_pool_the_window_and_mark_fitted_months():
    rule = rules(3)
    version = ScoredVersion(
        family="gradient_boosting",
        version_id="gb-1",
        threshold=0.7,
        train_months=(date(2023, 1, 1), date(2023, 12, 1)),
        last_fitted_month=date(2024, 2, 1),
        oot_roc_auc=0.8,
        features=("age",),
    )
    keys = {
        "model_family": pl.lit("gradient_boosting"),
        "model_version": pl.lit("gb-1"),
        "is_champion": pl.lit(True),
    }
    months = [date(2024, 2, 1), date(2024, 3, 1)]
    rows = pl.concat(
        scored().with_columns(application_month=pl.lit(m), **keys).drop("label") for m in months
    )
    table = fairness_rows(
        months[1],
        "application",
        months[1],
        rows.filter(pl.col("application_month") == months[1]),
        rows,
        {"gb-1": version},
        rule,
        rolling_months=3,
    )
    assert table.schema == pl.Schema(FAIRNESS_SCHEMA)
    assert table.group_by("window").agg(pl.col("n").sum()).sort("window").rows() == [
        ("month", 17),
        ("rolling_3m", 34),
    ]
    assert table["months_pooled"].unique().sort().to_list() == [1, 2]
    assert table["held_out"].all() and table["threshold"].unique().to_list() == [0.7]
    assert table.height == 2 * len(rule.band_names)

"""Fairness by age band: rates checked by hand, the four-fifths rule at its threshold, the
edge-case rules (empty, small and unknown bands; a month without approvals), and the grouped
table against a direct computation per cell with sklearn."""

from __future__ import annotations

import copy
from datetime import date

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sklearn.metrics import roc_auc_score

from loan_default.lib.monitoring.fairness import (
    FAIRNESS_SCHEMA,
    UNKNOWN_BAND,
    AgeBand,
    FairnessRules,
    adverse_impact_findings,
    age_band,
    band_rates,
    fairness_rows,
    fairness_table,
    not_judged_bands,
    with_adverse_impact,
)
from loan_default.lib.monitoring.monitoring_tables import ScoredVersion
from loan_default.lib.months import add_months
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
    # The caller cuts `pooled` to the window: it stands for the rolling and adaptive windows.
    assert table.group_by("window").agg(pl.col("n").sum()).sort("window").rows() == [
        ("adaptive", 34),
        ("month", 17),
        ("rolling_3m", 34),
    ]
    assert table["months_pooled"].unique().sort().to_list() == [1, 2]
    assert table["held_out"].all() and table["threshold"].unique().to_list() == [0.7]
    assert table.height == 3 * len(rule.band_names)


def _version(family: str, version_id: str, threshold: float, last_fitted: date) -> ScoredVersion:
    train = (date(2022, 1, 1), date(2022, 12, 1))
    return ScoredVersion(family, version_id, threshold, train, last_fitted, 0.8, ("age",))


RANDOM_VERSIONS = {
    "gb-1": _version("gradient_boosting", "gb-1", 0.5, date(2023, 2, 1)),
    "lr-1": _version("logistic_regression", "lr-1", 0.4, date(2023, 4, 1)),
    "gb-2": _version("gradient_boosting", "gb-2", 0.6, date(2023, 5, 1)),
}
RANDOM_MONTHS = [date(2023, m, 1) for m in range(1, 10)]
MOB = 3


def random_frames(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Small random months: scores on a coarse grid (ties), bands of a few loans (one class,
    empty), gb-2 scoring from month 4 and taking the champion flag from gb-1 in month 5."""
    rng = np.random.default_rng(seed)
    frames = []
    for month in RANDOM_MONTHS[:6]:
        n = int(rng.integers(15, 40))
        ages = rng.choice([None, 18, 23, 27, 33, 38, 44, 47, 56], size=n).tolist()
        if month.month == 2:
            ages = [a if a is None or a < 45 else 30 for a in ages]  # an empty 45+ band
        label = (rng.random(n) < 0.3).astype(np.int8)
        for version_id, version in RANDOM_VERSIONS.items():
            if version_id == "gb-2" and month.month < 4:
                continue
            p = np.round(np.clip(label * 0.2 + rng.random(n) * 0.8, 0, 1), 1)
            flag = {"gb-1": month.month < 5, "gb-2": month.month >= 5}.get(version_id, False)
            frames.append(
                pl.DataFrame(
                    {
                        "application_month": [month] * n,
                        "age": ages,
                        "label": label,
                        "calibrated_probability": p,
                        "decision": (p >= version.threshold).astype(np.int8),
                        "model_family": version.family,
                        "model_version": version_id,
                        "is_champion": flag,
                    },
                    schema_overrides={"age": pl.Int64},
                )
            )
    scored = pl.concat(frames).with_columns(age_band(pl.col("age"), rules(5).bands))
    labelled = scored.with_columns(label_month=pl.col("application_month").dt.offset_by(f"{MOB}mo"))
    return scored.drop("label"), labelled


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def direct_band_rows(cohort: pl.DataFrame, rule: FairnessRules, labelled: bool) -> list[dict]:
    """One cohort's bands by the rules written out, numpy and sklearn per band."""
    rows = []
    for band in rule.band_names:
        part = cohort.filter(pl.col("age_band") == band)
        decision = part["decision"].to_numpy()
        n, approved = len(decision), int((decision == 0).sum())
        row = {"age_band": band, "n": n, "approved": approved if n else None}
        row["approval_rate"] = _rate(approved, n)
        row |= dict.fromkeys(
            ["defaults", "default_rate", "true_positive_rate", "false_positive_rate", "roc_auc"]
        )
        if labelled and n:
            y, p = part["label"].to_numpy(), part["calibrated_probability"].to_numpy()
            defaults = int(y.sum())
            row["defaults"], row["default_rate"] = defaults, defaults / n
            row["true_positive_rate"] = _rate(int(((decision == 1) & (y == 1)).sum()), defaults)
            repayers = n - defaults
            row["false_positive_rate"] = _rate(int(((decision == 1) & (y == 0)).sum()), repayers)
            row["roc_auc"] = float(roc_auc_score(y, p)) if defaults and repayers else None
        row["judged"] = band != UNKNOWN_BAND and n >= rule.min_band_loans
        rows.append(row)
    judged = [r for r in rows if r["judged"]]
    best = max(judged, key=lambda r: r["approval_rate"], default=None)  # first on a tie
    for row in rows:
        row["reference_band"] = best["age_band"] if best else None
        defined = best and best["approval_rate"] and row["approval_rate"] is not None
        row["adverse_impact_ratio"] = (
            row["approval_rate"] / best["approval_rate"] if defined else None
        )
    return rows


def adaptive_months(frame: pl.DataFrame, column: str, month: date, rule: FairnessRules) -> int:
    """The adaptive window by its rule, written out: try 1, 2, ... months back from `month`
    until every configured band holds min_band_loans loans; the cap when none does."""
    for months in range(1, rule.max_window_months + 1):
        window = frame.filter(pl.col(column).is_between(add_months(month, -(months - 1)), month))
        counts = window["age_band"].value_counts()
        n = dict(zip(counts["age_band"], counts["count"], strict=True))
        if all(n.get(b.name, 0) >= rule.min_band_loans for b in rule.bands):
            return months
    return rule.max_window_months


def direct_table(scored, labelled, months, rule: FairnessRules, rolling: int) -> pl.DataFrame:
    """The table cell by cell: month, clock, version present in the month, window."""
    out = []
    for month in months:
        first = add_months(month, -(rolling - 1))
        for clock, frame, column, application_month in (
            ("application", scored, "application_month", month),
            ("label", labelled, "label_month", add_months(month, -MOB)),
        ):
            this_month = frame.filter(pl.col(column) == month)
            keys = this_month.select("model_family", "model_version", "is_champion").unique()
            for family, version_id, champion in keys.rows():
                version = RANDOM_VERSIONS[version_id]
                pooled = frame.filter(
                    (pl.col("model_version") == version_id)
                    & pl.col(column).is_between(first, month)
                )
                version_rows = frame.filter(pl.col("model_version") == version_id)
                back = adaptive_months(version_rows, column, month, rule) - 1
                adaptive = version_rows.filter(
                    pl.col(column).is_between(add_months(month, -back), month)
                )
                month_rows = this_month.filter(
                    (pl.col("model_version") == version_id)
                    & (pl.col("model_family") == family)
                    & (pl.col("is_champion") == champion)
                )
                for window, cohort, pooled_months in (
                    ("month", month_rows, 1),
                    (f"rolling_{rolling}m", pooled, pooled["application_month"].n_unique()),
                    ("adaptive", adaptive, adaptive["application_month"].n_unique()),
                ):
                    for row in direct_band_rows(cohort, rule, clock == "label"):
                        out.append(
                            row
                            | {
                                "month": month,
                                "clock": clock,
                                "application_month": application_month,
                                "model_family": family,
                                "model_version": version_id,
                                "is_champion": champion,
                                "window": window,
                                "months_pooled": pooled_months,
                                "held_out": application_month > version.last_fitted_month,
                                "threshold": version.threshold,
                            }
                        )
    return pl.DataFrame(out, schema=FAIRNESS_SCHEMA)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_grouped_table_equals_a_direct_computation_per_cell(seed: int):
    rule = rules(5)
    scored, labelled = random_frames(seed)
    grouped = fairness_table(RANDOM_MONTHS, scored, labelled, RANDOM_VERSIONS, rule, 3)
    direct = direct_table(scored, labelled, RANDOM_MONTHS, rule, 3)
    key = ["month", "clock", "model_version", "is_champion", "window", "age_band"]
    assert_frame_equal(grouped.sort(key), direct.sort(key), rel_tol=0, abs_tol=1e-12)
    # The random months reach every rule: one-class and empty bands, small bands not judged,
    # a version whose champion flag moved inside a rolling window, months without a clock.
    assert grouped.filter(pl.col("n") > 0)["roc_auc"].is_null().any()
    assert (grouped["n"] == 0).any() and (~grouped["judged"] & (grouped["n"] > 0)).any()
    assert grouped.filter(pl.col("model_version") == "gb-2")["is_champion"].n_unique() == 2
    adaptive = grouped.filter(pl.col("window") == "adaptive")
    assert set(adaptive["months_pooled"]) == {1, 2}  # a month alone, and a month with one before
    months = {
        c: set(grouped.filter(pl.col("clock") == c)["month"]) for c in ("application", "label")
    }
    assert months == {"application": set(RANDOM_MONTHS[:6]), "label": set(RANDOM_MONTHS[3:])}


# Three bands, monthly loan counts (min_band_loans 10, at most 4 months):
#   month  1   2   3   4   5   6
#   14-24  10  10  10  10  10  10
#   25-34  4   4   12  3   3   3
#   35+    0   9   1   5   5   0
# The shortest trailing window giving every band 10 loans, by hand:
#   1: no earlier month can fill 25-34 (4) or 35+ (0): the cap, 4 months, holding 1 month;
#   2: 25-34 4+4 = 8 < 10 with all there is: the cap, holding 2 months;
#   3: alone 35+ has 1; with month 2: 25-34 16, 35+ 10: 2 months;
#   4: 2 months give 35+ 6; 3 months: 25-34 19, 35+ 15: 3 months;
#   5: 2 months: 25-34 6; 3 months: 25-34 18, 35+ 11: 3 months;
#   6: 3 months: 25-34 9; 4 months: 25-34 21, 35+ 11: 4 months.
WINDOW_COUNTS = {20: [10, 10, 10, 10, 10, 10], 30: [4, 4, 12, 3, 3, 3], 40: [0, 9, 1, 5, 5, 0]}
WINDOW_MONTHS = [date(2024, m, 1) for m in range(1, 7)]


def test_the_adaptive_window_is_the_shortest_that_judges_every_band():
    rule = FairnessRules(
        bands=(AgeBand("14-24", 14, 24), AgeBand("25-34", 25, 34), AgeBand("35+", 35, None)),
        min_band_loans=10,
        min_adverse_impact_ratio=0.8,
        action="ACTIVE_MONITORING",
        evaluate_on="adaptive",
        max_window_months=4,
    )
    version = _version("gradient_boosting", "gb-1", 0.5, date(2023, 12, 1))
    ages = [
        (month, age)
        for age, counts in WINDOW_COUNTS.items()
        for month, count in zip(WINDOW_MONTHS, counts, strict=True)
        for _ in range(count)
    ]
    scored = pl.DataFrame(ages, schema=["application_month", "age"], orient="row").with_columns(
        age_band(pl.col("age"), rule.bands),
        decision=pl.lit(0, pl.Int8),
        model_family=pl.lit("gradient_boosting"),
        model_version=pl.lit("gb-1"),
        is_champion=pl.lit(True),
    )
    labelled = scored.head(0).with_columns(
        label_month=pl.col("application_month"), label=0, calibrated_probability=0.0
    )
    table = fairness_table(
        WINDOW_MONTHS, scored, labelled, {"gb-1": version}, rule, rolling_months=3
    ).filter(pl.col("window") == "adaptive")
    by_month = table.group_by("month").agg(
        pl.col("months_pooled").first(), pl.col("age_band").filter(pl.col("judged"))
    )
    assert by_month.sort("month").rows() == [
        (WINDOW_MONTHS[0], 1, ["14-24"]),
        (WINDOW_MONTHS[1], 2, ["14-24"]),
        (WINDOW_MONTHS[2], 2, ["14-24", "25-34", "35+"]),
        (WINDOW_MONTHS[3], 3, ["14-24", "25-34", "35+"]),
        (WINDOW_MONTHS[4], 3, ["14-24", "25-34", "35+"]),
        (WINDOW_MONTHS[5], 4, ["14-24", "25-34", "35+"]),
    ]
    # Month 6 pools months 3-6: 25-34 has 12 + 3 + 3 + 3 = 21 loans, 35+ 1 + 5 + 5 + 0 = 11.
    sixth = table.filter(pl.col("month") == WINDOW_MONTHS[5])
    assert sixth["n"].to_list() == [40, 21, 11, 0]


def test_on_the_real_data_the_adaptive_window_judges_45_and_over_in_every_month(real_warehouse):
    """The real feature store's ages, every loan approved by one version: window lengths
    depend on the band counts alone. 45+ holds 67-107 loans a month; it reaches 100 alone in
    2023-01 (101) and 2023-06 (107), and with the month before in every other month."""
    import duckdb

    with duckdb.connect(str(real_warehouse[0]), read_only=True) as connection:
        ages = connection.execute("select application_month, age from gold.feature_store").pl()
    rule = FairnessRules.of(load_thresholds()["monitoring"]["fairness"])
    scored = ages.with_columns(
        age_band(pl.col("age"), rule.bands),
        decision=pl.lit(0, pl.Int8),
        model_family=pl.lit("gradient_boosting"),
        model_version=pl.lit("gb-1"),
        is_champion=pl.lit(True),
    )
    labelled = scored.head(0).with_columns(
        label_month=pl.col("application_month"), label=0, calibrated_probability=0.0
    )
    months = sorted(set(ages["application_month"]))
    version = _version("gradient_boosting", "gb-1", 0.5, date(2024, 10, 1))
    table = fairness_table(months, scored, labelled, {"gb-1": version}, rule, 3)
    adaptive = table.filter(pl.col("window") == "adaptive")
    assert len(months) == 25 and adaptive["month"].n_unique() == 25
    older = adaptive.filter(pl.col("age_band") == "45+")
    assert older["judged"].all() and (older["n"] >= rule.min_band_loans).all()
    one_month = older.filter(pl.col("months_pooled") == 1)["month"].to_list()
    assert one_month == [date(2023, 1, 1), date(2023, 6, 1)]
    assert older.filter(pl.col("months_pooled") != 1)["months_pooled"].unique().to_list() == [2]
    # A month alone leaves 45+ out of all but those two months.
    alone = table.filter((pl.col("window") == "month") & (pl.col("age_band") == "45+"))
    assert alone["judged"].sum() == 2

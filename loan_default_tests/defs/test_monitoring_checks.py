"""The monitoring checks' pass, WARN and ERROR at, just below and just above the thresholds."""

from datetime import date

import dagster as dg
import polars as pl
import pytest

from loan_default.defs.monitoring.assets import (
    FAIRNESS_RULES,
    RULES,
    adverse_impact_check_results,
    estimate_check_results,
    performance_check_results,
    stability_check_results,
)
from loan_default.lib.monitoring.fairness import age_band, fairness_rows
from loan_default.lib.monitoring.monitoring_tables import (
    DRIFT_SCHEMA,
    ESTIMATE_SCHEMA,
    PERFORMANCE_SCHEMA,
    ScoredVersion,
)

STEP = 1e-6
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def drift_table(
    score_psi: float,
    feature_csi: float,
    missing_change: float = 0.0,
    month=date(2024, 12, 1),
    held_out: bool = True,
) -> pl.DataFrame:
    champion = (month, "gradient_boosting", "gb-1", True, held_out)
    rows = [
        (*champion, "score", "score", score_psi, 0.0, 0.0),
        (*champion, "age", "feature", feature_csi, 0.0, 0.0),
        (*champion, "fe_1_mean", "feature", 0.0, 0.09, 0.09 + missing_change),
        # A non-champion's shift never fails the champion's checks.
        (month, "logistic_regression", "lr-1", False, True, "score", "score", 9.0, 0.0, 0.0),
        # An older month's shift is history: the newest month is judged.
        (date(2024, 1, 1), "gradient_boosting", "gb-1", True, True, "score", "score", 9.0, 0, 0),
    ]
    return pl.DataFrame(
        [(*r, 5000, 500) for r in rows], schema=list(DRIFT_SCHEMA), orient="row"
    ).cast(DRIFT_SCHEMA)


def outcome(results, name):
    [result] = [r for r in results if r.check_name == name]
    return result.passed, (result.severity if not result.passed else None)


@pytest.mark.parametrize(
    ("offset", "level", "expected"),
    [
        (0, "shift", (True, None)),  # at the shift threshold: a watch, which is MONITOR
        (-STEP, "shift", (True, None)),
        (STEP, "shift", (False, WARN)),  # a score shift investigates; it does not retrain
        (0, "watch", (True, None)),
        (-STEP, "watch", (True, None)),
        (STEP, "watch", (True, None)),  # a watch is MONITOR
    ],
)
def test_score_psi_check(offset, level, expected):
    value = RULES["stability"]["score_psi"][level] + offset
    results = stability_check_results(drift_table(value, 0.0))
    assert outcome(results, "champion_score_psi") == expected
    assert outcome(results, "champion_feature_csi") == (True, None)


@pytest.mark.parametrize(
    ("offset", "level", "expected"),
    [
        (0, "shift", (True, None)),  # at the shift threshold: a watch, which is MONITOR
        (STEP, "shift", (False, WARN)),  # a feature shift calls for ACTIVE_MONITORING
        (STEP, "watch", (True, None)),
    ],
)
def test_feature_csi_check(offset, level, expected):
    value = RULES["stability"]["feature_csi"][level] + offset
    results = stability_check_results(drift_table(0.0, value))
    assert outcome(results, "champion_feature_csi") == expected
    [csi] = [r for r in results if r.check_name == "champion_feature_csi"]
    assert csi.metadata["model_version"].value == "gb-1"
    assert csi.metadata["month"].value == "2024-12-01"


def test_missing_share_check_names_the_clickstream_and_fitted_months_are_not_judged():
    shift = RULES["stability"]["missing_share"]["shift"]
    results = stability_check_results(drift_table(0.0, 0.0, missing_change=shift + STEP))
    assert outcome(results, "champion_input_missing") == (False, WARN)
    [missing] = [r for r in results if r.check_name == "champion_input_missing"]
    assert "missing:clickstream" in missing.description
    in_window = stability_check_results(drift_table(9.0, 9.0, missing_change=0.9, held_out=False))
    for result in in_window:
        assert result.passed and "fitted window" in result.description


def performance_table(metrics: dict, held_out: bool = True) -> pl.DataFrame:
    base = {name: None for name in PERFORMANCE_SCHEMA}
    good = {"roc_auc": 0.80, "ks": 0.45, "brier": 0.15, "default_rate_gap": 0.01}
    row = base | good | {"pr_auc": 0.6, "f1": 0.6} | metrics  # no baseline: no drop judged
    row |= {
        "label_month": date(2025, 7, 1),
        "application_month": date(2025, 1, 1),
        "model_family": "gradient_boosting",
        "model_version": "gb-1",
        "is_champion": True,
        "window": RULES["evaluate_on"],
        "held_out": held_out,
        "n": 1500,
    }
    return pl.DataFrame([row], schema=PERFORMANCE_SCHEMA)


@pytest.mark.parametrize("metric", list(RULES["performance"]))
def test_performance_checks(metric):
    rule = RULES["performance"][metric]
    worse = -STEP if rule["direction"] == "higher" else STEP
    name = f"champion_{metric}"

    def judged(value):
        return outcome(performance_check_results(performance_table({metric: value})), name)

    # P0 past business retrains (ERROR); P1 investigates (WARN); P2 is monitoring only.
    investigate = (True, None) if rule["priority"] == "P2" else (False, WARN)
    past_business = {"P0": (False, ERROR), "P1": (False, WARN), "P2": (True, None)}
    assert judged(rule["data_science"]) == (True, None)
    assert judged(rule["data_science"] - worse) == (True, None)
    assert judged(rule["data_science"] + worse) == investigate
    assert judged(rule["business"]) == investigate
    assert judged(rule["business"] - worse) == investigate
    assert judged(rule["business"] + worse) == past_business[rule["priority"]]


def test_roc_auc_degradation_is_an_error_and_training_months_are_not_judged():
    limit = RULES["performance"]["roc_auc"]["max_degradation_from_oot"]
    dropped = performance_table({"roc_auc": 0.90 - limit - STEP, "oot_baseline_roc_auc": 0.90})
    assert outcome(performance_check_results(dropped), "champion_roc_auc") == (False, ERROR)
    in_sample = performance_table({"roc_auc": 0.5}, held_out=False)
    for result in performance_check_results(in_sample):
        assert result.passed and "nothing to judge" in result.description


def test_estimated_roc_auc_check_retrains_below_business_before_labels_arrive():
    business = RULES["performance"]["roc_auc"]["business"]

    def judged(expected_roc_auc):
        row = {
            "application_month": date(2025, 1, 1),
            "label_month": date(2025, 7, 1),
            "model_family": "gradient_boosting",
            "model_version": "gb-1",
            "is_champion": True,
            "n": 526,
            "expected_roc_auc": expected_roc_auc,
        }
        [result] = estimate_check_results(pl.DataFrame([row], schema=ESTIMATE_SCHEMA))
        return result

    assert judged(business).passed is False  # at business: below data-science, a WARN
    assert judged(business).severity == WARN
    alarm = judged(business - STEP)
    assert (alarm.passed, alarm.severity) == (False, ERROR)
    assert (
        "estimated_roc_auc" in alarm.description and "labels not yet arrived" in alarm.description
    )
    [nothing] = estimate_check_results(pl.DataFrame(schema=ESTIMATE_SCHEMA))
    assert nothing.passed
    assert "no held-out champion month without labels" in nothing.description


FAIRNESS_MONTH = date(2024, 12, 1)
CHAMPION = ScoredVersion(
    family="gradient_boosting",
    version_id="gb-1",
    threshold=0.5,
    train_months=(date(2023, 8, 1), date(2024, 7, 1)),
    last_fitted_month=date(2024, 10, 1),
    oot_roc_auc=0.8,
    features=("age",),
)


def fairness_table(bands: dict[int, tuple[int, int]]) -> pl.DataFrame:
    """The application-clock rows of one month built from applications: {age: (n, approved)}."""
    ages, decisions = [], []
    for age, (n, approved) in bands.items():
        ages += [age] * n
        decisions += [0] * approved + [1] * (n - approved)
    rows = pl.DataFrame({"age": ages, "decision": decisions}).with_columns(
        age_band(pl.col("age"), FAIRNESS_RULES.bands),
        application_month=pl.lit(FAIRNESS_MONTH),
        model_family=pl.lit(CHAMPION.family),
        model_version=pl.lit(CHAMPION.version_id),
        is_champion=pl.lit(True),
    )
    months = RULES["rolling_months"]
    args = (FAIRNESS_MONTH, "application", FAIRNESS_MONTH, rows, rows, {"gb-1": CHAMPION})
    return fairness_rows(*args, FAIRNESS_RULES, months)


@pytest.mark.parametrize(
    ("approved", "expected"),
    # 25-34 approves 800 of 1,000; 35-44 approves k of 1,000: a ratio of k / 800.
    [(640, (True, None)), (639, (False, WARN)), (641, (True, None))],  # at 0.8 it holds
)
def test_adverse_impact_check_warns_strictly_below_four_fifths(approved, expected):
    assert FAIRNESS_RULES.min_adverse_impact_ratio == 0.8
    [result] = adverse_impact_check_results(fairness_table({30: (1000, 800), 40: (1000, approved)}))
    assert (result.passed, result.severity if not result.passed else None) == expected
    assert result.metadata["min_adverse_impact_ratio"].value == pytest.approx(approved / 800)
    if not result.passed:
        assert result.description.startswith("adverse_impact_ratio:35-44 0.799 below")


@pytest.mark.parametrize(("n", "judged"), [(100, True), (99, False), (101, True)])
def test_adverse_impact_check_judges_only_bands_with_the_minimum_count(n, judged):
    assert FAIRNESS_RULES.min_band_loans == 100
    # 45+ approves none of its n loans: a ratio of 0, flagged only when the band is judged.
    [result] = adverse_impact_check_results(
        fairness_table({30: (1000, 800), 40: (1000, 700), 50: (n, 0)})
    )
    assert result.passed is not judged
    assert result.metadata["judged_bands"].value == (3 if judged else 2)
    if not judged:
        assert "45+ (n=99 < 100)" in result.description.split("not judged: ")[1]
        assert "14-24 (n=0 < 100)" in result.description  # an empty band is named too


def test_adverse_impact_check_without_two_judged_bands_or_any_approval():
    [alone] = adverse_impact_check_results(fairness_table({30: (1000, 800), 40: (99, 0)}))
    assert alone.passed and alone.description.startswith("nothing to judge: fewer than two")
    [declined] = adverse_impact_check_results(fairness_table({30: (500, 0), 40: (500, 0)}))
    assert (declined.passed, declined.severity) == (False, WARN)
    assert "no judged age band had an approved application" in declined.description

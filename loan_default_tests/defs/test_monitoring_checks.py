"""The monitoring checks' pass, WARN and ERROR at, just below and just above the thresholds."""

from datetime import date

import dagster as dg
import polars as pl
import pytest

from loan_default.defs.monitoring.assets import (
    RULES,
    estimate_check_results,
    performance_check_results,
    stability_check_results,
)
from loan_default.lib.monitoring.monitoring_tables import (
    DRIFT_SCHEMA,
    ESTIMATE_SCHEMA,
    PERFORMANCE_SCHEMA,
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

"""Every threshold of the shipped file at, just below and just above its value, and the
team's governance: only P0 ROC-AUC (realized or estimated) retrains; shifts investigate."""

import json

import pytest

from loan_default.lib.monitoring.alerts import (
    InputShift,
    action_of,
    judge_estimate,
    judge_performance,
    judge_stability,
)
from loan_default.lib.monitoring.monitoring_tables import input_group
from loan_default.lib.thresholds import ThresholdsError, load_thresholds, validate_thresholds

RULES = load_thresholds()["monitoring"]
STEP = 1e-6
PERFORMANCE = [
    (metric, level) for metric in RULES["performance"] for level in ("business", "data_science")
]


def _levels(findings):
    return [(f.signal, f.level, f.action) for f in findings]


@pytest.mark.parametrize(("metric", "level"), PERFORMANCE)
def test_performance_threshold_at_below_and_above(metric, level):
    rule = RULES["performance"][metric]
    threshold = rule[level]
    worse = -STEP if rule["direction"] == "higher" else STEP
    other = "data_science" if level == "business" else None

    def judged(value):
        return _levels(judge_performance({metric: value}, RULES))

    actions = RULES["actions"][rule["priority"]]
    breach = [(metric, level, actions[level])]
    lesser = [(metric, other, actions[other])] if other else []
    assert judged(threshold) == lesser  # at the threshold: holds
    assert judged(threshold - worse) == lesser  # just on the good side
    assert judged(threshold + worse) == breach  # just past it


def test_thresholds_are_ordered_and_actions_escalate():
    for metric, rule in RULES["performance"].items():
        gap = rule["data_science"] - rule["business"]
        assert gap > 0 if rule["direction"] == "higher" else gap < 0, metric
    actions = RULES["actions"]
    assert actions["P0"] == {
        "business": "RETRAIN",
        "data_science": "ACTIVE_MONITORING",
        "degradation": "RETRAIN",
    }
    assert set(actions["P1"].values()) == {"ACTIVE_MONITORING"}
    assert set(actions["P2"].values()) == {"MONITOR"}
    assert RULES["performance"]["roc_auc"]["priority"] == "P0"
    assert RULES["score_shift_retrains"] is False


def test_degradation_from_the_oot_baseline():
    limit = RULES["performance"]["roc_auc"]["max_degradation_from_oot"]
    baseline = 0.85

    def drop(value):
        return [
            f for f in judge_performance({"roc_auc": value}, RULES, baseline) if "drop" in f.signal
        ]

    assert drop(baseline - limit) == []
    assert drop(baseline - limit + STEP) == []
    [finding] = drop(baseline - limit - STEP)
    assert (finding.level, finding.action) == ("degradation", "RETRAIN")
    assert "roc_auc_drop_from_oot" in finding.reason


@pytest.mark.parametrize("kind", ["score_psi", "feature_csi", "missing_share"])
@pytest.mark.parametrize("level", ["watch", "shift"])
def test_stability_threshold_at_below_and_above(kind, level):
    threshold = RULES["stability"][kind][level]

    def judged(value):
        if kind == "score_psi":
            return _levels(judge_stability(value, [], RULES))
        if kind == "feature_csi":
            return _levels(judge_stability(None, [InputShift("age", value, 0.0, 0.0)], RULES))
        return _levels(judge_stability(None, [InputShift("age", 0.0, 0.1, 0.1 + value)], RULES))

    signal = {"score_psi": "score_psi", "feature_csi": "csi:age", "missing_share": "missing:age"}
    lesser = [(signal[kind], "watch", "MONITOR")] if level == "shift" else []
    expected = "ACTIVE_MONITORING" if level == "shift" else "MONITOR"
    assert judged(threshold) == lesser
    assert judged(threshold - STEP) == lesser
    assert judged(threshold + STEP) == [(signal[kind], level, expected)]


def test_a_score_shift_investigates_names_its_inputs_and_retrains_only_when_switched_on():
    inputs = [
        InputShift("fe_1_mean", None, 0.09, 1.0),
        InputShift("fe_2_mean_long", None, 0.09, 1.0),
        InputShift("has_clickstream", 0.0, 0.09, 1.0),
        InputShift("age", 0.01, 0.0, 0.0),
    ]
    findings = judge_stability(2.0, inputs, RULES, input_group)
    assert [(f.signal, f.action) for f in findings] == [
        ("score_psi", "ACTIVE_MONITORING"),
        ("missing:clickstream", "ACTIVE_MONITORING"),
    ]
    score, missing = findings
    assert "shifted inputs: missing:clickstream" in score.reason
    assert "3 input(s): fe_1_mean, fe_2_mean_long, has_clickstream" in missing.reason
    assert "missing 0.09 -> 1.00" in missing.reason
    assert missing.value == pytest.approx(0.91)
    switched = {**RULES, "score_shift_retrains": True}
    assert action_of(judge_stability(2.0, inputs, switched, input_group)) == "RETRAIN"
    assert action_of(judge_stability(0.2, inputs, switched, input_group)) == "ACTIVE_MONITORING"


def test_the_estimate_retrains_below_the_business_roc_auc_only():
    rule = RULES["performance"]["roc_auc"]
    assert judge_estimate(rule["data_science"], RULES) == []
    [watch] = judge_estimate(rule["data_science"] - STEP, RULES)
    assert watch.action == "ACTIVE_MONITORING"
    assert judge_estimate(rule["business"], RULES)[0].action == "ACTIVE_MONITORING"
    [alarm] = judge_estimate(rule["business"] - STEP, RULES)
    assert (alarm.signal, alarm.action) == ("estimated_roc_auc", "RETRAIN")
    assert judge_estimate(None, RULES) == []


def test_action_is_the_strongest_and_monitor_without_findings():
    assert action_of([]) == "MONITOR"
    findings = judge_performance({"roc_auc": 0.70, "brier": 0.30, "f1": 0.1}, RULES)
    assert sorted(f.action for f in findings) == [
        "ACTIVE_MONITORING",
        "ACTIVE_MONITORING",
        "MONITOR",
    ]
    assert action_of(findings) == "ACTIVE_MONITORING"  # P1 Brier past business investigates
    assert action_of(judge_performance({"roc_auc": 0.60}, RULES)) == "RETRAIN"
    assert judge_performance({"roc_auc": None}, RULES) == []


def test_calibration_is_judged_on_its_band_with_the_counts_in_the_reason():
    """A window outside its 95% band (p-value below 0.05) investigates, below 0.01 too (the
    business level, outside the 99% band); the reason names the counts and the band, never a
    fixed gap in points."""
    row = {
        "n": 500,
        "defaults": 119,
        "expected_defaults": 100.0,
        "defaults_band_low": 83,
        "defaults_band_high": 118,
        "default_rate_gap": 0.038,
    }
    rule = RULES["performance"]["calibration_p_value"]
    assert (rule["data_science"], rule["business"]) == (0.05, 0.01)
    assert judge_performance(row | {"calibration_p_value": 0.05}, RULES) == []
    [finding] = judge_performance(row | {"calibration_p_value": 0.0418}, RULES)
    assert (finding.signal, finding.level, finding.action) == (
        "calibration_p_value",
        "data_science",
        "ACTIVE_MONITORING",
    )
    assert finding.reason == (
        "calibration_p_value 0.042 below data-science threshold 0.050 (P1): ACTIVE_MONITORING "
        "[119 defaults observed, 100.0 expected; 95% band [83, 118] of 500 loans]"
    )
    [severe] = judge_performance(row | {"calibration_p_value": 0.004}, RULES)
    assert severe.level == "business"
    # The gap in points is shown, not judged: a 3.8-point gap inside its band is no finding.
    assert "default_rate_gap" not in RULES["performance"]
    assert judge_performance(row | {"calibration_p_value": 0.2}, RULES) == []


def test_the_calibration_rule_is_validated_when_loaded():
    data = load_thresholds()
    broken = json.loads(json.dumps(data))
    broken["monitoring"]["performance"]["calibration_p_value"].update(
        direction="lower", business=0.0, data_science=0.6
    )
    with pytest.raises(ThresholdsError) as error:
        validate_thresholds(broken, "thresholds.json")
    key = "monitoring.performance.calibration_p_value"
    assert f"{key}.direction: must be 'higher': a small p-value is the alarm" in str(error.value)
    assert f"{key}.data_science: must be in (0, 0.5]" in str(error.value)
    assert f"{key}.business: must be above 0" in str(error.value)
    old = json.loads(json.dumps(data))
    performance = old["monitoring"]["performance"]
    performance["default_rate_gap"] = performance.pop("calibration_p_value")
    with pytest.raises(ThresholdsError, match="default_rate_gap: unknown key"):
        validate_thresholds(old)

"""Every threshold of the shipped file at, just below and just above its value."""

import pytest

from loan_default.lib.alerts import action_of, judge_performance, judge_stability
from loan_default.lib.thresholds import load_thresholds

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

    breach = [(metric, level, RULES["actions"][level])]
    lesser = [(metric, other, RULES["actions"][other])] if other else []
    assert judged(threshold) == lesser  # at the threshold: holds
    assert judged(threshold - worse) == lesser  # just on the good side
    assert judged(threshold + worse) == breach  # just past it


def test_thresholds_are_ordered_and_actions_escalate():
    for metric, rule in RULES["performance"].items():
        gap = rule["data_science"] - rule["business"]
        assert gap > 0 if rule["direction"] == "higher" else gap < 0, metric
    assert RULES["actions"]["business"] == "RETRAIN"
    assert RULES["actions"]["data_science"] == "ACTIVE_MONITORING"


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


@pytest.mark.parametrize("kind", ["score_psi", "feature_csi"])
@pytest.mark.parametrize("level", ["watch", "shift"])
def test_stability_threshold_at_below_and_above(kind, level):
    threshold = RULES["stability"][kind][level]

    def judged(value):
        if kind == "score_psi":
            return _levels(judge_stability(value, {}, RULES))
        return _levels(judge_stability(None, {"fe_1_mean": value}, RULES))

    signal = "score_psi" if kind == "score_psi" else "csi:fe_1_mean"
    lesser = [(signal, "watch", RULES["actions"][f"{kind}_watch"])] if level == "shift" else []
    assert judged(threshold) == lesser
    assert judged(threshold - STEP) == lesser
    assert judged(threshold + STEP) == [(signal, level, RULES["actions"][f"{kind}_{level}"])]


def test_action_is_the_strongest_and_monitor_without_findings():
    assert action_of([]) == "MONITOR"
    findings = judge_performance({"roc_auc": 0.70, "brier": 0.30}, RULES)
    assert sorted(f.action for f in findings) == ["ACTIVE_MONITORING", "RETRAIN"]
    assert action_of(findings) == "RETRAIN"
    assert judge_performance({"roc_auc": None}, RULES) == []

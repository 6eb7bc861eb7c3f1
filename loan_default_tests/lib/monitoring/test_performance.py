"""AUC intervals and performance expected from calibrated probabilities."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loan_default.lib.monitoring.performance import (
    auc_interval,
    estimated_performance,
    expected_roc_auc,
    realized_performance,
)


def test_hanley_mcneil_interval_by_hand():
    # AUC 0.8 with 50 defaults and 50 non-defaults: SE = sqrt(4.951 / 2500) = 0.0445.
    low, high = auc_interval(0.8, 50, 50)
    assert (high - low) / 2 == pytest.approx(1.959964 * 0.04450, abs=2e-4)
    # A monthly cohort (145 of 500 default) at AUC 0.77: SE 0.025, as the domain notes say.
    low, high = auc_interval(0.77, 145, 355)
    assert (high - low) / 2 / 1.959964 == pytest.approx(0.0250, abs=5e-4)
    assert auc_interval(None, 10, 10) is None
    assert auc_interval(0.7, 0, 10) is None


def test_expected_auc_matches_the_pairwise_definition_with_ties():
    p = np.array([0.1, 0.1, 0.5, 0.9])
    weights = correct = 0.0
    for i in range(4):
        for j in range(4):
            if i != j:
                w = p[i] * (1 - p[j])
                weights += w
                correct += w * ((p[i] > p[j]) + 0.5 * (p[i] == p[j]))
    assert expected_roc_auc(p) == pytest.approx(correct / weights)
    assert expected_roc_auc(np.array([0.3])) is None


def test_estimates_converge_to_realized_performance_on_calibrated_scores():
    rng = np.random.default_rng(11)
    gaps = {}
    for n in (500, 50_000):
        p = rng.beta(1.2, 3.0, size=n)  # calibrated by construction: label ~ Bernoulli(p)
        label = (rng.random(n) < p).astype(int)
        estimate = estimated_performance(p)
        gaps[n] = (
            abs(estimate["expected_roc_auc"] - roc_auc_score(label, p)),
            abs(estimate["expected_default_rate"] - label.mean()),
        )
    assert gaps[50_000][0] < 0.005 and gaps[50_000][1] < 0.005
    assert gaps[500][0] < 0.06  # one month of 500 loans: within about two standard errors


def test_realized_performance_adds_interval_and_calibration_gap():
    label = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    probability = np.array([0.1, 0.2, 0.3, 0.8, 0.6, 0.4, 0.35, 0.05])
    result = realized_performance(label, probability, threshold=0.5)
    assert result["roc_auc"] == pytest.approx(14 / 15)  # 0.35 (default) < 0.4 (not): 1 of 15
    assert result["roc_auc_low"] <= result["roc_auc"] <= result["roc_auc_high"]
    assert result["default_rate_gap"] == pytest.approx(abs(probability.mean() - 3 / 8))
    assert (result["precision"], result["recall"]) == (1.0, pytest.approx(2 / 3))

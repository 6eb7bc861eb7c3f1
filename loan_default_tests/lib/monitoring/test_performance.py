"""AUC intervals, calibration against its binomial band, and performance expected from
calibrated probabilities."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loan_default.lib.monitoring.performance import (
    auc_interval,
    calibration_across_months,
    calibration_band,
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
    result = realized_performance(label, probability, threshold=0.5, alpha=0.05)
    assert result["roc_auc"] == pytest.approx(14 / 15)  # 0.35 (default) < 0.4 (not): 1 of 15
    assert result["roc_auc_low"] <= result["roc_auc"] <= result["roc_auc_high"]
    assert result["default_rate_gap"] == pytest.approx(abs(probability.mean() - 3 / 8))
    assert (result["precision"], result["recall"]) == (1.0, pytest.approx(2 / 3))
    assert result["expected_defaults"] == pytest.approx(probability.sum())
    assert result["inside_band"] and result["defaults_band_low"] <= 3


def labels(n: int, defaults: int) -> np.ndarray:
    return np.array([1] * defaults + [0] * (n - defaults))


def test_band_of_500_loans_at_0_2_by_hand():
    """Binomial(500, 0.2): expected 100; the tails summed with math.comb give the band
    [83, 118] (P(D <= 82) = 0.0232 < 0.025 <= P(D <= 83) = 0.0304; P(D >= 118) = 0.0269 >=
    0.025 > P(D >= 119) = 0.0209), the normal approximation 100 +/- 1.96 sqrt(80) =
    [82.5, 117.5]."""

    def pmf(k: int) -> float:
        return math.comb(500, k) * 0.2**k * 0.8 ** (500 - k)

    at_most = {k: sum(pmf(j) for j in range(k + 1)) for k in (82, 83)}
    at_least = {k: sum(pmf(j) for j in range(k, 501)) for k in (118, 119)}
    assert at_most[82] == pytest.approx(0.0232, abs=1e-4)
    assert at_most[83] == pytest.approx(0.0304, abs=1e-4)
    assert at_least[118] == pytest.approx(0.0269, abs=1e-4)
    assert at_least[119] == pytest.approx(0.0209, abs=1e-4)
    p = np.full(500, 0.2)
    band = calibration_band(labels(500, 100), p, alpha=0.05)
    assert band["expected_defaults"] == pytest.approx(100.0)
    assert (band["defaults_band_low"], band["defaults_band_high"]) == (83, 118)
    assert band["inside_band"] and band["calibration_p_value"] == 1.0
    # Inside exactly when the p-value is not below alpha: 83 and 118 in, 82 and 119 out.
    for observed, inside, p_value in (
        (82, False, 2 * at_most[82]),
        (83, True, 2 * at_most[83]),
        (118, True, 2 * at_least[118]),
        (119, False, 2 * at_least[119]),
    ):
        band = calibration_band(labels(500, observed), p, alpha=0.05)
        assert band["inside_band"] is inside
        assert band["calibration_p_value"] == pytest.approx(p_value, rel=1e-9)
        assert (band["calibration_p_value"] >= 0.05) is inside


def test_spread_probabilities_give_a_narrower_band_than_the_binomial_at_their_mean():
    """250 loans at 0.05 and 250 at 0.35 (mean 0.2): variance 250 x 0.0475 + 250 x 0.2275 =
    68.75 against 80 for Binomial(500, 0.2), so about 100 +/- 1.96 x 8.29 = [83.7, 116.3]:
    the exact band, the two binomials convolved with math.comb, is [84, 116] against [83, 118]."""

    def binomial(n: int, q: float) -> list[float]:
        return [math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(n + 1)]

    low, high = binomial(250, 0.05), binomial(250, 0.35)
    pmf = [
        sum(low[j] * high[k - j] for j in range(max(0, k - 250), min(k, 250) + 1))
        for k in range(501)
    ]
    assert sum(pmf[:84]) < 0.025 <= sum(pmf[:85])  # P(D <= 83) < 0.025 <= P(D <= 84)
    assert sum(pmf[116:]) >= 0.025 > sum(pmf[117:])  # P(D >= 116) >= 0.025 > P(D >= 117)
    p = np.repeat([0.05, 0.35], 250)
    band = calibration_band(labels(500, 100), p, alpha=0.05)
    assert band["expected_defaults"] == pytest.approx(100.0)
    assert (band["defaults_band_low"], band["defaults_band_high"]) == (84, 116)


def test_band_edge_cases_by_hand():
    # No loan: nothing to judge.
    assert set(calibration_band(np.array([]), np.array([]), 0.05).values()) == {None}
    # All probabilities 0: the band is [0, 0]; no default holds, one default cannot happen.
    zero = np.zeros(4)
    assert calibration_band(labels(4, 0), zero, 0.05) == {
        "expected_defaults": 0.0,
        "defaults_band_low": 0,
        "defaults_band_high": 0,
        "inside_band": True,
        "calibration_p_value": 1.0,
    }
    one = calibration_band(labels(4, 1), zero, 0.05)
    assert (one["inside_band"], one["calibration_p_value"]) == (False, 0.0)
    # One loan at 0.3: P(0) = 0.7, P(1) = 0.3, both outcomes inside; p-values 1 and 0.6.
    single = [calibration_band(labels(1, d), np.array([0.3]), 0.05) for d in (0, 1)]
    assert [(b["defaults_band_low"], b["defaults_band_high"]) for b in single] == [(0, 1)] * 2
    assert [b["calibration_p_value"] for b in single] == [1.0, pytest.approx(0.6)]
    # Three loans at 0.9: P(0) = 0.001, P(1) = 0.027, P(2) = 0.243, P(3) = 0.729, so the band
    # is [1, 3] (P(D <= 0) = 0.001 < 0.025 <= P(D <= 1) = 0.028); no default: p = 0.002.
    tiny = np.full(3, 0.9)
    none = calibration_band(labels(3, 0), tiny, 0.05)
    assert (none["defaults_band_low"], none["defaults_band_high"]) == (1, 3)
    assert not none["inside_band"] and none["calibration_p_value"] == pytest.approx(0.002)
    assert calibration_band(labels(3, 1), tiny, 0.05)["calibration_p_value"] == pytest.approx(0.056)


@pytest.mark.parametrize(
    ("label", "probability", "message"),
    [
        ([0, 1], [0.2, float("nan")], "calibrated_probability: 1 of 2 .* row 1: nan"),
        ([0, 1], [0.2, 1.5], "outside \\[0, 1\\] \\(first at row 1: 1.5\\)"),
        ([0, 2], [0.2, 0.5], "label: 1 values are not 0 or 1 \\(first at row 1\\)"),
        ([0, 1, 0], [0.2, 0.5], "label has 3 values but calibrated_probability 2"),
    ],
)
def test_band_refuses_bad_input(label, probability, message):
    with pytest.raises(ValueError, match=message):
        calibration_band(np.array(label), np.array(probability), 0.05)


def test_a_calibrated_model_stays_inside_about_95_percent_of_months():
    """200 calibrated months of 500 loans: about 5% fall outside the band (the discrete band
    holds at least 95%; 0.97 here), while a fixed 2-point gap flags about a quarter of them."""
    rng = np.random.default_rng(7)
    inside = wide_gap = 0
    for _ in range(200):
        p = rng.beta(1.2, 3.0, size=500)
        label = (rng.random(500) < p).astype(int)
        inside += calibration_band(label, p, 0.05)["inside_band"]
        wide_gap += abs(label.mean() - p.mean()) > 0.02
    assert inside / 200 == 0.97 and wide_gap / 200 == 0.255


def test_months_chi_square_by_hand_sees_months_that_cancel_in_the_total():
    """Two months of 100 loans at 0.2 (expected 20, variance 16) with 28 and 12 defaults:
    (8^2 / 16) x 2 = 8 on 2 degrees of freedom, p = exp(-4) = 0.0183; the pooled total (40
    of 40 expected) is dead centre of its band."""
    label = np.concatenate([labels(100, 28), labels(100, 12)])
    p, month = np.full(200, 0.2), np.repeat(["2025-01", "2025-02"], 100)
    across = calibration_across_months(label, p, month)
    assert across["calibration_chi2"] == pytest.approx(8.0)
    assert across["calibration_chi2_df"] == 2
    assert across["calibration_chi2_p_value"] == pytest.approx(math.exp(-4))
    assert calibration_band(label, p, 0.05)["calibration_p_value"] == 1.0
    # A month without variance adds nothing when it matches and is impossible when not.
    exact = calibration_across_months(labels(3, 1), np.array([1.0, 0.0, 0.0]), np.zeros(3))
    assert (exact["calibration_chi2"], exact["calibration_chi2_p_value"]) == (0.0, 1.0)
    off = calibration_across_months(labels(3, 0), np.array([1.0, 0.0, 0.0]), np.zeros(3))
    assert (off["calibration_chi2"], off["calibration_chi2_p_value"]) == (math.inf, 0.0)
    assert set(calibration_across_months(np.array([]), np.array([]), np.array([])).values()) == {
        None
    }

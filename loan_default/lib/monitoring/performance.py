"""Monitoring statistics of one cohort: realized performance with intervals, calibration
against the band its probabilities imply, and the performance expected from calibrated
probabilities before any label arrives."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import chi2, poisson_binom

from loan_default.lib.models.metrics import classification_metrics

Z_95 = 1.959964


def auc_interval(auc: float | None, positives: int, negatives: int) -> tuple[float, float] | None:
    """95% interval of an ROC-AUC from the Hanley-McNeil (1982) standard error."""
    if auc is None or positives == 0 or negatives == 0:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    half = Z_95 * math.sqrt(max(variance, 0.0))
    return max(auc - half, 0.0), min(auc + half, 1.0)


def expected_roc_auc(probability: np.ndarray) -> float | None:
    """The ROC-AUC to expect if each loan defaults with its calibrated probability.

    Every pair (i, j) counts with weight p_i (1 - p_j): the chance that i defaults and j does
    not. The AUC is the weighted share of such pairs the score orders correctly (ties half).
    """
    p = np.asarray(probability, dtype=float)
    if p.size < 2:
        return None
    # For each i: the (1 - p) mass of loans scored below it, plus half of its ties.
    order = np.argsort(p, kind="stable")
    sorted_p, sorted_q = p[order], 1 - p[order]
    below = np.concatenate([[0.0], np.cumsum(sorted_q)])  # (1-p) mass strictly before k
    first = np.searchsorted(sorted_p, sorted_p, side="left")
    last = np.searchsorted(sorted_p, sorted_p, side="right")
    tied = below[last] - below[first]
    correct = sorted_p * (below[first] + 0.5 * tied) - 0.5 * sorted_p * sorted_q
    total = p.sum() * (1 - p).sum() - np.sum(p * (1 - p))
    return float(correct.sum() / total) if total > 0 else None


def estimated_performance(probability: np.ndarray) -> dict[str, float | int | None]:
    """What a calibrated model expects of its cohort: default rate and ROC-AUC."""
    p = np.asarray(probability, dtype=float)
    return {
        "n": int(p.size),
        "expected_default_rate": float(p.mean()) if p.size else None,
        "expected_defaults": float(p.sum()),
        "expected_roc_auc": expected_roc_auc(p),
    }


def _probabilities(probability: np.ndarray) -> np.ndarray:
    """Calibrated probabilities as floats, refused when one is missing or outside [0, 1]."""
    p = np.asarray(probability, dtype=float)
    bad = np.flatnonzero(~((p >= 0) & (p <= 1)))  # NaN fails both comparisons
    if bad.size:
        raise ValueError(
            f"calibrated_probability: {bad.size} of {p.size} values are missing or outside "
            f"[0, 1] (first at row {bad[0]}: {p[bad[0]]})"
        )
    return p


CALIBRATION_FIELDS = (
    "expected_defaults",
    "defaults_band_low",
    "defaults_band_high",
    "inside_band",
    "calibration_p_value",
)


def calibration_band(
    label: np.ndarray, probability: np.ndarray, alpha: float
) -> dict[str, float | int | bool | None]:
    """The cohort's observed defaults against the band its probabilities imply.

    If the probabilities are calibrated, each loan defaults independently with its own
    probability, so the number of defaults D is Poisson-binomial (mean sum p, variance
    sum p(1 - p)); its exact distribution comes from scipy.stats.poisson_binom, so the rule holds
    for any n, a month of 3 loans as well as 500, without a normal approximation. The binomial at
    the mean rate would be too wide: its variance n p(1 - p) exceeds sum p(1 - p) by n var(p).

    The two-sided p-value of d observed defaults is min(1, 2 min(P(D <= d), P(D >= d))); the
    band [low, high] holds the counts whose p-value is at least `alpha` (low is the first count
    with P(D <= low) >= alpha / 2, high the last with P(D >= high) >= alpha / 2), so a cohort is
    inside its band exactly when its p-value is not below `alpha`. Edge cases: no loan (n = 0)
    has no band and is not judged (None); probabilities all 0 give the band [0, 0], where one
    default is outside (p-value 0).
    """
    p = _probabilities(probability)
    y = np.asarray(label)
    if p.size != y.size:
        raise ValueError(f"label has {y.size} values but calibrated_probability {p.size}")
    bad = np.flatnonzero(~np.isin(y, (0, 1)))
    if bad.size:
        raise ValueError(f"label: {bad.size} values are not 0 or 1 (first at row {bad[0]})")
    if p.size == 0:
        return dict.fromkeys(CALIBRATION_FIELDS)
    observed = int(y.sum())
    pmf = poisson_binom.pmf(np.arange(p.size + 1), p)
    at_most = np.cumsum(pmf)  # P(D <= k)
    at_least = np.cumsum(pmf[::-1])[::-1]  # P(D >= k)
    p_value = min(1.0, 2 * min(at_most[observed], at_least[observed]))
    low = int(np.searchsorted(at_most, alpha / 2))
    high = int(np.count_nonzero(at_least >= alpha / 2)) - 1
    return {
        "expected_defaults": float(p.sum()),
        "defaults_band_low": low,
        "defaults_band_high": high,
        "inside_band": bool(low <= observed <= high),
        "calibration_p_value": float(p_value),
    }


def calibration_across_months(
    label: np.ndarray, probability: np.ndarray, month: np.ndarray
) -> dict[str, float | int | None]:
    """A Hosmer-Lemeshow-style test with the months as groups: each month's observed minus
    expected defaults over its standard deviation, squared and summed, against chi-square with
    one degree of freedom per month: no parameter is fitted on held-out months (on a window the
    probabilities were fitted or calibrated on, the test is optimistic).

    The pooled band (`calibration_band` on all the months' loans) tests the total, where a
    month too high and one too low cancel; this statistic adds them up, so a calibration that
    moves from month to month shows. Each month's term uses the normal approximation
    (variance sum p(1 - p)), fair at about 500 loans and 100 of variance a month. A month
    whose probabilities are all 0 or 1 (variance 0) adds nothing when observed equals expected
    and makes the statistic infinite (p-value 0) when not. No month: None.
    """
    p = _probabilities(probability)
    y = np.asarray(label, dtype=float)
    months, group = np.unique(np.asarray(month), return_inverse=True)
    if months.size == 0:
        return dict.fromkeys(
            ("calibration_chi2", "calibration_chi2_df", "calibration_chi2_p_value")
        )
    observed = np.bincount(group, weights=y, minlength=months.size)
    expected = np.bincount(group, weights=p, minlength=months.size)
    variance = np.bincount(group, weights=p * (1 - p), minlength=months.size)
    gap = observed - expected
    exact = np.isclose(gap, 0.0)
    terms = np.divide(gap**2, variance, out=np.where(exact, 0.0, np.inf), where=variance > 0)
    statistic = float(terms.sum())
    return {
        "calibration_chi2": statistic,
        "calibration_chi2_df": int(months.size),
        "calibration_chi2_p_value": float(chi2.sf(statistic, months.size)),
    }


def realized_performance(
    label: np.ndarray, probability: np.ndarray, threshold: float, alpha: float
) -> dict[str, float | int | bool | None]:
    """Every registry metric of the cohort plus the AUC interval, the gap between predicted and
    observed default rate (shown), and the calibration band at `alpha` (judged)."""
    result = classification_metrics(label, probability, threshold)
    interval = auc_interval(result["roc_auc"], result["defaults"], result["n"] - result["defaults"])
    result["roc_auc_low"], result["roc_auc_high"] = interval or (None, None)
    observed, expected = result["default_rate"], result["predicted_default_rate"]
    result["default_rate_gap"] = (
        abs(expected - observed) if observed is not None and expected is not None else None
    )
    return result | calibration_band(label, probability, alpha)

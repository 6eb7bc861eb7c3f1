"""Monitoring statistics of one cohort: realized performance with intervals, and the
performance expected from calibrated probabilities before any label arrives."""

from __future__ import annotations

import math

import numpy as np

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


def realized_performance(
    label: np.ndarray, probability: np.ndarray, threshold: float
) -> dict[str, float | int | None]:
    """Every registry metric of the cohort plus the AUC interval and the calibration gap."""
    result = classification_metrics(label, probability, threshold)
    interval = auc_interval(result["roc_auc"], result["defaults"], result["n"] - result["defaults"])
    result["roc_auc_low"], result["roc_auc_high"] = interval or (None, None)
    observed, expected = result["default_rate"], result["predicted_default_rate"]
    result["default_rate_gap"] = (
        abs(expected - observed) if observed is not None and expected is not None else None
    )
    return result

"""Credit-model metrics on one window: ranking, calibration and decisions at a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics


def ks_statistic(y_true: np.ndarray, score: np.ndarray) -> float:
    """Largest gap between the score distributions of defaults and non-defaults."""
    fpr, tpr, _ = metrics.roc_curve(y_true, score)
    return float(np.max(tpr - fpr))


def classification_metrics(
    y_true: np.ndarray, probability: np.ndarray, threshold: float
) -> dict[str, float | int]:
    """Every figure the registry keeps for one window; ranking metrics are None on one class."""
    y_true = np.asarray(y_true).astype(int)
    probability = np.clip(np.asarray(probability, dtype=float), 1e-7, 1 - 1e-7)
    decision = (probability >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    # One ROC curve gives both the AUC and KS: sklearn's own scorers would each rebuild it.
    fpr, tpr, _ = metrics.roc_curve(y_true, probability) if both_classes else (None, None, None)
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        y_true, decision, average="binary", zero_division=0
    )
    auc = float(metrics.auc(fpr, tpr)) if both_classes else None
    return {
        "n": int(len(y_true)),
        "defaults": int(y_true.sum()),
        "default_rate": float(y_true.mean()) if len(y_true) else None,
        "predicted_default_rate": float(probability.mean()) if len(y_true) else None,
        "roc_auc": auc,
        "gini": 2 * auc - 1 if auc is not None else None,
        "ks": float(np.max(tpr - fpr)) if both_classes else None,
        "pr_auc": float(metrics.average_precision_score(y_true, probability))
        if both_classes
        else None,
        "brier": float(metrics.brier_score_loss(y_true, probability)),
        "log_loss": float(metrics.log_loss(y_true, probability, labels=[0, 1])),
        "accuracy": float(metrics.accuracy_score(y_true, decision)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "threshold": float(threshold),
    }


@dataclass(frozen=True)
class PairedAuc:
    """Two ROC-AUCs on the same rows and their difference (first - second) with a 95% interval."""

    first: float
    second: float
    difference: float
    standard_error: float
    low: float
    high: float


def _structural_components(positives: np.ndarray, negatives: np.ndarray):
    """DeLong's placement values: per positive, the share of negatives it outranks (ties
    half), and per negative, the share of positives that outrank it."""
    m, n = positives.size, negatives.size
    combined = rankdata(np.concatenate([positives, negatives]))
    v10 = (combined[:m] - rankdata(positives)) / n
    v01 = 1.0 - (combined[m:] - rankdata(negatives)) / m
    return v10, v01


def paired_roc_auc_difference(
    y_true: np.ndarray, first: np.ndarray, second: np.ndarray, z: float = 1.959964
) -> PairedAuc:
    """DeLong et al. (1988) for two correlated ROC-AUCs on the same rows."""
    y_true = np.asarray(y_true).astype(bool)
    components = [
        _structural_components(np.asarray(s, float)[y_true], np.asarray(s, float)[~y_true])
        for s in (first, second)
    ]
    v10 = np.vstack([c[0] for c in components])
    v01 = np.vstack([c[1] for c in components])
    aucs = v10.mean(axis=1)
    covariance = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    se = float(np.sqrt(max(variance, 0.0)))
    difference = float(aucs[0] - aucs[1])
    return PairedAuc(
        float(aucs[0]), float(aucs[1]), difference, se, difference - z * se, difference + z * se
    )

"""Probability calibration fitted on the validation window (Platt scaling on the logit)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve

_EPSILON = 1e-6


def _logit(probability: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=float), _EPSILON, 1 - _EPSILON)
    return np.log(p / (1 - p)).reshape(-1, 1)


class PlattCalibrator:
    """Maps raw scores to calibrated probabilities; two parameters suit ~1,000 validation rows."""

    def __init__(self) -> None:
        self._model = LogisticRegression(C=1e6, max_iter=1000)

    def fit(self, probability: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        self._model.fit(_logit(probability), np.asarray(y).astype(int))
        return self

    def transform(self, probability: np.ndarray) -> np.ndarray:
        # The fitted sigmoid itself: predict_proba's input checks cost more than the arithmetic
        # when the scoring API calibrates one probability.
        slope, intercept = self._model.coef_[0, 0], self._model.intercept_[0]
        return expit(slope * _logit(probability)[:, 0] + intercept)


def best_f1_threshold(y: np.ndarray, probability: np.ndarray) -> float:
    """The probability cut-off with the highest F1 on the given window."""
    precision, recall, thresholds = precision_recall_curve(y, probability)
    f1 = 2 * precision * recall / np.maximum(precision + recall, _EPSILON)
    return float(thresholds[int(np.argmax(f1[:-1]))])

"""The gate's rule by hand: held-out months for both, the paired DeLong interval, the minimum."""

from datetime import date

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loan_default.lib.models.metrics import paired_roc_auc_difference
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.promotion import (
    GateRule,
    comparison_months,
    waiting_reason,
)


def windows(as_of: str) -> dict:
    return Windows.relative(date.fromisoformat(as_of), mob=6).as_dict()


REFERENCE = {
    "train": ["2023-01-01", "2023-12-01"],
    "validation": ["2024-01-01", "2024-02-01"],
    "test": ["2024-03-01", "2024-04-01"],
    "oot": ["2024-05-01", "2024-05-01"],
}
NEWEST = date(2025, 1, 1)  # applications labelled as of label month 2025-07


def test_delong_by_hand():
    y = np.array([1, 1, 0, 0])
    first = np.array([0.9, 0.4, 0.6, 0.1])  # ROC-AUC 0.75
    second = np.array([0.8, 0.7, 0.3, 0.2])  # ROC-AUC 1.0
    paired = paired_roc_auc_difference(y, first, second)
    assert (paired.first, paired.second, paired.difference) == (0.75, 1.0, -0.25)
    # Placements of the first model: positives [1, 0.5], negatives [0.5, 1]; of the second all
    # 1. Variance = var([1, .5]) / 2 + var([.5, 1]) / 2 = 0.125 (sample variances 0.125).
    assert paired.standard_error == pytest.approx(np.sqrt(0.125))
    assert paired.low == pytest.approx(-0.25 - 1.959964 * np.sqrt(0.125))
    assert paired.high == pytest.approx(-0.25 + 1.959964 * np.sqrt(0.125))


def test_delong_matches_sklearn_and_is_zero_for_the_same_scores():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1000)
    a, b = y + rng.normal(0, 1.0, 1000), y + rng.normal(0, 1.5, 1000)
    paired = paired_roc_auc_difference(y, a, b)
    assert paired.first == pytest.approx(roc_auc_score(y, a))
    assert paired.second == pytest.approx(roc_auc_score(y, b))
    assert paired.low < paired.difference < paired.high
    same = paired_roc_auc_difference(y, a, a)
    assert (same.difference, same.standard_error) == (0.0, 0.0)


def test_months_compared_are_held_out_for_both_and_never_the_challengers_oot():
    relative = windows("2025-07-01")  # validation ends 2024-10, test 2024-11..12, OOT 2025-01
    # A challenger trained on the newest windows against a champion on the reference windows.
    months = comparison_months(relative, REFERENCE, NEWEST)
    assert months == [date(2024, 11, 1), date(2024, 12, 1)]
    # A champion trained later than the challenger: only months after the champion's fit.
    months = comparison_months(REFERENCE, relative, NEWEST)
    assert months == [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1)]
    # Both on the reference windows: after 2024-02, without the challenger's OOT (2024-05).
    months = comparison_months(REFERENCE, REFERENCE, NEWEST)
    assert months[:3] == [date(2024, 3, 1), date(2024, 4, 1), date(2024, 6, 1)]
    assert months[-1] == NEWEST and date(2024, 5, 1) not in months
    for challenger, champion in [(relative, REFERENCE), (REFERENCE, relative)]:
        for month in comparison_months(challenger, champion, NEWEST):
            for fitted in (challenger, champion):
                assert month > date.fromisoformat(fitted["validation"][1])


def test_a_challenger_is_judged_again_only_on_new_held_out_months():
    rule = GateRule(margin=0.0, confidence=0.975, lookback_months=6, max_decisions=3)
    nov, dec, jan = date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1)
    assert waiting_reason([nov], [], rule) is None  # never judged
    first = {"n": 500, "window_months": "2024-11-01"}
    assert "waits for the next one" in waiting_reason([nov], [first], rule)
    assert waiting_reason([nov, dec], [first], rule) is None  # December is new evidence
    # Decisions without loans (nothing labelled yet) do not count towards the maximum.
    empty = {"n": 0, "window_months": None}
    assert waiting_reason([nov], [empty], rule) is None
    three = [first, {"n": 1000, "window_months": "2024-11-01,2024-12-01"}, {"n": 1500}]
    assert "no longer a candidate" in waiting_reason([nov, dec, jan], three, rule)

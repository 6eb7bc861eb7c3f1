"""The gate's rule (GateRule, judge): its properties measured by simulation, and by hand."""

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from loan_default.lib.models.gate_simulation import Scenario, paired_delong, simulate
from loan_default.lib.models.metrics import paired_roc_auc_difference
from loan_default.lib.models.promotion import (
    Comparison,
    GateRule,
    comparison_months,
    has_new_evidence,
    judge,
)
from loan_default.lib.thresholds import load_thresholds

RULE = GateRule.of(load_thresholds()["promotion"])  # the rule the gate runs
NOV, DEC, JAN = date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1)

# Simulated at 500 loans a month (base rate 0.29), champion ROC-AUC 0.80, over the range of
# within-class score correlations the README states (0.6 and above; power is lowest at 0.6).
CORRELATIONS, SIMULATIONS = (0.6, 0.75, 0.9), 1000


@pytest.fixture(scope="module")
def rates():
    return {
        correlation: simulate(RULE, Scenario(correlation=correlation), SIMULATIONS, seed=23)
        for correlation in CORRELATIONS
    }


def test_the_vectorised_delong_is_the_librarys():
    rng = np.random.default_rng(5)
    y = rng.random((4, 800)) < 0.29
    first, second = 1.2 * y + rng.normal(size=y.shape), 0.9 * y + rng.normal(size=y.shape)
    difference, se = paired_delong(y, first, second)
    for row in range(4):
        paired = paired_roc_auc_difference(y[row], first[row], second[row])
        assert difference[row] == pytest.approx(paired.difference, abs=1e-12)
        assert se[row] == pytest.approx(paired.standard_error, rel=1e-9)


def test_equal_models_are_promoted_in_at_most_5_percent_of_decisions(rates):
    for correlation, measured in rates.items():
        assert measured.loans == (1000, 1500, 2000)
        # Each decision on its own; the cumulative rate over the three is for information.
        assert measured.worst_false_promotion <= 0.05, (correlation, measured.false_promotion)


def test_a_challenger_better_by_003_is_promoted_within_three_decisions(rates):
    for correlation, measured in rates.items():
        assert measured.power >= 0.8, (correlation, measured.promotion_within)


def test_the_first_model_becomes_champion():
    decision = judge(None, RULE)
    assert decision.promote and "first model becomes champion" in decision.reason


def comparison(difference: float, se: float, months=(NOV, DEC)) -> Comparison:
    return Comparison(
        tuple(months), 1003, 0.80 + difference, 0.80, difference, None, None, standard_error=se
    )


def test_promotes_only_when_the_lower_bound_is_above_the_margin():
    rule = GateRule(margin=0.0, confidence=0.975, lookback_months=6)
    assert rule.z == pytest.approx(1.959964, abs=1e-6)
    # 0.02 - 1.96 x 0.0102 = +0.0000 (just above); x 0.0103 = -0.0002 (just below).
    above, below = judge(comparison(0.02, 0.0102), rule), judge(comparison(0.02, 0.0103), rule)
    assert above.promote and above.lower_bound == pytest.approx(0.02 - 1.959964 * 0.0102, abs=1e-8)
    assert not below.promote and below.lower_bound < 0
    assert above.reason == (
        "challenger ROC-AUC 0.8200 vs champion 0.8000 on the 1,003 loans applied in "
        "2024-11..2024-12 (2 months), held out for both models and labelled: difference +0.0200, "
        "with 97.5% confidence at least +0.0000 (one-sided lower bound: difference - 1.960 x "
        "standard error 0.0102), above the margin +0.0000: the challenger is promoted"
    )
    assert "not above the margin +0.0000: the champion stays" in below.reason
    assert "judged again" in below.reason
    # The same evidence against a margin of 0.001: the bound +0.00001 is not above it.
    assert not judge(comparison(0.02, 0.0102), replace(rule, margin=0.001)).promote
    # Identical scores (no difference, no error) are never promoted: strictly above.
    assert not judge(comparison(0.0, 0.0), rule).promote
    # Higher confidence asks more: z(0.99) = 2.326.
    assert not judge(comparison(0.02, 0.009), replace(rule, confidence=0.99)).promote
    assert judge(comparison(0.02, 0.009), rule).promote


def test_the_look_back_keeps_the_newest_months():
    rule = GateRule(margin=0.0, confidence=0.975, lookback_months=3)
    months = [date(2024, m, 1) for m in (9, 3, 4, 6, 7, 8)]
    assert rule.pooled(months) == [date(2024, 7, 1), date(2024, 8, 1), date(2024, 9, 1)]
    assert rule.pooled(months[:2]) == [date(2024, 3, 1), date(2024, 9, 1)]
    reference = {
        "validation": ["2024-01-01", "2024-02-01"],
        "oot": ["2024-05-01", "2024-05-01"],
    }
    held_out = comparison_months(reference, reference, JAN)  # 2024-03..2025-01 without 05
    assert rule.pooled(held_out) == [NOV, DEC, JAN]
    # A comparison over more months than the look-back is refused, not judged.
    with pytest.raises(ValueError, match="pool the months with GateRule.pooled"):
        judge(comparison(0.05, 0.001, held_out), rule)


def test_one_class_or_no_held_out_months_is_no_promotion():
    y = np.zeros(600)
    one_class = Comparison.of((NOV,), y, np.linspace(0, 1, 600), np.linspace(1, 0, 600))
    decision = judge(one_class, RULE)
    assert not decision.promote and decision.lower_bound is None
    assert "600 loans applied in 2024-11 (1 month)" in decision.reason
    assert "one class only" in decision.reason
    nothing = judge(Comparison((), 0), RULE)
    assert not nothing.promote and "nothing to judge" in nothing.reason


def test_comparison_carries_the_standard_error():
    rng = np.random.default_rng(1)
    y = rng.random(1000) < 0.29
    a, b = y + rng.normal(size=1000), 0.8 * y + rng.normal(size=1000)
    compared = Comparison.of((NOV, DEC), y, a, b)
    assert compared.standard_error == paired_roc_auc_difference(y, a, b).standard_error
    assert judge(compared, RULE).lower_bound == pytest.approx(
        compared.difference - RULE.z * compared.standard_error
    )


def test_new_evidence_is_a_month_not_judged_yet():
    assert has_new_evidence([NOV, DEC], [])
    assert not has_new_evidence([NOV, DEC], [NOV, DEC])
    assert has_new_evidence([NOV, DEC, JAN], [NOV, DEC])
    assert not has_new_evidence([], [NOV])
    # Past the look-back the pool slides: the newest month is new, the oldest drops out.
    rule = GateRule(margin=0.0, confidence=0.975, lookback_months=2)
    assert has_new_evidence(rule.pooled([NOV, DEC, JAN]), rule.pooled([NOV, DEC]))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"margin": -0.01, "confidence": 0.975, "lookback_months": 6, "max_decisions": 3},
            "margin must be >= 0",
        ),
        (
            {"margin": 0.0, "confidence": 0.5, "lookback_months": 6, "max_decisions": 3},
            "between 0.5 and 1",
        ),
        (
            {"margin": 0.0, "confidence": 1.0, "lookback_months": 6, "max_decisions": 3},
            "between 0.5 and 1",
        ),
        (
            {"margin": 0.0, "confidence": 0.975, "lookback_months": 0, "max_decisions": 3},
            "at least 1",
        ),
        (
            {"margin": 0.0, "confidence": 0.975, "lookback_months": 2.5, "max_decisions": 3},
            "an integer",
        ),
        (
            {"margin": 0.0, "confidence": 0.975, "max_decisions": 3},
            "missing \\['lookback_months'\\]",
        ),
        (
            {"margin": 0, "confidence": 0.975, "lookback_months": 6, "max_decisions": 3, "min": 1},
            "unknown \\['min'\\]",
        ),
    ],
)
def test_the_rule_refuses_nonsense(section, message):
    with pytest.raises(ValueError, match=message):
        GateRule.of(section)


def test_the_rule_of_the_thresholds_file():
    section = load_thresholds()["promotion"]
    assert GateRule.of(section) == GateRule(
        section["margin"], section["confidence"], section["lookback_months"]
    )
    assert RULE.margin >= 0 and 0.5 < RULE.confidence < 1

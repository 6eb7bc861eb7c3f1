"""Monitoring tables on hand-made frames: the mob offset join and held-out pooling."""

import itertools
import math
from datetime import date

import polars as pl
import pytest

from loan_default.lib.gold.label_contract import LabelDefinition
from loan_default.lib.monitoring.monitoring_tables import (
    ScoredVersion,
    performance_rows,
    scores_with_labels,
)

JAN, FEB, MAR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
JUL, AUG, SEP = date(2024, 7, 1), date(2024, 8, 1), date(2024, 9, 1)
VERSION = ScoredVersion(
    family="gradient_boosting",
    version_id="gb-1",
    threshold=0.5,
    train_months=(date(2023, 1, 1), date(2023, 10, 1)),
    last_fitted_month=JAN,  # validation ends in January: February on is held out
    oot_roc_auc=0.8,
    features=("age",),
)


def predictions(rows) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["loan_id", "application_month", "calibrated_probability"], orient="row"
    ).with_columns(
        model_family=pl.lit("gradient_boosting"),
        model_version=pl.lit("gb-1"),
        is_champion=pl.lit(True),
    )


def test_label_month_t_uses_the_scores_of_t_minus_six_only():
    scores = predictions([("a", JAN, 0.9), ("b", JAN, 0.1), ("c", FEB, 0.8), ("d", MAR, 0.2)])
    labels = pl.DataFrame(
        {
            "loan_id": ["a", "b", "c", "d", "a"],
            "label_month": [JUL, JUL, AUG, SEP, AUG],  # the last row is not at mob 6: ignored
            "label": [1, 0, 1, 0, 0],
            "label_def": "30dpd_6mob",
        }
    )
    joined = scores_with_labels(scores, labels, LabelDefinition(30, 6))
    assert sorted(joined.select("loan_id", "label_month").rows()) == [
        ("a", JUL),
        ("b", JUL),
        ("c", AUG),
        ("d", SEP),
    ]


def test_month_row_and_rolling_pool_of_held_out_months():
    rows = []
    for month, label_month in ((JAN, JUL), (FEB, AUG), (MAR, SEP)):
        for i, (p, y) in enumerate([(0.9, 1), (0.7, 1), (0.4, 0), (0.2, 0), (0.8, 0)]):
            rows.append((f"{month}-{i}", month, p, y, label_month))
    frame = pl.DataFrame(
        rows,
        schema=["loan_id", "application_month", "calibrated_probability", "label", "label_month"],
        orient="row",
    ).with_columns(
        model_family=pl.lit("gradient_boosting"),
        model_version=pl.lit("gb-1"),
        is_champion=pl.lit(True),
    )
    estimates = pl.DataFrame({"model_version": ["gb-1"], "expected_roc_auc": [0.77]})
    table = performance_rows(SEP, frame, {"gb-1": VERSION}, estimates, mob=6, rolling_months=3)
    month, rolling = table.sort("window").rows(named=True)
    assert (month["window"], month["n"], month["defaults"]) == ("month", 5, 2)
    assert month["held_out"] and month["application_month"] == MAR
    assert month["estimated_roc_auc"] == 0.77
    assert month["roc_auc"] == pytest.approx(5 / 6)  # 0.8 (no default) outranks 0.7
    # January was used for calibration: the pool holds February and March only.
    assert (rolling["window"], rolling["months_pooled"], rolling["n"]) == ("rolling_3m", 2, 10)
    # Calibration against its band, by hand: each month expects 0.9 + 0.7 + 0.4 + 0.2 + 0.8 =
    # 3.0 defaults with variance 0.09 + 0.21 + 0.24 + 0.16 + 0.16 = 0.86 and sees 2. The band
    # from the 32 outcomes enumerated: P(D <= 0) = 0.00288 < 0.025 <= P(D <= 1); P(D = 5) =
    # 0.04032 >= 0.025, so [1, 5]; the p-value of 2 is 2 P(D <= 2).
    p = (0.9, 0.7, 0.4, 0.2, 0.8)
    pmf = [0.0] * 6
    for outcome in itertools.product((0, 1), repeat=5):
        pmf[sum(outcome)] += math.prod(q if d else 1 - q for q, d in zip(p, outcome, strict=True))
    assert pmf[0] == pytest.approx(0.00288) and pmf[5] == pytest.approx(0.04032)
    assert month["expected_defaults"] == pytest.approx(3.0)
    assert (month["defaults_band_low"], month["defaults_band_high"]) == (1, 5)
    assert month["inside_band"] and month["calibration_p_value"] == pytest.approx(2 * sum(pmf[:3]))
    assert month["calibration_chi2"] == pytest.approx(1 / 0.86)
    # The pool (February and March): 4 of 6.0 expected; the months' chi-square adds both
    # months' (1 / 0.86) on 2 degrees of freedom: p = exp(-1 / 0.86).
    assert (rolling["defaults"], rolling["expected_defaults"]) == (4, pytest.approx(6.0))
    assert rolling["calibration_chi2"] == pytest.approx(2 / 0.86)
    assert rolling["calibration_chi2_p_value"] == pytest.approx(math.exp(-1 / 0.86))
    # A looser alpha (0.8: a 20% band, [3, 3]) leaves the month (p-value 0.563) outside.
    loose = performance_rows(SEP, frame, {"gb-1": VERSION}, estimates, 6, 3, alpha=0.8)
    assert loose.filter(pl.col("window") == "month")["inside_band"].to_list() == [False]
    # In-sample months still get a month row, marked as not held out, and no pool.
    in_sample = performance_rows(JUL, frame, {"gb-1": VERSION}, estimates, 6, 3)
    assert in_sample["window"].to_list() == ["month"]
    assert in_sample["held_out"].to_list() == [False]

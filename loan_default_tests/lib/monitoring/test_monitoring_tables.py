"""Monitoring tables on hand-made frames: the mob offset join and held-out pooling."""

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
    # In-sample months still get a month row, marked as not held out, and no pool.
    in_sample = performance_rows(JUL, frame, {"gb-1": VERSION}, estimates, 6, 3)
    assert in_sample["window"].to_list() == ["month"]
    assert in_sample["held_out"].to_list() == [False]

"""The backtest summary by hand: the mean OOT ROC-AUC per family with a 95% t interval."""

from datetime import date

import polars as pl
import pytest

from loan_default.lib.models.backtest import BACKTEST_SCHEMA, months_markdown, summarize


def rows(values: dict[str, list[float]]) -> pl.DataFrame:
    records = []
    for family, aucs in values.items():
        for i, auc in enumerate(aucs):
            records.append(
                {
                    "as_of_month": date(2024, 7 + i, 1),
                    "model_family": family,
                    "oot_month": date(2024, 1 + i, 1),
                    "roc_auc": auc,
                }
            )
    return pl.DataFrame(records, schema=BACKTEST_SCHEMA)


def test_mean_and_t_interval_by_hand():
    summary = summarize(rows({"lr": [0.80, 0.84, 0.82], "gb": [0.90, 0.86, 0.88]}))
    assert summary["model_family"].to_list() == ["gb", "lr"]  # best mean first
    gb = summary.row(0, named=True)
    # mean 0.88, sample sd 0.02, t(0.975, 2) = 4.302653: half-width 4.302653 * 0.02 / sqrt(3).
    half = 4.302653 * 0.02 / 3**0.5
    assert gb["months"] == 3
    assert gb["mean_roc_auc"] == pytest.approx(0.88)
    assert gb["sd_roc_auc"] == pytest.approx(0.02)
    assert (gb["mean_low"], gb["mean_high"]) == pytest.approx((0.88 - half, 0.88 + half))
    assert (gb["min_roc_auc"], gb["max_roc_auc"]) == (0.86, 0.90)


def test_one_month_has_no_interval_and_the_table_reads_by_oot_month():
    summary = summarize(rows({"gb": [0.9]}))
    assert summary.row(0, named=True)["mean_low"] is None
    table = months_markdown(rows({"lr": [0.8, 0.81], "gb": [0.9, 0.91]}))
    assert "| 2024-01 | 0.800 | 0.900 |" in table or "| 2024-01 | 0.900 | 0.800 |" in table

"""Changing any source row dated after month T leaves the month-T feature rows unchanged."""

from datetime import date

import dagster as dg
import polars as pl

from loan_default.lib.sources import SOURCES
from loan_default.lib.warehouse_tables import fingerprint, read_table
from loan_default_tests.conftest import materialize_months

CUTOFF = date(2024, 3, 1)
# What each source's later rows become: every value a model could pick up, changed.
PERTURBATIONS = {
    "lms_loan_daily": {"overdue_amt": "5000.0", "paid_amt": "0.0"},
    "features_attributes": {"Age": "77", "Occupation": "Astronaut"},
    "features_financials": {"Annual_Income": "1.0", "Credit_Mix": "Bad", "Interest_Rate": "49"},
    "feature_clickstream": {f"fe_{i}": "999" for i in range(1, 21)},
}


def perturb_after(raw_dir, cutoff: date) -> None:
    for name, changes in PERTURBATIONS.items():
        path = raw_dir / SOURCES[name].file_name
        frame = pl.read_csv(path, infer_schema=False)
        later = pl.col("snapshot_date").str.to_date() > cutoff
        frame.with_columns(
            pl.when(later).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
            for column, value in changes.items()
        ).write_csv(path)


def month_rows(database, month: date) -> pl.DataFrame:
    features = read_table(database, "gold.feature_store")
    return features.filter(pl.col("application_month") == month)


def test_later_source_rows_do_not_reach_earlier_features(real_warehouse, raw_copy, tmp_path):
    original_db, _ = real_warehouse
    perturb_after(raw_copy, CUTOFF)
    perturbed_db = tmp_path / "perturbed.duckdb"
    with dg.instance_for_test() as instance:
        assert materialize_months(raw_copy, perturbed_db, instance).success

    before, after = month_rows(original_db, CUTOFF), month_rows(perturbed_db, CUTOFF)
    assert before.height > 400
    assert fingerprint(before) == fingerprint(after)
    # The perturbation is real: the next month's features do change.
    next_month = date(2024, 4, 1)
    assert fingerprint(month_rows(original_db, next_month)) != fingerprint(
        month_rows(perturbed_db, next_month)
    )

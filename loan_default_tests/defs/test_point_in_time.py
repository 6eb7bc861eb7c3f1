"""Changing any source row dated after month T leaves the month-T feature rows unchanged;
rows dated in an earlier month or mid-month are used, in the pipeline as in the API."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from loan_default.lib.ingest.sources import (
    FEATURES_ATTRIBUTES,
    FEATURES_FINANCIALS,
    LMS_LOAN_DAILY,
    SOURCES,
)
from loan_default.lib.storage.warehouse_tables import fingerprint, read_table
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


# Loans applied in REDATED_MONTH get their attributes and financials rows dated differently.
REDATED_MONTH = date(2024, 5, 1)
EARLIER, MID_MONTH, LATER = "2024-04-01", "2024-05-17", "2024-06-01"
# Months the redated warehouse covers: up to the month after, so the later rows are in silver.
REDATED_RUN = ("2023-01-01", "2024-06-01")


def redate_customers(raw_dir: Path) -> dict[str, list[str]]:
    """Customers of REDATED_MONTH's loans, a quarter per group, with their attributes and
    financials rows dated a month before the loan (`earlier`), mid-month (`mid_month`), as
    they were (`unchanged`), or as they were plus a changed row of the next month
    (`with_later_row`)."""
    book = pl.read_csv(raw_dir / LMS_LOAN_DAILY.file_name, infer_schema=False)
    customers = (
        book.filter(
            (pl.col("installment_num") == "0")
            & (pl.col("snapshot_date") == REDATED_MONTH.isoformat())
        )
        .sort("loan_id")["Customer_ID"]
        .to_list()
    )
    groups = {
        name: customers[start::4]
        for start, name in enumerate(("earlier", "mid_month", "unchanged", "with_later_row"))
    }
    for source in (FEATURES_ATTRIBUTES, FEATURES_FINANCIALS):
        path = raw_dir / source.file_name
        frame = pl.read_csv(path, infer_schema=False)
        customer = pl.col("Customer_ID")
        redated = frame.with_columns(
            snapshot_date=pl.when(customer.is_in(groups["earlier"]))
            .then(pl.lit(EARLIER))
            .when(customer.is_in(groups["mid_month"]))
            .then(pl.lit(MID_MONTH))
            .otherwise(pl.col("snapshot_date"))
        )
        later = frame.filter(customer.is_in(groups["with_later_row"])).with_columns(
            pl.lit(LATER).alias("snapshot_date"),
            *(pl.lit(v).alias(c) for c, v in PERTURBATIONS[source.name].items()),
        )
        pl.concat([redated, later]).write_csv(path)
    return groups


def build_redated(raw_dir: Path, database: Path) -> tuple[dict[str, list[str]], list]:
    """The redated raw folder built into `database`; its groups and check evaluations."""
    groups = redate_customers(raw_dir)
    with dg.instance_for_test() as instance:
        result = materialize_months(raw_dir, database, instance, months=REDATED_RUN)
    assert result.success
    return groups, result.get_asset_check_evaluations()


def test_earlier_and_mid_month_rows_give_features(real_warehouse, raw_copy, tmp_path):
    """Rows dated a month before the loan or mid-month give the features their values give
    when dated on the 1st of the loan's month; a changed row of the next month changes none."""
    original_db, _ = real_warehouse
    redated_db = tmp_path / "redated.duckdb"
    groups, evaluations = build_redated(raw_copy, redated_db)

    before = month_rows(original_db, REDATED_MONTH).sort("loan_id")
    after = month_rows(redated_db, REDATED_MONTH).sort("loan_id")
    assert after.height == before.height > 400
    assert after["loan_id"].equals(before["loan_id"])
    assert after.drop("max_source_date").equals(before.drop("max_source_date"), null_equal=True)
    for name, customers in groups.items():
        rows = after.filter(pl.col("customer_id").is_in(customers))
        assert rows.height > 100
        # Features are there, not null: most of the real rows carry an income and an age.
        assert rows["annual_income"].is_not_null().mean() > 0.9, name
        assert rows["age"].is_not_null().mean() > 0.9, name
        # max_source_date is the newest date used: the mid-month row's own date.
        expected = date(2024, 5, 17) if name == "mid_month" else REDATED_MONTH
        assert (rows["max_source_date"] == expected).all(), name
    (point_in_time,) = (e for e in evaluations if e.check_name == "point_in_time")
    assert point_in_time.passed

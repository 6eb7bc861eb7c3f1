"""A loan's start date and tenure across silver runs: a later month is judged against the
values earlier months left in silver (the real assets, a throwaway instance and warehouse)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from loan_default.lib.synthetic import generate
from loan_default_tests.conftest import materialize_months, project_resources

LMS_FILE = "lms_loan_daily.csv"
LMS_ASSETS = dg.AssetSelection.assets(
    dg.AssetKey(["bronze", "lms_loan_daily"]), dg.AssetKey(["silver", "lms_loan_daily"])
).required_multi_asset_neighbors()


def test_a_month_run_alone_quarantines_a_tenure_its_loan_contradicts(tmp_path: Path):
    raw = tmp_path / "raw"
    generate(raw, loans=300, seed=5)
    loans = pl.read_csv(raw / LMS_FILE, infer_schema=False)
    first = loans.row(0, named=True)
    later = pl.col("loan_id") == first["loan_id"]
    changed = later & (pl.col("installment_num") == "3")
    (month,) = loans.filter(changed)["snapshot_date"]
    loans.with_columns(tenure=pl.when(changed).then(pl.lit("12")).otherwise("tenure")).write_csv(
        raw / LMS_FILE
    )
    database = tmp_path / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        start = first["snapshot_date"]
        assert materialize_months(raw, database, instance, (start, start), LMS_ASSETS).success
        # The loan's own month 3, alone: its first snapshot is in silver only.
        assert materialize_months(raw, database, instance, (month, month), LMS_ASSETS).success
    store = project_resources(raw, database)["warehouse"]
    quarantine = store.read("silver.quarantine_lms_loan_daily")
    assert quarantine.select("loan_id", "installment_num", "reason").rows() == [
        (
            first["loan_id"],
            "3",
            f"contradicts_loan:tenure (loan_id {first['loan_id']}: 10 in its first snapshot, "
            "12 here)",
        )
    ]

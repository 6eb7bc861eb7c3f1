"""Month partitions are replaced, never appended, and an empty month still writes a table."""

import dagster as dg
import polars as pl

from loan_default.lib.storage.warehouse_tables import fingerprints, read_table
from loan_default_tests.conftest import DATA_SELECTION, materialize_months, require_real_data

MONTH = ("2023-06-01", "2023-06-01")
LABELS = dg.AssetSelection.groups("bronze", "silver") | dg.AssetSelection.assets(
    dg.AssetKey(["gold", "label_store"])
)


def test_rematerializing_a_month_replaces_it(tmp_path):
    raw_dir, database = require_real_data(), tmp_path / "w.duckdb"
    with dg.instance_for_test() as instance:
        assert materialize_months(raw_dir, database, instance, MONTH, DATA_SELECTION).success
        first = fingerprints(database)
        assert materialize_months(raw_dir, database, instance, MONTH, DATA_SELECTION).success
    assert fingerprints(database) == first
    loans = read_table(database, "silver.lms_loan_daily")
    assert loans.height == loans.filter(pl.col("partition_month").dt.month() == 6).height > 0


def test_month_without_rows_creates_an_empty_typed_table(tmp_path):
    raw_dir, database = require_real_data(), tmp_path / "w.duckdb"
    # 2023-01 has no loan at month on book 6 yet: the label store month is empty.
    with dg.instance_for_test() as instance:
        result = materialize_months(
            raw_dir, database, instance, ("2023-01-01", "2023-01-01"), LABELS
        )
    assert result.success
    labels = read_table(database, "gold.label_store")
    assert labels.height == 0
    assert labels.schema["label_month"] == pl.Date
    assert labels.schema["label"] == pl.Int8

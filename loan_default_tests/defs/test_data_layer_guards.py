"""Issue 14: nothing green on empty or gutted data, nothing vanishes, loan-book integrity.

Each test runs the real assets on a small synthetic raw folder (or a perturbed copy of it)
in a throwaway Dagster instance and warehouse.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from loan_default.defs.monitoring.automation import new_raw_month
from loan_default.defs.resources import RawDataResource
from loan_default.lib.synthetic import generate
from loan_default_tests.conftest import materialize_months

LMS_FILE = "lms_loan_daily.csv"
BRONZE_LMS = dg.AssetKey(["bronze", "lms_loan_daily"])
SILVER_LMS = dg.AssetKey(["silver", "lms_loan_daily"])


@pytest.fixture(scope="module")
def synthetic_raw(tmp_path_factory) -> Path:
    raw_dir = tmp_path_factory.mktemp("raw_guards")
    generate(raw_dir, loans=300, seed=1)
    return raw_dir


@pytest.fixture
def raw_dir(synthetic_raw, tmp_path) -> Path:
    """A writable copy of the synthetic raw folder."""
    target = tmp_path / "raw"
    shutil.copytree(synthetic_raw, target)
    return target


def read_csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    frame.write_csv(path)


def evaluations(result: dg.ExecuteInProcessResult, asset: dg.AssetKey) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == asset}


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: dg.AssetKey) -> dict:
    """The metadata of the asset's last materialization (one per month of a range)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == asset]
    return events[-1].event_specific_data.materialization.metadata


def add_loan_book_rows_outside(raw_dir: Path) -> None:
    """One row dated 2026-05-01 (past the partitions) and two dated 2022-12-01 (before)."""
    loans = read_csv(raw_dir / LMS_FILE)
    late = loans.head(1).with_columns(snapshot_date=pl.lit("2026-05-01"))
    early = loans.head(2).with_columns(snapshot_date=pl.lit("2022-12-01"))
    write_csv(pl.concat([loans, late, early]), raw_dir / LMS_FILE)


# --- nothing vanishes ------------------------------------------------------------------------


def test_rows_outside_the_configured_months_are_counted_and_warned(raw_dir, tmp_path):
    add_loan_book_rows_outside(raw_dir)
    with dg.instance_for_test() as instance:
        result = materialize_months(
            raw_dir,
            tmp_path / "warehouse.duckdb",
            instance,
            ("2025-10-01", "2025-11-01"),
            dg.AssetSelection.assets(BRONZE_LMS),
        )
    assert result.success  # a WARN check: the run goes on
    check = evaluations(result, BRONZE_LMS)["rows_outside_months"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert "3 row(s) dated outside the configured months" in check.description
    assert check.metadata["rows_by_month"].value == {"2022-12-01": 2, "2026-05-01": 1}
    metadata = materialization_metadata(result, BRONZE_LMS)
    assert metadata["rows_outside_months"].value == {"2022-12-01": 2, "2026-05-01": 1}


def test_rows_inside_the_configured_months_pass_the_check(raw_dir, tmp_path):
    with dg.instance_for_test() as instance:
        result = materialize_months(
            raw_dir,
            tmp_path / "warehouse.duckdb",
            instance,
            ("2025-11-01", "2025-11-01"),
            dg.AssetSelection.assets(BRONZE_LMS),
        )
    assert evaluations(result, BRONZE_LMS)["rows_outside_months"].passed


def test_new_raw_month_sensor_logs_rows_outside_the_configured_months(raw_dir, capfd):
    add_loan_book_rows_outside(raw_dir)
    resources = {"raw_data": RawDataResource(raw_dir=str(raw_dir))}
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        tick = new_raw_month.evaluate_tick(context)
    [request] = tick.run_requests
    assert request.tags["dagster/asset_partition_range_end"] == "2025-11-01"
    # The sensor's log goes to the console (and, under the daemon, to the tick's captured log).
    output = capfd.readouterr()
    logged = [
        line for line in (output.out + output.err).splitlines() if "outside the configured" in line
    ]
    assert len(logged) == 1
    assert "lms_loan_daily: 3 row(s) dated outside the configured months" in logged[0]
    assert "'2022-12-01': 2, '2026-05-01': 1" in logged[0]

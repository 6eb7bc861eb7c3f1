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
from loan_default_tests.conftest import (
    DATA_SELECTION,
    materialize_months,
    project_assets,
    project_resources,
    range_tags,
)

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


# --- no green run on empty or gutted data ----------------------------------------------------

MONTHS = ("2023-01-01", "2023-07-01")
GOLD = [dg.AssetKey(["gold", "label_store"]), dg.AssetKey(["gold", "feature_store"])]


def run_data_layers(raw_dir: Path, tmp_path: Path) -> dg.ExecuteInProcessResult:
    """Every data asset over MONTHS in one run, as the CLI does it; a failure does not raise."""
    with dg.instance_for_test() as instance:
        return dg.materialize(
            project_assets(),
            selection=DATA_SELECTION,
            instance=instance,
            resources=project_resources(raw_dir, tmp_path / "warehouse.duckdb"),
            tags=range_tags(MONTHS),
            raise_on_error=False,
        )


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def test_iso_timestamps_in_loan_start_date_fail_the_run_before_gold(raw_dir, tmp_path):
    loans = read_csv(raw_dir / LMS_FILE)
    write_csv(
        loans.with_columns(loan_start_date=pl.col("loan_start_date") + "T00:00:00"),
        raw_dir / LMS_FILE,
    )
    result = run_data_layers(raw_dir, tmp_path)
    assert not result.success
    assert materialized(result).isdisjoint(GOLD)
    check = evaluations(result, SILVER_LMS)["quarantine_share"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "(100.0%), above 5%" in check.description
    assert "top reasons: unreadable_date:loan_start_date (" in check.description
    assert check.metadata["top_reasons"].value == {
        "unreadable_date:loan_start_date": check.metadata["bronze_rows"].value
    }
    present = evaluations(result, SILVER_LMS)["months_present"]
    assert not present.passed
    assert "no silver rows in a month the loan book holds snapshots in" in present.description


def test_a_gutted_attributes_month_fails_before_gold(raw_dir, tmp_path):
    attributes = read_csv(raw_dir / "features_attributes.csv")
    write_csv(
        attributes.filter(pl.col("snapshot_date") != "2023-03-01"),
        raw_dir / "features_attributes.csv",
    )
    result = run_data_layers(raw_dir, tmp_path)
    assert not result.success
    assert dg.AssetKey(["gold", "feature_store"]) not in materialized(result)
    check = evaluations(result, dg.AssetKey(["silver", "features_attributes"]))["months_present"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "2023-03-01: no silver rows in a month the loan book holds loans starting in" in (
        check.description
    )


def test_clean_synthetic_data_passes_every_silver_check(raw_dir, tmp_path):
    result = run_data_layers(raw_dir, tmp_path)
    assert result.success
    assert set(GOLD) <= materialized(result)
    failed = [
        (e.asset_key, e.check_name) for e in result.get_asset_check_evaluations() if not e.passed
    ]
    assert failed == []


# --- loan-book integrity ---------------------------------------------------------------------


def test_gaps_and_repeats_in_months_on_book_are_flagged(raw_dir, tmp_path):
    loans = read_csv(raw_dir / LMS_FILE)
    first, second = loans["loan_id"].unique(maintain_order=True).head(2)
    mob = pl.col("installment_num")
    loans = loans.filter(~((pl.col("loan_id") == first) & (mob == "2"))).with_columns(
        installment_num=pl.when((pl.col("loan_id") == second) & (mob == "4"))
        .then(pl.lit("3"))
        .otherwise(mob)
    )
    write_csv(loans, raw_dir / LMS_FILE)
    with dg.instance_for_test() as instance:
        result = materialize_months(
            raw_dir,
            tmp_path / "warehouse.duckdb",
            instance,
            ("2023-01-01", "2025-11-01"),
            dg.AssetSelection.assets(BRONZE_LMS, SILVER_LMS).required_multi_asset_neighbors(),
        )
    assert result.success  # a WARN: the other loans go on
    check = evaluations(result, SILVER_LMS)["installment_sequence"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["flagged"].value == {
        first: "installment_gap:2",
        second: "installment_gap:4; installment_repeat:3",
    }
    assert check.metadata["loans_flagged"].value == 2
    assert "2 of 300 loans have a gap or repeat" in check.description


def test_real_loan_book_with_iso_timestamps_fails_before_gold(raw_copy, tmp_path):
    """Finding 3 on the real data: every loan-book row quarantined must not give a green run."""
    loans = read_csv(raw_copy / LMS_FILE)
    write_csv(
        loans.with_columns(loan_start_date=pl.col("loan_start_date") + "T00:00:00"),
        raw_copy / LMS_FILE,
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            project_assets(),
            selection=DATA_SELECTION,
            instance=instance,
            resources=project_resources(raw_copy, tmp_path / "warehouse.duckdb"),
            tags=range_tags(("2023-06-01", "2023-07-01")),
            raise_on_error=False,
        )
    assert not result.success
    assert materialized(result).isdisjoint(GOLD)
    check = evaluations(result, SILVER_LMS)["quarantine_share"]
    assert not check.passed
    assert "2 month(s) fail; 2023-06-01:" in check.description
    assert "top reasons: unreadable_date:loan_start_date (" in check.description

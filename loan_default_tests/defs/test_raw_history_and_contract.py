"""Issue 25: raw history is append-only unless restated, and each source keeps its contract.

Real bronze assets on a copy of the real raw folder, in a throwaway instance and warehouse;
only bronze is materialized (the guards act before bronze writes).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from loan_default.defs.raw.assets import raw_files
from loan_default.lib.ingest import raw_history
from loan_default.lib.storage.warehouse_tables import fingerprints
from loan_default_tests.conftest import (
    materialize_months,
    project_resources,
    require_real_data,
)

LMS, CLICKSTREAM, ATTRIBUTES = "lms_loan_daily", "feature_clickstream", "features_attributes"
WINDOW = ("2024-01-01", "2024-06-01")
# The real loan book's rows in 2024-01..06, and the months of each real file.
REAL_LMS_ROWS = [5412, 5424, 5425, 5417, 5391, 5418]
REAL_MONTHS = {LMS: 35, ATTRIBUTES: 25, "features_financials": 25, CLICKSTREAM: 24}


def bronze(*names: str) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*(dg.AssetKey(["bronze", n]) for n in names))


def run_bronze(
    raw_dir: Path,
    database: Path,
    instance: dg.DagsterInstance,
    selection: dg.AssetSelection,
    months: tuple[str, str] = WINDOW,
    config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    return materialize_months(
        raw_dir,
        database,
        instance,
        months,
        selection,
        run_config={"ops": {f"bronze__{n}": {"config": c} for n, c in (config or {}).items()}},
        raise_on_error=False,
    )


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The error each failed step raised, without Dagster's wrapping."""
    messages = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error.cause is not None:
            error = error.cause
        messages.append(error.message.split(": ", 1)[1].strip())
    return messages


def observe_raw(raw_dir: Path, database: Path, instance: dg.DagsterInstance):
    """One observation of every raw file, as the UI's "Observe sources" runs it."""
    job = dg.define_asset_job("observe_raw", selection=[f.key for f in raw_files])
    definitions = dg.Definitions(
        assets=raw_files, jobs=[job], resources=project_resources(raw_dir, database)
    )
    return definitions.resolve_job_def("observe_raw").execute_in_process(instance=instance)


def evaluations(
    result: dg.ExecuteInProcessResult,
) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def metadata(result: dg.ExecuteInProcessResult, name: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == name]
    return events[-1].event_specific_data.materialization.metadata


def history(database: Path) -> pl.DataFrame:
    with duckdb.connect(str(database)) as connection:
        return raw_history.history(connection)


def month_counts(path: Path) -> dict[str, int]:
    counts = pl.read_csv(path, infer_schema=False).group_by("snapshot_date").len()
    return dict(counts.iter_rows())


def test_truncated_loan_book_stops_the_run_until_restated(raw_copy, tmp_path):
    database, loan_book = tmp_path / "warehouse.duckdb", raw_copy / f"{LMS}.csv"
    with dg.instance_for_test() as instance:
        assert run_bronze(raw_copy, database, instance, bronze(LMS)).success
        before = fingerprints(database)
        assert run_bronze(raw_copy, database, instance, bronze(LMS)).success
        assert fingerprints(database) == before  # an unchanged month adds no history
        lines = loan_book.read_text().splitlines(keepends=True)
        loan_book.write_text("".join(lines[: int(len(lines) * 0.7)]))
        after = month_counts(loan_book)

        refused = run_bronze(raw_copy, database, instance, bronze(LMS))
        assert not refused.success
        [message] = failure_messages(refused)
        assert message.startswith(f"{loan_book}: 6 month(s) of lms_loan_daily already ingested")
        for month, rows in zip(
            ["2024-01-01", "2024-02-01", "2024-06-01"], [5412, 5424, 5418], strict=True
        ):
            assert f"{month}: {rows:,} -> {after[month]:,} rows (shrank)" in message
        assert "restate_months: [2024-01-01, 2024-02-01, 2024-03-01" in message
        assert fingerprints(database) == before  # bronze and the history as they were

        months = [f"2024-0{m}-01" for m in range(1, 7)]
        config = {LMS: {"restate_months": months, "restate_reason": "vendor re-cut"}}
        restated = run_bronze(raw_copy, database, instance, bronze(LMS), config=config)
    assert restated.success
    recorded = history(database).filter(restated=True)
    assert recorded["replaced_rows"].to_list() == REAL_LMS_ROWS
    assert recorded["rows"].to_list() == [after[m] for m in months]
    assert set(recorded["reason"]) == {"vendor re-cut"}
    assert metadata(restated, LMS)["restated_months"].value["2024-01-01"] == {
        "before": 5412,
        "after": after["2024-01-01"],
    }
    assert metadata(restated, LMS)["dagster/row_count"].value == sum(after[m] for m in months)


def test_header_only_loan_book_and_clickstream_are_refused_by_source(raw_copy, tmp_path):
    for name in (LMS, CLICKSTREAM):
        path = raw_copy / f"{name}.csv"
        path.write_text(path.open().readline())
    with dg.instance_for_test() as instance:
        result = run_bronze(raw_copy, tmp_path / "w.duckdb", instance, bronze(LMS, CLICKSTREAM))
    assert not result.success
    messages = sorted(failure_messages(result))
    assert len(messages) == 2
    assert messages[0].startswith(f"{raw_copy / CLICKSTREAM}.csv: source feature_clickstream")
    assert messages[1].startswith(f"{raw_copy / LMS}.csv: source lms_loan_daily holds no data")
    assert "an empty or header-only file" in messages[0]
    assert not result.get_asset_materialization_events()


def test_a_month_missing_from_the_clickstream_is_refused(raw_copy, tmp_path):
    path = raw_copy / f"{CLICKSTREAM}.csv"
    clicks = pl.read_csv(path, infer_schema=False)
    clicks.filter(pl.col("snapshot_date") != "2024-03-01").write_csv(path)
    with dg.instance_for_test() as instance:
        result = run_bronze(raw_copy, tmp_path / "w.duckdb", instance, bronze(CLICKSTREAM))
    [message] = failure_messages(result)
    assert "feature_clickstream has no rows in 1 month(s)" in message
    assert "declared gap from 2025-01-01): 2024-03-01." in message


def test_a_tenfold_month_is_a_warning(raw_copy, tmp_path):
    path = raw_copy / f"{ATTRIBUTES}.csv"
    rows = pl.read_csv(path, infer_schema=False)
    may = rows.filter(pl.col("snapshot_date") == "2024-05-01")
    copies = [may.with_columns(pl.col("Customer_ID") + f"_{i}") for i in range(1, 10)]
    pl.concat([rows, *copies]).write_csv(path)
    with dg.instance_for_test() as instance:
        result = run_bronze(
            raw_copy, tmp_path / "w.duckdb", instance, bronze(ATTRIBUTES), ("2024-05-01",) * 2
        )
    assert result.success  # a WARN: the run goes on
    check = evaluations(result)[(ATTRIBUTES, "month_volume")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    # 491 rows ten times, against the median of 2024-02..04 (518, 511, 513).
    assert check.metadata["flagged"].value == {
        "2024-05-01": {"rows": 4910, "recent_median": 513, "ratio": 9.571}
    }


def test_real_data_passes_with_its_clickstream_gap_and_records_every_month(
    real_warehouse, tmp_path
):
    """On the session's real warehouse (every data layer, every month): no raw alarm."""
    database, built = real_warehouse
    raw_checks = [e for e in built.get_asset_check_evaluations() if e.asset_key.path[0] == "bronze"]
    assert len(raw_checks) == 8  # rows_outside_months and month_volume of each source
    assert [(e.asset_key.path[-1], e.check_name) for e in raw_checks if not e.passed] == []
    [clicks] = [
        e
        for e in raw_checks
        if e.asset_key.path[-1] == CLICKSTREAM and e.check_name == "month_volume"
    ]
    assert clicks.metadata["months_judged"].value == 23  # 2025-01..11: the declared gap
    recorded = history(database)
    assert dict(recorded.group_by("source").len().iter_rows()) == REAL_MONTHS
    assert recorded["rows"].sum() == 137_500 + 12_500 + 12_500 + 215_376
    assert not recorded["restated"].any()
    assert recorded.filter(source=LMS, month=date(2024, 1, 1))["rows"].item() == 5412
    with dg.instance_for_test() as instance:
        observed = observe_raw(require_real_data(), tmp_path / "w.duckdb", instance)
    [lms] = [
        e.event_specific_data.asset_observation.metadata
        for e in observed.get_asset_observation_events()
        if e.asset_key.path[-1] == LMS
    ]
    assert lms["dagster/row_count"].value == 137_500
    assert lms["months"].value.records[12].data["rows"] == 5412  # 2024-01

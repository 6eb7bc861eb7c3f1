"""The warehouse backends: month replacement all or nothing, by hand on both (a local DuckLake
and the embedded file), and on the production profile's real services (PostgreSQL catalog, S3
files): concurrent writers of different months, a concurrent re-run, and a writer killed with
SIGKILL mid-write."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from loan_default.lib.storage.embedded_tables import EmbeddedTables
from loan_default.lib.storage.lake_tables import LakeTables
from loan_default.lib.storage.table_store import TableStore
from loan_default.lib.storage.warehouse_tables import month_fingerprints
from loan_default_tests.production_services import free_ports, running_services, services_folder

JAN, FEB, MAR, APR = (date(2024, m, 1) for m in (1, 2, 3, 4))


def rows(month: date, values: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"month": [month] * len(values), "value": values, "text": ['a "q"'] * len(values)},
        schema={"month": pl.Date, "value": pl.Int64, "text": pl.String},
    )


@pytest.fixture(params=["ducklake", "embedded"])
def local_lake(request, tmp_path) -> TableStore:
    """Each backend by hand: a DuckLake with a local catalog and files, and the embedded file."""
    if request.param == "embedded":
        return EmbeddedTables(tmp_path / "warehouse.duckdb")
    return LakeTables(str(tmp_path / "catalog.ducklake"), str(tmp_path / "files") + "/")


def content(store: TableStore, table: str = "gold.t") -> list[tuple]:
    return sorted(store.read(table).select("month", "value").iter_rows())


def test_a_replacement_replaces_its_months_and_keeps_the_others(local_lake):
    local_lake.replace("gold.t", [rows(JAN, [1, 2]), rows(FEB, [3])], "month", JAN, MAR)
    local_lake.replace("gold.t", rows(FEB, [4, 5]), "month", FEB, MAR)
    local_lake.replace("gold.t", rows(FEB, [4, 5]), "month", FEB, MAR)  # a re-run: no append
    assert content(local_lake) == [(JAN, 1), (JAN, 2), (FEB, 4), (FEB, 5)]
    assert local_lake.month_counts("gold.t", "month", JAN, APR) == {JAN: 2, FEB: 2}
    assert local_lake.read("gold.t")["text"].to_list()[0] == 'a "q"'
    selected = local_lake.read("gold.t", "month", FEB, MAR, columns=("value",))
    assert selected.columns == ["value"] and sorted(selected["value"]) == [4, 5]


def test_an_empty_replacement_empties_its_months_and_leaves_a_typed_table(local_lake):
    local_lake.replace("gold.t", rows(JAN, [1]), "month", JAN, FEB)
    assert local_lake.replace("gold.t", rows(JAN, []), "month", JAN, FEB) == 0
    assert content(local_lake) == []
    local_lake.replace("gold.empty", rows(JAN, []), "month", JAN, FEB)
    assert local_lake.describe("gold.empty", "month", JAN, FEB).columns == [
        ("month", "DATE"),
        ("value", "BIGINT"),
        ("text", "VARCHAR"),
    ]


def test_a_failed_block_changes_nothing(local_lake):
    local_lake.replace("gold.t", rows(JAN, [1]), "month", JAN, FEB)
    with pytest.raises(RuntimeError, match="boom"), local_lake.replacing(JAN, FEB) as replacement:
        replacement.write("gold.t", rows(JAN, [9]), "month")
        replacement.write("gold.u", rows(JAN, [9]), "month")
        raise RuntimeError("boom")
    assert content(local_lake) == [(JAN, 1)]
    assert not local_lake.exists("gold.u")


def test_rows_outside_the_range_and_changed_columns_are_refused(local_lake):
    with pytest.raises(ValueError, match="outside"):
        local_lake.replace("gold.t", rows(FEB, [1]), "month", JAN, FEB)
    local_lake.replace("gold.t", rows(JAN, [1]), "month", JAN, FEB)
    with pytest.raises(ValueError, match="table definition changed"):
        local_lake.replace("gold.t", rows(JAN, [1]).drop("text"), "month", JAN, FEB)
    assert content(local_lake) == [(JAN, 1)]


# --- On the production profile's services -----------------------------------------------------

MONTHS = [date(2024, m, 1) for m in range(1, 5)]
ROWS_PER_MONTH = 200_000


def month_rows(month: date) -> pl.DataFrame:
    n = ROWS_PER_MONTH
    return pl.DataFrame(
        {
            "month": pl.Series([month] * n),
            "loan_id": pl.int_range(0, n, eager=True),
            "score": pl.int_range(0, n, eager=True) * month.month / n,
        }
    )


def lake_of(services) -> LakeTables:
    return services.warehouse()


def write_month(lake: LakeTables, month: date, pause: float = 0.0) -> None:
    """One writer process: replaces its month of gold.scores (pausing mid-write if asked)."""

    def frames():
        yield month_rows(month)
        time.sleep(pause)

    lake.replace("gold.scores", frames(), "month", month, month.replace(day=28))


def run_writers(lake: LakeTables, months: list[date]) -> list[int]:
    """Starts one process per month at once; returns their exit codes."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=write_month, args=(lake, m)) for m in months]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    return [process.exitcode for process in processes]


@pytest.fixture(scope="module")
def services():
    with services_folder() as folder, running_services(folder, *free_ports(2)) as running:
        yield running


def test_four_writers_of_different_months_commit_side_by_side_and_a_rerun_is_identical(
    services,
):
    lake = lake_of(services)
    assert run_writers(lake, MONTHS) == [0, 0, 0, 0]  # the table is created by one of them
    counts = lake.month_counts("gold.scores", "month", MONTHS[0], date(2025, 1, 1))
    assert counts == dict.fromkeys(MONTHS, ROWS_PER_MONTH)
    first = month_fingerprints(lake, ["gold.scores"])
    assert run_writers(lake, MONTHS) == [0, 0, 0, 0]  # a concurrent re-run replaces
    assert month_fingerprints(lake, ["gold.scores"]) == first
    sequential = lake_of(services)
    for month in MONTHS:
        write_month(sequential, month)
    assert month_fingerprints(sequential, ["gold.scores"]) == first
    with lake.connect() as connection:
        snapshots = connection.execute("select count(*) from lake.snapshots()").fetchone()[0]
    assert snapshots >= 3 * len(MONTHS)


@pytest.mark.parametrize("delay", [0.5, 1.5, 3.0, 4.5])
def test_a_writer_killed_mid_write_leaves_the_catalog_consistent(services, delay):
    """SIGKILL at several moments of a replacement (staging, the catalog transaction, its
    upload of files): the table reads the old month whole, and a re-run equals a clean run."""
    lake = lake_of(services)
    table, month = "gold.killed", date(2024, 6, 1)
    lake.replace(table, month_rows(month).head(10), "month", month, month.replace(day=28))
    before = month_fingerprints(lake, [table])
    code = (
        "import sys, polars as pl\n"
        "from datetime import date\n"
        "from loan_default_tests.lib.storage import test_lake_tables as t\n"
        "from loan_default_tests.production_services import ProductionServices\n"
        f"services = ProductionServices(**{json.dumps(_fields(services))})\n"
        "lake = t.lake_of(services)\n"
        "month = date(2024, 6, 1)\n"
        f"lake.replace({table!r}, [t.month_rows(month)] * 5, 'month', month, month.replace(day=28))"
    )
    child = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[3])
    time.sleep(delay)
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()
    after = month_fingerprints(lake, [table])
    whole = {5 * ROWS_PER_MONTH}
    assert after == before or {rows for rows, _ in after.values()} == whole
    lake.replace(table, [month_rows(month)] * 5, "month", month, month.replace(day=28))
    lake.replace("gold.clean", [month_rows(month)] * 5, "month", month, month.replace(day=28))
    rerun = month_fingerprints(lake, [table])[(table, str(month))]
    assert rerun == month_fingerprints(lake, ["gold.clean"])[("gold.clean", str(month))]
    assert rerun[0] == 5 * ROWS_PER_MONTH


def _fields(services) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(services).items()}


def test_the_model_registry_works_on_a_lake_and_keeps_version_ids_unique(local_lake, tmp_path):
    from loan_default.lib.models import registry
    from loan_default_tests.lib.models.test_model_building_blocks import record

    with local_lake.connect() as connection:
        registry.register(connection, record(tmp_path, "v1", {"weights": [1]}))
        registry.set_status(connection, "v1", "champion")
        with pytest.raises(ValueError, match="registered already"):
            registry.register(connection, record(tmp_path / "other", "v1", {"weights": [2]}))
    with local_lake.connect(read_only=True) as connection:
        champion = registry.champion_read_only(connection)
    assert champion.version_id == "v1" and registry.load_artifact(champion) == {"weights": [1]}

"""Parquet tables: months replaced whole, failed writes leave nothing, the view reads them."""

from datetime import date

import duckdb
import polars as pl
import pytest

from loan_default.lib.storage.parquet_tables import ParquetTables
from loan_default.lib.storage.warehouse import MissingTableError

JAN, FEB, MAR, APR = date(2023, 1, 1), date(2023, 2, 1), date(2023, 3, 1), date(2023, 4, 1)


def rows(*months_and_values: tuple[date, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "value": [v for _, v in months_and_values],
            "partition_month": [m for m, _ in months_and_values],
        },
        schema={"value": pl.String, "partition_month": pl.Date},
    )


def content(store: ParquetTables, start: date = JAN, end: date = APR) -> list[tuple]:
    return store.scan("src", start, end).collect().sort("partition_month", "value").rows()


@pytest.fixture
def store(tmp_path) -> ParquetTables:
    return ParquetTables.beside(tmp_path / "warehouse.duckdb", "bronze")


def test_layer_files_live_beside_their_warehouse_file(tmp_path):
    assert ParquetTables.beside(tmp_path / "w.duckdb", "silver").root == tmp_path / "w_silver"


def test_rewriting_a_range_replaces_its_months_and_keeps_the_others(store):
    batches = [rows(), rows((JAN, "a"), (FEB, "b")), rows((FEB, "c"), (MAR, "d"))]
    assert store.replace_months("src", batches, JAN, APR) == 4
    assert store.month_counts("src", JAN, APR) == {JAN: 1, FEB: 2, MAR: 1}

    assert store.replace_months("src", [rows((FEB, "x"))], FEB, MAR) == 1
    assert content(store) == [("a", JAN), ("x", FEB), ("d", MAR)]
    # A month of the range that now has no rows is emptied, not kept.
    assert store.replace_months("src", [rows()], MAR, APR) == 0
    assert content(store) == [("a", JAN), ("x", FEB)]
    assert store.month_counts("src", JAN, APR) == {JAN: 1, FEB: 1}


def test_a_failed_read_changes_nothing(store):
    store.replace_months("src", [rows((JAN, "a"))], JAN, FEB)

    def failing():
        yield rows((JAN, "new"))
        raise RuntimeError("the raw file broke halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        store.replace_months("src", failing(), JAN, FEB)
    assert content(store) == [("a", JAN)]
    assert not any((store.root / ".staging").iterdir())


def test_a_row_outside_the_range_is_refused_and_nothing_written(store):
    with pytest.raises(ValueError, match="outside"):
        store.replace_months("src", [rows((JAN, "a"), (MAR, "late"))], JAN, FEB)
    with pytest.raises(MissingTableError, match="materialize"):
        store.month_counts("src", JAN, FEB)


def test_view_reads_every_file_and_keeps_its_columns_when_empty(store, tmp_path):
    store.replace_months("src", [rows()], JAN, APR)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        store.create_view(connection, "bronze.src", "src")
        assert connection.execute("select count(*) from bronze.src").fetchone() == (0,)
        assert [c[0] for c in connection.execute("describe bronze.src").fetchall()] == [
            "value",
            "partition_month",
        ]
        store.replace_months("src", [rows((JAN, "a"), (MAR, "b"))], JAN, APR)
        assert connection.execute(
            "select value, partition_month from bronze.src order by 1"
        ).fetchall() == [("a", JAN), ("b", MAR)]


def test_rows_keep_their_file_order_within_each_month(store):
    interleaved = rows((FEB, "1"), (JAN, "2"), (FEB, "3"), (JAN, "4"), (FEB, "5"))
    store.replace_months("src", [interleaved, rows((JAN, "6"))], JAN, MAR)
    assert store.scan("src", JAN, MAR).collect()["value"].to_list() == [
        "2",
        "4",
        "6",
        "1",
        "3",
        "5",
    ]


def test_tables_replaced_together_change_together(store):
    with store.replacing(JAN, MAR) as replacement:
        replacement.write("src", rows((JAN, "a")))
        replacement.write("held", rows((FEB, "q")))
    with pytest.raises(RuntimeError, match="cleaning"), store.replacing(JAN, MAR) as replacement:
        replacement.write("src", rows((JAN, "new")))
        raise RuntimeError("cleaning failed")
    assert content(store) == [("a", JAN)]
    assert store.scan("held", JAN, MAR).collect().rows() == [("q", FEB)]

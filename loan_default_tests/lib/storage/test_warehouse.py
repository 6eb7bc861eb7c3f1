"""MonthWriter: months replaced in one transaction, or not at all; what a table holds."""

from datetime import date

import duckdb
import polars as pl
import pytest

from loan_default.lib.storage.warehouse import (
    MonthWriter,
    read_months,
    table_columns,
    table_exists,
)

JAN, FEB, MAR = date(2023, 1, 1), date(2023, 2, 1), date(2023, 3, 1)


def frame(month: date, *values: int) -> pl.DataFrame:
    return pl.DataFrame({"month": [month] * len(values), "value": list(values)})


@pytest.fixture
def connection(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        connection.execute("create schema s")
        yield connection


def values(connection: duckdb.DuckDBPyConnection) -> list[int]:
    return sorted(read_months(connection, "s.t", "month", JAN, MAR)["value"].to_list())


def test_writes_replace_the_months_on_exit(connection):
    with MonthWriter(connection, JAN, MAR) as writer:
        writer.write("s.t", frame(JAN, 1, 2), "month")
        writer.write("s.t", frame(FEB, 3), "month")
    assert values(connection) == [1, 2, 3]
    assert writer.written == {"s.t": 3}

    with MonthWriter(connection, FEB, MAR) as writer:
        writer.write("s.t", frame(FEB, 4), "month")
    assert values(connection) == [1, 2, 4]


def test_a_failed_write_rolls_everything_back(connection):
    with MonthWriter(connection, JAN, MAR) as writer:
        writer.write("s.t", frame(JAN, 1), "month")
    with pytest.raises(ValueError, match="columns"), MonthWriter(connection, JAN, MAR) as writer:
        writer.write("s.t", frame(JAN, 7), "month")
        writer.write("s.t", frame(FEB, 8).rename({"value": "other"}), "month")
    assert values(connection) == [1]


def test_an_error_after_writes_rolls_them_back(connection):
    with MonthWriter(connection, JAN, MAR) as writer:
        writer.write("s.t", frame(JAN, 1), "month")
    with (
        pytest.raises(RuntimeError, match="cleaning failed"),
        MonthWriter(connection, JAN, MAR) as writer,
    ):
        writer.write("s.t", frame(JAN, 9), "month")
        raise RuntimeError("cleaning failed")
    assert values(connection) == [1]


def test_table_exists_and_columns_on_a_read_only_connection(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema s")
        connection.execute("create table s.t (month date, value integer)")
        connection.execute("create view s.v as select value from s.t")
    with duckdb.connect(str(path), read_only=True) as connection:
        assert table_exists(connection, "s.t") and table_exists(connection, "s.v")
        assert not table_exists(connection, "s.missing")
        assert table_columns(connection, "s.t") == [("month", "DATE"), ("value", "INTEGER")]

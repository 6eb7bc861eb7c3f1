"""Month-partitioned tables in DuckDB: replace a range of months, read a range of months.

Assets process one month at a time and write it here, so memory stays bounded by the largest
month rather than the whole range, and a re-run of any range replaces exactly those months.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
import polars as pl


class MissingTableError(LookupError):
    """An upstream table that has not been materialized yet."""


def table_exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def _columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    rows = connection.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]


def replace_months(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    frames: pl.DataFrame | Iterable[pl.DataFrame],
    month_column: str,
    start: date,
    end: date,
) -> int:
    """Deletes [start, end) from `table`, then inserts `frames`, in one transaction.

    An empty result still creates the (typed, empty) table so downstream reads work.
    Returns the number of rows written.
    """
    if isinstance(frames, pl.DataFrame):
        frames = [frames]
    schema = table.split(".")[0]
    connection.execute(f"create schema if not exists {schema}")
    connection.begin()
    try:
        exists = table_exists(connection, table)
        if exists:
            connection.execute(
                f"delete from {table} where {month_column} >= ? and {month_column} < ?",
                [start, end],
            )
        written = 0
        for frame in frames:
            batch = frame.to_arrow()  # noqa: F841  (referenced by name in the SQL)
            if not exists:
                connection.execute(f"create table {table} as select * from batch")
                exists = True
            else:
                if _columns(connection, table) != frame.columns:
                    raise ValueError(
                        f"{table} has columns {_columns(connection, table)} but the new rows "
                        f"have {frame.columns}; the table definition changed: drop the table "
                        "(make clean) and backfill every month"
                    )
                connection.execute(f"insert into {table} select * from batch")
            written += frame.height
        connection.commit()
    except Exception:
        connection.rollback()
        raise
    return written


def read_months(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    month_column: str,
    start: date,
    end: date,
) -> pl.DataFrame:
    """Rows of `table` whose month lies in [start, end)."""
    if not table_exists(connection, table):
        raise MissingTableError(
            f"{table} does not exist yet: materialize it for {start}..{end} first"
        )
    return connection.execute(
        f"select * from {table} where {month_column} >= ? and {month_column} < ?",
        [start, end],
    ).pl()

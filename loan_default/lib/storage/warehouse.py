"""Month-partitioned tables in DuckDB SQL, whichever file or catalog is attached: replace a
range of months in one transaction, read a range, ask what a table holds. Both warehouse
backends (lib/storage/table_store.py) build on these.

Assets process a run's months in chunks of bounded size and write them in one transaction per
run, so memory stays bounded however long the range, and a re-run of any range replaces
exactly those months.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pyarrow as pa

from loan_default.lib.months import add_months

ROW_GROUP_ROWS = 122_880


class MissingTableError(LookupError):
    """An upstream table that has not been materialized yet."""


def table_exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `schema.table` (a table or a view) exists, asked without creating anything, so
    a read-only connection may ask too."""
    schema, name = table.split(".")
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def table_columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """Name and type of each column of `schema.table`, in table order."""
    schema, name = table.split(".")
    return connection.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()


def _columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [name for name, _ in table_columns(connection, table)]


class MonthWriter:
    """Replaces a month range in one or more tables within a single transaction.

    The first write to a table deletes its months [start, end) (or creates the table from the
    frame's schema, so an empty frame still leaves a typed table); later writes append. Nothing
    is visible to readers until the whole range is written; any error rolls everything back.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, start: date, end: date) -> None:
        self.connection, self.start, self.end = connection, start, end
        self.written: dict[str, int] = {}
        # Tables touched in this transaction and their columns.
        self.columns: dict[str, list[str]] = {}

    def __enter__(self) -> MonthWriter:
        self.connection.begin()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.connection.commit()
        else:
            self.connection.rollback()

    def clear(self, table: str, month_column: str) -> None:
        """Deletes the range from an existing table (once); a missing table is left to write."""
        if table in self.columns:
            return
        self.connection.execute(f"create schema if not exists {table.split('.')[0]}")
        if table_exists(self.connection, table):
            self.columns[table] = _columns(self.connection, table)
            self.connection.execute(
                f"delete from {table} where {month_column} >= ? and {month_column} < ?",
                [self.start, self.end],
            )

    def write(self, table: str, frame: pl.DataFrame, month_column: str) -> None:
        if frame.height:
            months = frame[month_column]
            if months.min() < self.start or months.max() >= self.end:
                raise ValueError(
                    f"{table}: rows of {months.min()}..{months.max()} outside "
                    f"{self.start}..{self.end}: a re-run would not replace them"
                )
        self.clear(table, month_column)
        # Arrow string views (no copy of the text) in row-group-sized record batches, which
        # DuckDB inserts on several threads.
        arrow = frame.to_arrow(compat_level=pl.CompatLevel.newest())
        batch = pa.Table.from_batches(  # noqa: F841  (referenced by name in the SQL)
            arrow.to_batches(max_chunksize=ROW_GROUP_ROWS), arrow.schema
        )
        if table not in self.columns:
            self.connection.execute(f"create table {table} as select * from batch")
            self.columns[table] = frame.columns
        elif self.columns[table] != frame.columns:
            raise ValueError(
                f"{table} has columns {self.columns[table]} but the new rows have "
                f"{frame.columns}; the table definition changed: drop the table (make clean) "
                "and backfill every month"
            )
        elif frame.height:
            self.connection.execute(f"insert into {table} select * from batch")
        self.written[table] = self.written.get(table, 0) + frame.height


def month_chunks(
    months: list[date], counts: dict[date, int], max_rows: int
) -> list[tuple[date, date]]:
    """Consecutive months grouped into [start, end) ranges of at most `max_rows` rows each.

    Large backfills are processed a chunk at a time so memory stays bounded; small ones in one
    go, which avoids per-month overhead. A month larger than `max_rows` is a chunk of its own.
    Given at least one month, returns at least one range, so a run without rows still writes
    its (empty) tables.
    """
    chunks: list[tuple[date, date]] = []
    first, rows = None, 0
    for month in months:
        size = counts.get(month, 0)
        if first is not None and rows + size > max_rows:
            chunks.append((first, month))
            first, rows = None, 0
        if first is None:
            first = month
        rows += size
    if first is not None:
        chunks.append((first, add_months(months[-1], 1)))
    return chunks


def read_months(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    month_column: str,
    start: date,
    end: date,
    where: str | None = None,
    columns: tuple[str, ...] | None = None,
) -> pl.DataFrame:
    """Rows of `table` whose month lies in [start, end), optionally only those matching `where`
    and only `columns`."""
    if not table_exists(connection, table):
        raise MissingTableError(
            f"{table} does not exist yet: materialize it for {start}..{end} first"
        )
    condition = f" and ({where})" if where else ""
    return connection.execute(
        f"select {select_list(columns)} from {table} "
        f"where {month_column} >= ? and {month_column} < ?{condition}",
        [start, end],
    ).pl()


def select_list(columns: tuple[str, ...] | None) -> str:
    """The SELECT list of `columns`, quoted; every column when None."""
    return ", ".join(f'"{c}"' for c in columns) if columns else "*"

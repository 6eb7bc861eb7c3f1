"""The warehouse seam: read, replace and describe month ranges of a table, whatever stores it.

Assets talk to a `TableStore`; where the rows live is the backend's business: `EmbeddedTables`
(one DuckDB file, bronze and silver as Parquet month folders beside it) or `LakeTables`
(DuckLake: a catalog in PostgreSQL, data files on object storage). Both are reached through
DuckDB, so the SQL of lib modules that take a connection (the model registry) runs on either.

A replacement of months [start, end) is all or nothing: readers see the old months or the new
ones, never a mix, and a re-run replaces, never appends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Protocol, TypeVar

import duckdb
import polars as pl

from loan_default.lib.storage.warehouse import (
    MissingTableError,
    read_months,
    select_list,
    table_columns,
    table_exists,
)

T = TypeVar("T")


class Replacement(Protocol):
    """Months [start, end) of one or more tables being replaced; applied when the block ends."""

    written: dict[str, int]

    def write(self, table: str, frame: pl.DataFrame, month_column: str) -> None:
        """Adds rows (all inside the range) to `table`; the first frame, even empty, fixes the
        schema of a table that does not exist yet."""


@dataclass(frozen=True)
class TableDescription:
    """What the UI shows of a table after a write: its columns and rows per month."""

    table: str
    columns: list[tuple[str, str]]
    rows_per_month: list[tuple[date, int]]

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.rows_per_month)


class TableStore(ABC):
    """Month-partitioned tables named `<layer>.<table>`, read and replaced by month range."""

    @abstractmethod
    def connect(self, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A DuckDB connection on which every table of the warehouse is `<layer>.<table>`."""

    @abstractmethod
    def replacing(self, start: date, end: date) -> AbstractContextManager[Replacement]:
        """A block that replaces months [start, end) of every table written in it, at its end."""

    def transaction(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`work` in one transaction on a writable connection: for SQL that records rather
        than replaces months (raw history). A store whose writers can conflict runs it again
        after the other writer's commit, so `work` must read what it depends on itself."""
        with self.connect() as connection:
            connection.begin()
            try:
                result = work(connection)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
            return result

    def replace(
        self,
        table: str,
        frames: pl.DataFrame | Iterable[pl.DataFrame],
        month_column: str,
        start: date,
        end: date,
    ) -> int:
        """Replaces months [start, end) of `table` with `frames`; returns the rows written.

        An empty result still leaves a typed, empty table, so downstream reads work.
        """
        if isinstance(frames, pl.DataFrame):
            frames = [frames]
        with self.replacing(start, end) as replacement:
            for frame in frames:
                replacement.write(table, frame, month_column)
        if table not in replacement.written:
            raise ValueError(f"{table}: no frame given, not even an empty one for the schema")
        return replacement.written[table]

    def exists(self, table: str) -> bool:
        with self.connect() as connection:
            return table_exists(connection, table)

    def read(
        self,
        table: str,
        month_column: str | None = None,
        start: date | None = None,
        end: date | None = None,
        where: str | None = None,
        columns: tuple[str, ...] | None = None,
    ) -> pl.DataFrame:
        """Rows of `table` whose month lies in [start, end) (every row without a month column),
        optionally only those matching the SQL condition `where`, and only `columns`."""
        with self.connect() as connection:
            if month_column is None:
                if not table_exists(connection, table):
                    raise MissingTableError(f"{table} does not exist yet: materialize it first")
                condition = f" where {where}" if where else ""
                return connection.execute(
                    f"select {select_list(columns)} from {table}{condition}"
                ).pl()
            return read_months(connection, table, month_column, start, end, where, columns)

    def read_if_exists(self, table: str) -> pl.DataFrame | None:
        """Every row of `table`, or None before its first materialization."""
        with self.connect() as connection:
            if not table_exists(connection, table):
                return None
            return connection.execute(f"select * from {table}").pl()

    def scan(self, table: str, month_column: str, start: date, end: date) -> pl.LazyFrame:
        """Rows of months [start, end) as a lazy frame; backends with files stream them."""
        return self.read(table, month_column, start, end).lazy()

    def month_counts(
        self, table: str, month_column: str, start: date, end: date
    ) -> dict[date, int]:
        """Rows per month of `table` in [start, end); months without rows are left out."""
        return dict(self.describe(table, month_column, start, end).rows_per_month)

    def describe(self, table: str, month_column: str, start: date, end: date) -> TableDescription:
        with self.connect() as connection:
            if not table_exists(connection, table):
                raise MissingTableError(
                    f"{table} does not exist yet: materialize it for {start}..{end} first"
                )
            per_month = connection.execute(
                f"select {month_column}, count(*) from {table} "
                f"where {month_column} >= ? and {month_column} < ? group by 1 order by 1",
                [start, end],
            ).fetchall()
            return TableDescription(table, table_columns(connection, table), per_month)

    def tables(self) -> list[str]:
        """Every table (and view) of the warehouse, as `<layer>.<table>`, sorted."""
        with self.connect() as connection:
            rows = connection.execute(
                "select distinct table_schema || '.' || table_name from information_schema.tables"
                " where table_catalog = current_database() and table_schema <> 'main'"
                " order by 1"
            ).fetchall()
        return [name for (name,) in rows]

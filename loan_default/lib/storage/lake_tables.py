"""The production warehouse: DuckLake, its catalog in PostgreSQL and its data on object storage.

Every layer is a DuckLake table partitioned by its month column. A replacement stages its rows
as local Parquet files first, then, in one catalog transaction, deletes the months and inserts
the staged rows: concurrent runs writing different months of one table commit side by side
(DuckLake resolves them in the catalog), a run killed before its commit leaves nothing behind,
and a conflict retries the whole transaction from the staged files. DuckDB's extensions come
from the `duckdb-ext-*` packages installed beside DuckDB; nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.table_store import T, TableStore
from loan_default.lib.storage.warehouse import table_columns, table_exists

ALIAS = "lake"
EXTENSIONS = ("ducklake", "postgres", "httpfs")
# Attempts at a catalog transaction that conflicts with another writer's (DuckLake retries its
# own commit first), and at attaching a catalog that another process is creating.
ATTEMPTS = 5


def extension_directory() -> Path:
    """Where the `duckdb-ext-*` packages put their binaries (`v<duckdb>/<platform>/` inside)."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the duckdb-ext-* packages are not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "extensions"


def _conflict(error: duckdb.Error) -> bool:
    """Errors a retry resolves: another writer committed first. DuckLake 0.3 (duckdb 1.4.4)
    also fails, with "failed to parse catalog entry", a commit whose snapshot predates another
    writer's `set partitioned by`; the retry starts after it."""
    text = str(error).lower()
    return any(
        sign in text
        for sign in ("conflict", "already exists", "duplicate key", "failed to parse catalog")
    )


class LakeTables(TableStore):
    """A DuckLake: `catalog` is a DuckLake metadata connection string (`postgres:dbname=...` or
    a local `.ducklake` file for tests), `data_path` where its Parquet files go (`s3://...` or
    a folder)."""

    def __init__(
        self,
        catalog: str,
        data_path: str,
        s3: S3Endpoint | None = None,
        config: dict | None = None,
        staging_dir: Path | None = None,
    ) -> None:
        self.catalog, self.data_path, self.s3 = catalog, data_path, s3
        self.config = dict(config or {})
        self.staging_dir = staging_dir
        self._connections: dict[tuple[int, bool], duckdb.DuckDBPyConnection] = {}
        self._lock = threading.Lock()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on this process's attached lake: loading the extensions and attaching the
        catalog cost most of a second, so each process does it once per mode."""
        cursor = self._attached(read_only).cursor()
        try:
            cursor.execute(f"use {ALIAS}")
            yield cursor
        finally:
            cursor.close()

    def _attached(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        key = (os.getpid(), read_only)  # a forked child opens its own
        with self._lock:
            if read_only and (os.getpid(), False) in self._connections:
                return self._connections[(os.getpid(), False)]  # a catalog attaches once
            if key not in self._connections:
                self._connections[key] = self._open(read_only)
            return self._connections[key]

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect(
            config={
                **self.config,
                "extension_directory": str(extension_directory()),
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            }
        )
        try:
            for extension in EXTENSIONS:
                connection.load_extension(extension)
            if self.s3 is not None:
                connection.execute(self.s3.duckdb_secret())
            self._attach(connection, read_only)
        except BaseException:
            connection.close()
            raise
        return connection

    def __getstate__(self) -> dict:
        """Pickled (to another process) without its connections."""
        return {**self.__dict__, "_connections": {}, "_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def _attach(self, connection: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        options = [f"data_path '{self.data_path}'"] + (["read_only"] if read_only else [])
        statement = f"attach 'ducklake:{self.catalog}' as {ALIAS} ({', '.join(options)})"
        for attempt in range(ATTEMPTS):
            try:
                connection.execute(statement)
                break
            except duckdb.Error as error:  # two processes creating a new catalog at once
                if attempt == ATTEMPTS - 1 or not _conflict(error):
                    raise
                time.sleep(0.2 * (attempt + 1))
        connection.execute(f"use {ALIAS}")

    def replacing(self, start: date, end: date) -> LakeReplacement:
        return LakeReplacement(self, start, end)

    def transaction(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """As TableStore's, run again when another writer committed first (two runs creating
        or appending to the same table at once)."""
        for attempt in range(ATTEMPTS):
            with self.connect() as connection:
                try:
                    connection.begin()
                    result = work(connection)
                    connection.commit()
                    return result
                except duckdb.Error as error:
                    with suppress(duckdb.TransactionException):  # a failed commit already has
                        connection.rollback()
                    if attempt == ATTEMPTS - 1 or not _conflict(error):
                        raise
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def ensure_table(self, table: str, schema_file: Path, month_column: str) -> None:
        """Creates `table` (partitioned by its month) from a staged file's schema, unless it
        exists; two runs creating it at once both go on."""
        layer = table.split(".")[0]
        for attempt in range(ATTEMPTS):
            with self.connect() as connection:
                if table_exists(connection, table):
                    return
                try:
                    connection.execute(f"create schema if not exists {layer}")
                    connection.execute(
                        f"create table if not exists {table} as "
                        f"select * from read_parquet('{schema_file}') limit 0"
                    )
                    connection.execute(f"alter table {table} set partitioned by ({month_column})")
                    return
                except duckdb.Error as error:
                    if attempt == ATTEMPTS - 1 or not _conflict(error):
                        raise


class LakeReplacement:
    """Stages each table's rows as local Parquet; on success commits them in one transaction."""

    def __init__(self, store: LakeTables, start: date, end: date) -> None:
        self.store, self.start, self.end = store, start, end
        self.written: dict[str, int] = {}
        self.month_columns: dict[str, str] = {}
        self.staging = Path(tempfile.mkdtemp(prefix="lake-", dir=store.staging_dir))
        self._parts = 0

    def __enter__(self) -> LakeReplacement:
        return self

    def write(self, table: str, frame: pl.DataFrame, month_column: str) -> None:
        folder = self.staging / table
        if table not in self.written:
            folder.mkdir()
            frame.clear().write_parquet(folder / "_schema.parquet")
            self.written[table], self.month_columns[table] = 0, month_column
        if frame.is_empty():
            return
        months = frame[month_column]
        if months.min() < self.start or months.max() >= self.end:
            raise ValueError(
                f"{table}: rows of {months.min()}..{months.max()} outside {self.start}..{self.end}"
            )
        frame.write_parquet(folder / f"part-{self._parts:05d}.parquet")
        self._parts += 1
        self.written[table] += frame.height

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._commit()
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _commit(self) -> None:
        for table, month_column in self.month_columns.items():
            self.store.ensure_table(table, self.staging / table / "_schema.parquet", month_column)
        self.store.transaction(self._replace_all)

    def _replace_all(self, connection: duckdb.DuckDBPyConnection) -> None:
        for table in self.written:
            self._replace(connection, table)

    def _replace(self, connection: duckdb.DuckDBPyConnection, table: str) -> None:
        folder, month = self.staging / table, self.month_columns[table]
        staged = pl.read_parquet_schema(folder / "_schema.parquet")
        columns = [name for name, _ in table_columns(connection, table)]
        if columns != list(staged):
            raise ValueError(
                f"{table} has columns {columns} but the new rows have {list(staged)}; the "
                "table definition changed: drop the table and backfill every month"
            )
        connection.execute(
            f"delete from {table} where {month} >= ? and {month} < ?", [self.start, self.end]
        )
        if self.written[table]:
            connection.execute(
                f"insert into {table} select * from read_parquet('{folder}/part-*.parquet')"
            )

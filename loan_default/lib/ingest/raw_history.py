"""Raw history is append-only: a month bronze has ingested keeps its rows unless restated.

Every bronze run records, per source and month it ingests, the rows and content fingerprint
of the raw file (`raw_months.month_fingerprints`) in the warehouse table `raw.month_history`,
one row each time a month's content is first seen or restated. Before the next run writes, it
compares the file's months with the latest recorded state: a month that shrank, vanished, grew
or changed stops the run (`RawHistoryError`, naming file, months and the rows before and after)
unless the run restates it on purpose; a restatement is recorded with what it replaced.

The table is written with plain SQL in one store transaction (`TableStore.transaction`, which
DuckLake runs again when concurrent runs conflict): the embedded DuckDB file and DuckLake both
take it. No run id is stored, so two warehouses
built from the same files by different runs hold the same history (`ingested_at` is volatile).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from loan_default.lib.ingest.raw_months import lines_fingerprint
from loan_default.lib.storage.warehouse import table_exists

HISTORY_TABLE = "raw.month_history"
HISTORY_SCHEMA = {
    "source": pl.String,
    "month": pl.Date,
    "rows": pl.Int64,
    "fingerprint": pl.String,
    "source_file": pl.String,
    "ingested_at": pl.Datetime("us"),
    "restated": pl.Boolean,
    "replaced_rows": pl.Int64,
    "replaced_fingerprint": pl.String,
    "reason": pl.String,
}
_SQL_TYPES = {
    pl.String: "varchar",
    pl.Date: "date",
    pl.Int64: "bigint",
    pl.Datetime("us"): "timestamp",
    pl.Boolean: "boolean",
}


@dataclass(frozen=True)
class MonthState:
    """A month of a raw file: its rows and content fingerprint."""

    rows: int
    fingerprint: str


# A month the file holds no row in.
ABSENT = MonthState(0, lines_fingerprint([]))


@dataclass(frozen=True)
class Change:
    """A month whose raw content differs from what bronze ingested before."""

    month: date
    before: MonthState
    after: MonthState

    @property
    def kind(self) -> str:
        if not self.after.rows:
            return "vanished"
        if self.after.rows < self.before.rows:
            return "shrank"
        return "grew" if self.after.rows > self.before.rows else "changed content"

    def __str__(self) -> str:
        return f"{self.month}: {self.before.rows:,} -> {self.after.rows:,} rows ({self.kind})"


class RawHistoryError(ValueError):
    """A month already ingested differs in the raw file, and the run does not restate it."""

    def __init__(self, file: Path, source: str, changes: list[Change]) -> None:
        self.file, self.source, self.changes = file, source, changes
        months = ", ".join(str(c.month) for c in changes)
        super().__init__(
            f"{file}: {len(changes)} month(s) of {source} already ingested differ in the raw "
            f"file now: {'; '.join(map(str, changes))}. Raw history is append-only, so the "
            "run stops and the warehouse is unchanged. Restore the file, or restate the months "
            f"on purpose: run config restate_months: [{months}] (and restate_reason) on "
            f"bronze/{source}."
        )


def month_states(fingerprints: pl.DataFrame) -> dict[date, MonthState]:
    """`raw_months.month_fingerprints` as states by month."""
    return {
        month: MonthState(rows, fingerprint)
        for month, rows, fingerprint in fingerprints.select("month", "rows", "fingerprint").rows()
    }


def recorded(connection: duckdb.DuckDBPyConnection, source: str) -> dict[date, MonthState]:
    """The latest recorded state of every month of `source` (none before the first run)."""
    if not table_exists(connection, HISTORY_TABLE):
        return {}
    rows = connection.execute(
        f"select month, arg_max(rows, ingested_at), arg_max(fingerprint, ingested_at) "
        f"from {HISTORY_TABLE} where source = ? group by month",
        [source],
    ).fetchall()
    return {month: MonthState(n, fingerprint) for month, n, fingerprint in rows}


def changes(
    before: dict[date, MonthState], now: dict[date, MonthState], months: Iterable[date]
) -> list[Change]:
    """Months of `months` recorded before whose state now differs, in month order."""
    return [
        Change(month, before[month], now.get(month, ABSENT))
        for month in sorted(months)
        if month in before and now.get(month, ABSENT) != before[month]
    ]


def refuse_unrestated(file: Path, source: str, found: list[Change], restate: set[date]) -> None:
    """Raises for the changed months the run does not restate."""
    refused = [c for c in found if c.month not in restate]
    if refused:
        raise RawHistoryError(file, source, refused)


def entries(
    source: str,
    file: Path,
    before: dict[date, MonthState],
    now: dict[date, MonthState],
    months: Iterable[date],
    ingested_at: datetime,
    reason: str = "",
) -> pl.DataFrame:
    """The history rows a successful run appends: months first seen (with rows), and months
    restated, each with the state it replaced. Unchanged months add nothing."""
    rows = []
    for month in sorted(months):
        state, previous = now.get(month, ABSENT), before.get(month)
        if state == previous or (previous is None and not state.rows):
            continue
        rows.append(
            {
                "source": source,
                "month": month,
                "rows": state.rows,
                "fingerprint": state.fingerprint,
                "source_file": str(file),
                "ingested_at": ingested_at.replace(tzinfo=None),
                "restated": previous is not None,
                "replaced_rows": previous.rows if previous else None,
                "replaced_fingerprint": previous.fingerprint if previous else None,
                "reason": reason if previous else None,
            }
        )
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA)


def append(connection: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> None:
    """Appends `rows` to the history, creating the table on first use."""
    if rows.is_empty():
        return
    if not table_exists(connection, HISTORY_TABLE):  # two runs creating it: the store retries
        columns = ", ".join(f"{name} {_SQL_TYPES[kind]}" for name, kind in HISTORY_SCHEMA.items())
        connection.execute(f"create schema if not exists {HISTORY_TABLE.split('.')[0]}")
        connection.execute(f"create table if not exists {HISTORY_TABLE} ({columns})")
    frame = rows.select(list(HISTORY_SCHEMA)).to_arrow()  # noqa: F841  (read by name in the SQL)
    connection.execute(
        f"insert into {HISTORY_TABLE} ({', '.join(HISTORY_SCHEMA)}) select * from frame"
    )


def history(connection: duckdb.DuckDBPyConnection, source: str | None = None) -> pl.DataFrame:
    """The recorded history, oldest first (of one source, or all)."""
    if not table_exists(connection, HISTORY_TABLE):
        return pl.DataFrame(schema=HISTORY_SCHEMA)
    where = "where source = ?" if source else ""
    return connection.execute(
        f"select * from {HISTORY_TABLE} {where} order by source, month, ingested_at",
        [source] if source else [],
    ).pl()

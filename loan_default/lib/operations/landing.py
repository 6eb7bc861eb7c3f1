"""The as-of clock's view of the raw sources: what a landing folder holds on month M.

A replay delivers each source's rows dated up to the simulated month, the way a landing folder
receives its monthly drop, so no step at month M can read a row dated after M. A row whose date
cannot be read is delivered with the first drop: the pipeline then refuses or quarantines it as
it would in production, rather than the clock hiding it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from loan_default.lib.ingest.raw_reader import RawFile
from loan_default.lib.ingest.sources import SOURCES, Source


@dataclass(frozen=True)
class SourceHistory:
    """One source's rows, as text, with the month each is dated in (null when unreadable)."""

    source: Source
    rows: pl.DataFrame  # the file's columns as text, plus `__month`

    @classmethod
    def read(cls, raw_dir: Path, source: Source, date_format: str) -> SourceHistory:
        with RawFile.locate(raw_dir, source).open_bytes() as handle:
            rows = pl.read_csv(handle.read(), infer_schema=False)
        month = (
            pl.col(source.date_column)
            .str.strip_chars()
            .str.to_date(date_format, strict=False)
            .dt.truncate("1mo")
        )
        return cls(source, rows.with_columns(month.alias("__month")))

    def as_of(self, month: date, first_drop: bool) -> pl.DataFrame:
        """The rows dated up to `month`; with the first drop, the undated rows too."""
        dated = pl.col("__month") <= month
        keep = (dated | pl.col("__month").is_null()) if first_drop else dated
        return self.rows.filter(keep).drop("__month")

    def months(self) -> list[date]:
        return sorted(self.rows["__month"].drop_nulls().unique().to_list())


def read_histories(raw_dir: Path, date_format: str) -> dict[str, SourceHistory]:
    return {name: SourceHistory.read(raw_dir, s, date_format) for name, s in SOURCES.items()}


def deliver(
    histories: dict[str, SourceHistory], landing_dir: Path, month: date, first_drop: bool
) -> dict[str, int]:
    """Writes every source as the landing folder holds it on `month`; rows per file.

    Each file is replaced whole (written beside it, then renamed), as a delivery would be.
    """
    landing_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, history in histories.items():
        target = landing_dir / history.source.file_name
        partial = target.with_name(target.name + ".partial")
        rows = history.as_of(month, first_drop)
        rows.write_csv(partial)
        os.replace(partial, target)
        written[name] = rows.height
    return written

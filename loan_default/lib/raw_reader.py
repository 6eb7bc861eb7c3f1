"""Reads a raw CSV into bronze rows: every value as raw text, plus where it came from.

Anything that makes a file unreadable as a whole (wrong header, wrong delimiter, rows whose
partition date cannot be read) raises `RawInputError` naming file, line and column. Values that
are merely dirty stay as text here and are judged in silver.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from loan_default.lib.sources import Source

ISO_DATE_FORMAT = "%Y-%m-%d"
LINEAGE_COLUMNS = ("partition_month", "source_file", "source_line", "ingested_at")
_OTHER_DELIMITERS = (";", "\t", "|")


class RawInputError(ValueError):
    """A raw file that cannot be ingested; the message says where and how to fix it."""

    def __init__(self, file: Path, message: str, line: int | None = None, column: str | None = None):
        where = str(file)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")
        self.file, self.line, self.column = file, line, column


@dataclass(frozen=True)
class RawFile:
    """A located raw file: the plain CSV, or its gzip-compressed sibling."""

    path: Path

    @classmethod
    def locate(cls, raw_dir: Path, source: Source) -> RawFile:
        plain = raw_dir / source.file_name
        for candidate in (plain, plain.with_name(plain.name + ".gz")):
            if candidate.exists():
                return cls(candidate)
        raise RawInputError(plain, f"file not found (also looked for {plain.name}.gz)")

    @property
    def compressed(self) -> bool:
        return self.path.suffix == ".gz"

    def first_line(self) -> str:
        opener = gzip.open if self.compressed else open
        with opener(self.path, "rt", encoding="utf-8-sig", newline="") as handle:
            return handle.readline()


def check_header(raw: RawFile, source: Source) -> None:
    """Refuse files whose header does not match the source schema exactly."""
    line = raw.first_line()
    if not line:
        raise RawInputError(
            raw.path, f"file is empty; expected a header line: {','.join(source.column_names)}",
            line=1,
        )
    header = next(csv.reader([line.rstrip("\r\n")]))
    if len(header) == 1:
        found = [d for d in _OTHER_DELIMITERS if d in header[0]]
        if found:
            raise RawInputError(
                raw.path,
                f"header is delimited by {found[0]!r}, not ','; re-export the file as "
                "comma-separated CSV",
                line=1,
            )
    missing = [c for c in source.column_names if c not in header]
    extra = [c for c in header if c not in source.column_names]
    if missing:
        raise RawInputError(
            raw.path, f"missing column(s) {missing}; the header has {header}", line=1,
            column=missing[0],
        )
    if extra:
        raise RawInputError(
            raw.path,
            f"unexpected column(s) {extra}; expected exactly {source.column_names}",
            line=1, column=extra[0],
        )


def _scan_text(raw: RawFile, source: Source) -> pl.LazyFrame:
    options = dict(infer_schema=False, empty_string_is_null=False, row_index_name="source_line",
                   row_index_offset=2)
    if raw.compressed:
        with gzip.open(raw.path, "rb") as handle:
            return pl.read_csv(handle.read(), **options).lazy()
    return pl.scan_csv(raw.path, **options)


def _find_ragged_line(raw: RawFile, width: int) -> tuple[int, int]:
    opener = gzip.open if raw.compressed else open
    with opener(raw.path, "rt", encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if len(row) != width:
                return number, len(row)
    return -1, -1


def _parse_month(column: str, date_format: str) -> pl.Expr:
    return pl.col(column).str.strptime(pl.Date, date_format, strict=False).dt.month_start()


def _date_format_hint(value: str, date_format: str) -> str:
    if date_format == ISO_DATE_FORMAT and value.count("/") == 2:
        return (
            " This looks like a spreadsheet re-save (D/M/YYYY or M/D/YYYY). Re-export with ISO "
            "dates (YYYY-MM-DD), or set LOAN_DEFAULT_DATE_FORMAT (for example '%d/%m/%Y') to the "
            "format the file uses."
        )
    return ""


def read_bronze(
    raw: RawFile,
    source: Source,
    months: tuple[date, date] | None,
    ingested_at: datetime,
    date_format: str = ISO_DATE_FORMAT,
) -> pl.DataFrame:
    """Rows of `source` whose date falls in [months[0], months[1]), all values as raw text.

    `partition_month` is the month of the source's date column; it is what Dagster partitions on.
    """
    check_header(raw, source)
    frame = _scan_text(raw, source).with_columns(
        partition_month=_parse_month(source.date_column, date_format)
    )
    try:
        unreadable = (
            frame.filter(pl.col("partition_month").is_null())
            .select("source_line", *source.column_names)
            .head(1)
            .collect()
        )
    except pl.exceptions.ComputeError as error:
        line, width = _find_ragged_line(raw, len(source.column_names))
        raise RawInputError(
            raw.path, f"row has {width} fields, expected {len(source.column_names)} ({error})",
            line=line,
        ) from error
    if unreadable.height:
        row = unreadable.row(0, named=True)
        missing_fields = [c for c in source.column_names if row[c] is None]
        if missing_fields:
            raise RawInputError(
                raw.path,
                f"row is truncated: fields {missing_fields} are missing",
                line=row["source_line"], column=missing_fields[0],
            )
        value = row[source.date_column]
        raise RawInputError(
            raw.path,
            f"cannot read date {value!r} with format {date_format!r}."
            + _date_format_hint(value, date_format),
            line=row["source_line"], column=source.date_column,
        )
    if months is not None:
        frame = frame.filter(pl.col("partition_month").is_between(*months, closed="left"))
    return frame.select(
        *source.column_names,
        "partition_month",
        source_file=pl.lit(str(raw.path)),
        source_line=pl.col("source_line").cast(pl.Int64),
        ingested_at=pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")),
    ).collect()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

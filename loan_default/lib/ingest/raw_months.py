"""What a raw folder holds: cheaply, a fingerprint of its files and the loan book's months (for
the new-month sensor, which must answer in seconds without hashing gigabytes); in full, each
month's rows and content fingerprint (for the raw observation and bronze's raw history).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from loan_default.lib.ingest.raw_reader import MONTH_COLUMN, RawFile, raw_month, scan_bronze
from loan_default.lib.ingest.sources import Source


def files_fingerprint(files: list[Path]) -> str:
    """Changes whenever a file is replaced, grows or is touched: name, size and mtime."""
    digest = hashlib.sha256()
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def month_counts(raw: RawFile, source: Source, date_format: str) -> dict[date, int]:
    """Rows per month of the file's date column, in month order; unreadable dates are left to
    the pipeline, which refuses them with file, line and column. Damaged gzip data is refused
    here already, naming the file and line (RawInputError)."""
    content = raw.decompressed() if raw.compressed else raw.path
    dates = pl.read_csv(content, columns=[source.date_column], infer_schema=False)
    counts = (
        dates.select(month=raw_month(source.date_column, date_format))
        .drop_nulls()
        .group_by("month")
        .len()
        .sort("month")
    )
    return dict(counts.iter_rows())


def months_in_loan_book(raw: RawFile, source: Source, date_format: str) -> list[date]:
    """The months the file's date column covers; unreadable dates are left to the pipeline."""
    return list(month_counts(raw, source, date_format))


def outside_months(counts: dict[date, int], first: date, end: date) -> dict[date, int]:
    """The months of `counts` outside the configured [first, end): rows no partition ingests."""
    return {month: rows for month, rows in counts.items() if not first <= month < end}


# Joins a row's values into one line for the fingerprint: a unit separator, which no value of
# a well-formed file holds unnoticed (cleaning quarantines control characters).
_FIELD_SEPARATOR = "\x1f"
# The schema of `month_fingerprints`.
FINGERPRINT_SCHEMA = {"month": pl.Date, "rows": pl.Int64, "fingerprint": pl.String}


def lines_fingerprint(lines: list[str]) -> str:
    """sha256 of the lines in sorted order: the same rows in another order are the same month,
    and a library upgrade cannot change it (polars' own hash is not stable across versions)."""
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def month_fingerprints(raw: RawFile, source: Source, date_format: str) -> pl.DataFrame:
    """Rows and content fingerprint per month of the file, in month order, as bronze reads them.

    Reads the file through bronze's own validation (`scan_bronze`): a file bronze refuses is
    refused here with the same error, naming file, line and column. Every month the file holds
    is counted, configured or not. Values are taken as text, in the source's column order, so
    a re-ordered header or re-sorted file is the same content.
    """
    rows = scan_bronze(raw, source, None, datetime.now(UTC), date_format)
    line = pl.concat_str(
        [pl.col(c).fill_null("") for c in source.column_names], separator=_FIELD_SEPARATOR
    )
    per_month = (
        rows.group_by(month=MONTH_COLUMN)
        .agg(rows=pl.len().cast(pl.Int64), lines=line)
        .sort("month")
        .collect()
    )
    return pl.DataFrame(
        {
            "month": per_month["month"],
            "rows": per_month["rows"],
            "fingerprint": [lines_fingerprint(lines) for lines in per_month["lines"]],
        },
        schema=FINGERPRINT_SCHEMA,
    )

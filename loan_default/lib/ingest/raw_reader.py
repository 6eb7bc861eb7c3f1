"""Reads a raw CSV into bronze rows: every value as raw text, plus where it came from.

Anything that makes a file unreadable as a whole (a source with both a plain and a gzip file,
damaged gzip data, CR-only line endings, wrong header, wrong delimiter, ragged or truncated
rows, a '"' inside an unquoted value, a field over `FIELD_SIZE_LIMIT`, rows whose partition date
cannot be read) raises `RawInputError` naming file, line and column. Blank lines at the end of a
file are not rows and are ignored; a blank line before another row is an error. Values that
are merely dirty stay as text here and are judged in silver.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain
from pathlib import Path
from typing import IO

import polars as pl

from loan_default.lib.ingest.sources import Source
from loan_default.lib.storage.table_store import TableStore

ISO_DATE_FORMAT = "%Y-%m-%d"
DAY_MONTH_FORMAT = "%d/%m/%Y"
MONTH_DAY_FORMAT = "%m/%d/%Y"
# A date before this year is a misreading (a two-digit year read as the year 23), not data.
EARLIEST_YEAR = 1000
# The first bytes of gzip data.
GZIP_MAGIC = b"\x1f\x8b"
# The month a raw row belongs to: bronze's and silver's partition column.
MONTH_COLUMN = "partition_month"
LINEAGE_COLUMNS = (MONTH_COLUMN, "source_file", "source_line", "ingested_at")
_OTHER_DELIMITERS = (";", "\t", "|")
_RECORD = "__record"
_SLASH_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")
_ISO_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
_FORMAT_SETTING = "LOAN_DEFAULT_DATE_FORMAT"
# Rows per batch streamed from a file into the warehouse: memory stays flat at any file size.
BATCH_ROWS = 500_000
# Largest field, in characters (64 MiB, as the README states): a larger field is refused by
# name, whichever parser reads the file (polars for well-formed files, the csv module otherwise;
# the csv module's own default, 131,072, would refuse valid files that polars reads).
FIELD_SIZE_LIMIT = 64 << 20
# Compressed bytes fed to the decompressor at a time when a gzip file is verified.
_GZIP_BLOCK = 1 << 16
# How far from its end a file is searched for trailing blank lines.
_TAIL_BYTES = 1 << 16
# The largest limit the csv module accepts on every platform (a C long).
_UNLIMITED = (1 << 31) - 1


class RawInputError(ValueError):
    """A raw file that cannot be ingested; the message says where and how to fix it."""

    def __init__(
        self, file: Path, message: str, line: int | None = None, column: str | None = None
    ) -> None:
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
        """The source's one file; a plain and a gzip file side by side are refused, since
        either could be the newer export."""
        plain = raw_dir / source.file_name
        compressed = plain.with_name(plain.name + ".gz")
        found = [candidate for candidate in (plain, compressed) if candidate.exists()]
        if len(found) > 1:
            raise RawInputError(
                plain,
                f"two files for source {source.name!r}: {plain} and {compressed}; keep only "
                "the one to ingest",
            )
        if found:
            return cls(found[0])
        raise RawInputError(plain, f"file not found (also looked for {plain.name}.gz)")

    @property
    def compressed(self) -> bool:
        return self.path.suffix == ".gz"

    def open_bytes(self) -> IO[bytes]:
        return gzip.open(self.path, "rb") if self.compressed else open(self.path, "rb")

    def decompressed(self) -> bytes:
        """The whole content of a gzip file, or RawInputError naming the first line it cannot
        fully give (the data is cut short, damaged or fails its checksum)."""
        output = bytearray()
        with open(self.path, "rb") as handle:
            data = handle.read()
        if data and not data.startswith(GZIP_MAGIC):
            raise RawInputError(
                self.path,
                "the file is named .gz but does not start as gzip data does; if it is plain "
                "CSV text, drop the .gz",
                line=1,
            )
        try:
            _gunzip(data, output)
        except _DamagedGzip as damage:
            lines = output.count(b"\n")
            if damage.checksum:
                line, where = lines, "it decompresses to this line but fails its checksum"
            else:
                line, where = lines + 1, "lines before this one decompress, this one does not"
            raise RawInputError(
                self.path,
                f"the gzip data is {damage}: {where}; copy or compress the file again",
                line=line,
            ) from None
        return bytes(output)

    def open_text(self) -> IO[str]:
        """Text as the csv module wants it: BOM dropped, line endings left to the reader."""
        return io.TextIOWrapper(self.open_bytes(), encoding="utf-8-sig", newline="")

    def first_line(self) -> str:
        with self.open_bytes() as handle:
            line = handle.readline()
        try:
            return line.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise _encoding_error(self, 1, error) from error

    def first_non_utf8_line(self) -> tuple[int, UnicodeDecodeError] | None:
        """Where the file stops being UTF-8; decoding line by line keeps the number exact."""
        with self.open_bytes() as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as error:
                    return number, error
        return None


class _DamagedGzip(Exception):
    """Why gzip data stops decompressing; the output so far is what it gave."""

    def __init__(self, message: str, checksum: bool = False) -> None:
        super().__init__(message)
        # The data decompressed to its end, but its CRC or length does not match.
        self.checksum = checksum


def _gunzip(data: bytes, output: bytearray) -> None:
    """Decompress every gzip member of `data` into `output`, up to the exact byte where it
    fails: a failing block is fed again byte by byte from a copy of the state before it."""
    rest = data
    while True:
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        start = 0
        while not inflate.eof and start < len(rest):
            block = rest[start : start + _GZIP_BLOCK]
            start += len(block)
            before = inflate.copy()
            try:
                output += inflate.decompress(block)
            except zlib.error as error:
                for byte in range(len(block)):
                    try:
                        output += before.decompress(block[byte : byte + 1])
                    except zlib.error:
                        break
                checksum = "incorrect data check" in str(error) or "length check" in str(error)
                raise _DamagedGzip(f"damaged ({error})", checksum) from None
        if not inflate.eof:
            raise _DamagedGzip("cut short (the compressed stream ends early)")
        rest = inflate.unused_data + rest[start:]
        # gzip pads some files with zero bytes after the last member.
        if not rest.strip(b"\0"):
            return


def _encoding_error(raw: RawFile, line: int, error: UnicodeDecodeError) -> RawInputError:
    byte = error.object[error.start : error.start + 1]
    if line == 1 and error.object.startswith(GZIP_MAGIC):
        # Gzip data read as text: a file without its .gz name, or one compressed twice.
        advice = "it is compressed twice; decompress it once" if raw.compressed else "add .gz"
        return RawInputError(
            raw.path, f"the file holds gzip-compressed data, not CSV text: {advice}", line=line
        )
    return RawInputError(
        raw.path,
        f"the file is not UTF-8 (byte 0x{byte.hex()} at byte {error.start + 1} of the line); "
        "re-export it as UTF-8",
        line=line,
    )


def check_header(raw: RawFile, source: Source) -> list[str]:
    """Refuse files whose header does not match the source schema exactly; return the header."""
    if raw.compressed:
        raw.decompressed()  # damaged gzip data is refused before any line is read
    line = raw.first_line()
    if not line:
        raise RawInputError(
            raw.path,
            f"file is empty; expected a header line: {','.join(source.column_names)}",
            line=1,
        )
    if not line.strip():
        raise RawInputError(
            raw.path,
            f"line is blank; the first line must be the header: {','.join(source.column_names)}",
            line=1,
        )
    if "\x00" in line:
        raise RawInputError(
            raw.path,
            "the header holds NUL bytes: the file is binary or UTF-16 (without a byte-order "
            "mark), not UTF-8 text; re-export it as UTF-8 CSV",
            line=1,
        )
    if "\r" in line.rstrip("\r\n"):
        raise RawInputError(
            raw.path,
            "lines end in a carriage return only (CR, as old Mac OS wrote them); re-export the "
            "file with LF or CRLF line endings",
            line=1,
        )
    try:
        header = next(csv.reader([line.rstrip("\r\n")]))
    except csv.Error as error:
        raise RawInputError(raw.path, f"the header is not valid CSV ({error})", line=1) from None
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
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing:
        raise RawInputError(
            raw.path,
            f"missing column(s) {missing}; the header has {header}",
            line=1,
            column=missing[0],
        )
    if extra:
        raise RawInputError(
            raw.path,
            f"unexpected column(s) {extra}; expected exactly {source.column_names}",
            line=1,
            column=extra[0],
        )
    if repeated:
        raise RawInputError(
            raw.path,
            f"column(s) {repeated} appear more than once in the header",
            line=1,
            column=repeated[0],
        )
    return header


@dataclass(frozen=True)
class _Text:
    """A file's values as text with a 0-based record index, and its line counts.

    Polars numbers records, not lines; the line count tells whether the two can differ. Polars
    reads each trailing blank line as a record of empty values: those are not rows.
    """

    frame: pl.LazyFrame
    physical_lines: int
    trailing_blank_lines: int


def _scan_text(raw: RawFile) -> _Text:
    options = dict(infer_schema=False, empty_string_is_null=False, row_index_name=_RECORD)
    if raw.compressed:
        data = raw.decompressed()
        return _Text(
            pl.read_csv(data, **options).lazy(),
            _count_lines([data]),
            _trailing_blank_lines(data[-_TAIL_BYTES:]),
        )
    with open(raw.path, "rb") as handle:
        handle.seek(max(raw.path.stat().st_size - _TAIL_BYTES, 0))
        tail = handle.read()
    return _Text(
        pl.scan_csv(raw.path, **options),
        _count_file_lines(raw.path),
        _trailing_blank_lines(tail),
    )


def _trailing_blank_lines(tail: bytes) -> int:
    """Empty lines after the last line that holds anything: its own line break is not one."""
    ending = tail[len(tail.rstrip(b"\r\n")) :]
    return max(ending.count(b"\n") - 1, 0)


def _count_lines(blocks: Iterable[bytes | bytearray]) -> int:
    count, last = 0, b"\n"
    for block in blocks:
        count += block.count(b"\n")
        last = block[-1:]
    return count + (last != b"\n")


def _count_file_lines(path: Path) -> int:
    """`_count_lines` of a file, read into one reused buffer: fresh blocks cost page faults."""
    buffer = bytearray(8 << 20)

    def blocks() -> Iterator[bytes | bytearray]:
        with open(path, "rb") as handle:
            while size := handle.readinto(buffer):
                yield buffer if size == len(buffer) else buffer[:size]

    return _count_lines(blocks())


@contextmanager
def _field_size_limit(limit: int) -> Iterator[None]:
    """The csv module's field limit (process-wide state) set for the duration, then restored."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


@dataclass(frozen=True)
class _Record:
    """A data record as Python's csv module reads it, with the text it was read from."""

    line: int  # its first physical line
    fields: list[str]
    text: str


def _records(raw: RawFile, limit: int | None = None) -> Iterator[_Record]:
    """Each data record, as Python's csv module reads it; blank lines at the end are none.

    Fields up to `limit` characters (default `FIELD_SIZE_LIMIT`) are read. A blank line is
    held back until a record follows it, so only one before a record is seen.
    """
    limit = FIELD_SIZE_LIMIT if limit is None else limit
    bad_encoding = raw.first_non_utf8_line()
    if bad_encoding is not None:
        raise _encoding_error(raw, *bad_encoding)
    read: list[str] = []

    def lines(handle: IO[str]) -> Iterator[str]:
        for line in handle:
            read.append(line)
            yield line

    with raw.open_text() as handle, _field_size_limit(limit):
        reader = csv.reader(lines(handle), strict=True)
        header = next(reader, None)
        read.clear()
        start = reader.line_num + 1
        blanks: list[_Record] = []
        try:
            for row in reader:
                record = _Record(start, row, "".join(read))
                read.clear()
                start = reader.line_num + 1
                if not row:
                    blanks.append(record)
                    continue
                yield from blanks
                blanks.clear()
                yield record
        except csv.Error as error:
            if str(error).startswith("field larger than field limit"):
                raise _oversized_field(raw, header or [], start, limit) from error
            raise RawInputError(
                raw.path,
                f"malformed CSV in the record starting on this line ({error}); check for an "
                "unbalanced '\"' quote",
                line=start,
            ) from error


def _oversized_field(raw: RawFile, header: list[str], line: int, limit: int) -> RawInputError:
    """The refusal of a record with a field beyond the reader's limit, naming its column.

    The csv module stops inside the record; reading it again without a limit finds the field.
    """
    column = None
    for record in _records(raw, limit=_UNLIMITED):
        if record.line == line:
            sizes = [len(value) for value in record.fields]
            over = next((i for i, size in enumerate(sizes) if size > limit), None)
            if over is not None and over < len(header):
                column = header[over]
            break
    return RawInputError(
        raw.path,
        f"a field of the record starting on this line is larger than the reader's limit of "
        f"{limit:,} characters; the file may be valid CSV, but a value this large is refused",
        line=line,
        column=column,
    )


def _find_malformed_row(raw: RawFile, header: list[str]) -> RawInputError | None:
    """The first record whose field count differs from the header's, as an error to raise."""
    width = len(header)
    for record in _records(raw):
        line, row = record.line, record.fields
        if len(row) == width:
            continue
        if not row:
            return RawInputError(
                raw.path, "line is blank; remove blank lines between rows", line=line
            )
        mixed = _other_delimiter(row, width)
        if mixed is not None:
            return RawInputError(
                raw.path,
                f"mixed delimiters: the header is separated by ',' but this row by {mixed!r}; "
                "re-export the file with one delimiter (comma-separated CSV)",
                line=line,
            )
        if len(row) < width:
            missing = header[len(row) :]
            return RawInputError(
                raw.path,
                f"row is truncated: it has {len(row)} of {width} fields; {missing} are missing",
                line=line,
                column=missing[0],
            )
        return RawInputError(
            raw.path,
            f"row has {len(row)} fields, expected {width}; a value probably contains an "
            "unquoted ','",
            line=line,
        )
    return None


def _other_delimiter(row: list[str], width: int) -> str | None:
    """The delimiter other than ',' that splits a one-field row into the header's width."""
    if len(row) != 1 or width == 1:
        return None
    for delimiter in _OTHER_DELIMITERS:
        if len(next(csv.reader([row[0]], delimiter=delimiter))) == width:
            return delimiter
    return None


def _find_stray_quote(raw: RawFile, header: list[str]) -> RawInputError | None:
    """The first value holding a '"' that was not quoted, as an error to raise.

    The csv module keeps such a quote as text; polars opens a quoted value there and reads
    on past the line's end. A quoted value appears in its record's text doubled and enclosed.
    """
    for record in _records(raw):
        for position, value in enumerate(record.fields):
            quoted = '"' + value.replace('"', '""') + '"'
            if '"' in value and quoted not in record.text:
                return RawInputError(
                    raw.path,
                    "a '\"' inside a value that is not quoted; quote the whole value and double "
                    "the '\"' inside it, or remove it",
                    line=record.line,
                    column=header[position] if position < len(header) else None,
                )
    return None


def _parse_failure(raw: RawFile, header: list[str], error: Exception) -> RawInputError:
    """Polars' parse error, restated with the line the csv module finds at fault."""
    return (
        _find_malformed_row(raw, header)
        or _find_stray_quote(raw, header)
        or RawInputError(raw.path, f"cannot parse the file as CSV: {error}")
    )


def _collect(raw: RawFile, header: list[str], frame: pl.LazyFrame) -> pl.DataFrame:
    try:
        return frame.collect()
    except pl.exceptions.ComputeError as error:
        raise _parse_failure(raw, header, error) from error


def _record_lines(raw: RawFile, header: list[str], records: int) -> pl.Series:
    """First physical line of every record, for files where a quoted value spans lines."""
    lines = [record.line for record in _records(raw)]
    if len(lines) != records:
        stray = _find_stray_quote(raw, header)
        if stray is not None:
            raise stray
        raise RawInputError(
            raw.path,
            f"the csv module reads {len(lines)} records but polars reads {records}; check the "
            "file's quoting",
        )
    return pl.Series(lines, dtype=pl.Int64)


def parse_date(text: pl.Expr, date_format: str) -> pl.Expr:
    """A text date in `date_format`, null when unreadable.

    `%Y` reads a year of any number of digits, so a two-digit year ('23-06-01') would be the
    year 23: a year before `EARLIEST_YEAR` is such a misreading and counts as unreadable.
    """
    date = text.str.strptime(pl.Date, date_format, strict=False)
    return pl.when(date.dt.year() >= EARLIEST_YEAR).then(date)


def raw_month(column: str, date_format: str) -> pl.Expr:
    """The month a raw text date belongs to: the first of its month, null when unreadable.

    The one rule for every reader of raw dates (bronze's partition, the new-month sensor's
    counts, the API's requests): surrounding whitespace is stripped as cleaning strips it, and
    any day of a month belongs to that month.
    """
    return parse_date(pl.col(column).str.strip_chars(), date_format).dt.month_start()


def guess_date_format(values: Iterable[str | None]) -> str | None:
    """ISO, D/M/YYYY or M/D/YYYY as the values show it; None when they do not say.

    Any part above 12 cannot be a month. Partition dates are month starts, which a spreadsheet
    re-save writes as 1/5/2023: a part that is always 1 while the other varies is the day.
    """
    values = [v for v in values if v]
    if values and all(_ISO_DATE.match(v) for v in values):
        return ISO_DATE_FORMAT
    parts = [m.groups() for m in map(_SLASH_DATE.match, values) if m]
    if not parts or len(parts) != len(values):
        return None
    first = {int(p[0]) for p in parts}
    second = {int(p[1]) for p in parts}
    if max(first) > 12 or (first == {1} and second != {1}):
        return DAY_MONTH_FORMAT
    if max(second) > 12 or (second == {1} and first != {1}):
        return MONTH_DAY_FORMAT
    return None


def _format_advice(guess: str | None, values: list[str], date_format: str) -> str:
    """How to fix the date format setting, from what the file's dates look like."""
    if guess == date_format:
        return ""
    if guess == ISO_DATE_FORMAT:
        return f" The dates are ISO (YYYY-MM-DD): unset {_FORMAT_SETTING} or set it to '%Y-%m-%d'."
    names = {DAY_MONTH_FORMAT: "D/M/YYYY", MONTH_DAY_FORMAT: "M/D/YYYY"}
    if guess in names:
        return (
            f" The dates are {names[guess]}, as a spreadsheet re-save writes them. Re-export with "
            f"ISO dates (YYYY-MM-DD), or set {_FORMAT_SETTING}={guess!r}."
        )
    if date_format == ISO_DATE_FORMAT and any(_SLASH_DATE.match(v) for v in values):
        return (
            " This looks like a spreadsheet re-save (D/M/YYYY or M/D/YYYY). Re-export with ISO "
            f"dates (YYYY-MM-DD), or set {_FORMAT_SETTING} to the format the file uses "
            f"({DAY_MONTH_FORMAT!r} or {MONTH_DAY_FORMAT!r})."
        )
    return ""


def _date_values(frame: pl.LazyFrame, column: str) -> list[str]:
    return frame.select(pl.col(column).unique()).collect().to_series().drop_nulls().to_list()


def read_bronze(
    raw: RawFile,
    source: Source,
    months: tuple[date, date] | None,
    ingested_at: datetime,
    date_format: str = ISO_DATE_FORMAT,
) -> pl.DataFrame:
    """Rows of `source` whose date falls in [months[0], months[1]), all values as raw text."""
    try:
        return pl.concat(_single_pass(raw, source, months, ingested_at, date_format))
    except _NeedsSecondPass:
        header = check_header(raw, source)
        return _collect(raw, header, scan_bronze(raw, source, months, ingested_at, date_format))


def write_bronze(
    store: TableStore,
    table: str,
    raw: RawFile,
    source: Source,
    months: tuple[date, date],
    ingested_at: datetime,
    date_format: str = ISO_DATE_FORMAT,
) -> int:
    """Replaces `months` of the source's bronze files with the file's rows; returns rows written.

    A well-formed file is parsed once and streamed to the store in batches, validated as it
    goes; anything unusual is dropped unwritten and goes through `scan_bronze`, which
    validates first and says what is wrong. Either way bronze changes only if the whole file
    is good.
    """
    try:
        batches = _single_pass(raw, source, months, ingested_at, date_format)
        return store.replace(table, batches, MONTH_COLUMN, *months)
    except _NeedsSecondPass:
        rows = scan_bronze(raw, source, months, ingested_at, date_format)
        # The empty frame first fixes the schema even when no month has rows.
        batches = chain([rows.clear().collect()], rows.collect_batches(chunk_size=BATCH_ROWS))
        return store.replace(table, batches, MONTH_COLUMN, *months)


class _NeedsSecondPass(Exception):
    """The file is not plainly well-formed: validate it first, then read it (`scan_bronze`)."""


def _single_pass(
    raw: RawFile,
    source: Source,
    months: tuple[date, date] | None,
    ingested_at: datetime,
    date_format: str,
) -> Iterator[pl.DataFrame]:
    """Bronze batches from one parse of a well-formed file, the empty (typed) frame first.

    Well-formed means: ISO dates that all parse, no field that could be a truncated row, no
    field over `FIELD_SIZE_LIMIT`, no trailing blank line, and one record per physical line
    (so `source_line` is the record number + 2). The checks run
    on each batch as it streams; the first one that fails raises `_NeedsSecondPass`, after some
    batches may have been yielded: consume this inside a transaction.
    """
    if date_format != ISO_DATE_FORMAT or raw.compressed:
        raise _NeedsSecondPass
    header = check_header(raw, source)
    text = _scan_text(raw)
    if text.trailing_blank_lines:
        raise _NeedsSecondPass
    frame = text.frame.with_columns(partition_month=raw_month(source.date_column, date_format))

    def bronze_rows(batch: pl.DataFrame) -> pl.DataFrame:
        if months is not None:
            batch = batch.filter(pl.col("partition_month").is_between(*months, closed="left"))
        return batch.select(
            *source.column_names,
            "partition_month",
            source_file=pl.lit(str(raw.path)),
            source_line=(pl.col(_RECORD) + 2).cast(pl.Int64),
            ingested_at=pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")),
        )

    yield bronze_rows(frame.clear().collect())
    records = 0
    try:
        for batch in frame.collect_batches(chunk_size=BATCH_ROWS):
            suspect = batch.select(
                unreadable=pl.col("partition_month").is_null().any(),
                # A truncated row leaves its last fields empty or missing.
                maybe_short=(pl.col(header[-1]) == "").any(),
                incomplete=pl.any_horizontal(pl.col(header).is_null()).any(),
                oversized=_longest_field(header) > FIELD_SIZE_LIMIT,
            ).row(0)
            if any(suspect):
                raise _NeedsSecondPass
            records += batch.height
            yield bronze_rows(batch)
    except pl.exceptions.ComputeError as error:
        raise _NeedsSecondPass from error
    if text.physical_lines != records + 1:
        raise _NeedsSecondPass


def _longest_field(header: list[str]) -> pl.Expr:
    """The largest field's size in bytes: at least its size in characters."""
    return pl.max_horizontal(pl.col(header).str.len_bytes().max()).fill_null(0)


def scan_bronze(
    raw: RawFile,
    source: Source,
    months: tuple[date, date] | None,
    ingested_at: datetime,
    date_format: str = ISO_DATE_FORMAT,
) -> pl.LazyFrame:
    """The validated file as a lazy frame of bronze rows, for streaming large files.

    Validation reads the whole file once; any problem raises RawInputError before a row is
    returned. `partition_month` is the month of the source's date column; it is what Dagster
    partitions on. `source_line` is the physical line a record starts on, so an operator can
    open the file there.
    """
    header = check_header(raw, source)
    date_column = source.date_column
    try:
        text = _scan_text(raw)
    except pl.exceptions.ComputeError as error:
        raise _parse_failure(raw, header, error) from error
    frame = text.frame
    if text.trailing_blank_lines:
        records = _collect(raw, header, frame.select(pl.len())).item()
        frame = frame.filter(pl.col(_RECORD) < records - text.trailing_blank_lines)
    frame = frame.with_columns(partition_month=raw_month(date_column, date_format))
    stats = _collect(
        raw,
        header,
        frame.select(
            records=pl.len(),
            unreadable=pl.col(_RECORD).filter(pl.col("partition_month").is_null()).first(),
            # A truncated row leaves its last fields empty: polars cannot tell them from "".
            maybe_short=(pl.col(header[-1]) == "").any(),
            # Polars notices a row with too many fields only when every column is read.
            complete=pl.all_horizontal(pl.col(header).is_not_null()).all(),
            longest=_longest_field(header),
        ),
    ).row(0, named=True)
    if stats["longest"] > FIELD_SIZE_LIMIT:
        # The csv module counts characters and refuses the first field over the limit.
        for _ in _records(raw):
            pass
    if stats["unreadable"] is not None or stats["maybe_short"]:
        malformed = _find_malformed_row(raw, header)
        if malformed is not None:
            raise malformed
    if text.physical_lines - text.trailing_blank_lines == stats["records"] + 1:
        line = pl.col(_RECORD) + 2
    else:
        line = pl.lit(_record_lines(raw, header, stats["records"])).gather(pl.col(_RECORD))
    frame = frame.with_columns(source_line=line.cast(pl.Int64))
    if stats["unreadable"] is not None:
        row = frame.filter(pl.col(_RECORD) == stats["unreadable"]).collect().row(0, named=True)
        value = row[date_column]
        problem = (
            f"the date is empty; every row needs a {date_column}."
            if not (value or "").strip()
            else f"cannot read date {value!r} with format {date_format!r}."
        )
        values = _date_values(frame, date_column)
        raise RawInputError(
            raw.path,
            problem + _format_advice(guess_date_format(values), values, date_format),
            line=row["source_line"],
            column=date_column,
        )
    if date_format != ISO_DATE_FORMAT:
        # Every date parsed, but 1/5/2023 also parses as M/D: refuse a format the data contradicts.
        values = _date_values(frame, date_column)
        guess = guess_date_format(values)
        if guess is not None and guess != date_format:
            raise RawInputError(
                raw.path,
                f"the dates do not match format {date_format!r}."
                + _format_advice(guess, values, date_format),
                column=date_column,
            )
    if months is not None:
        frame = frame.filter(pl.col("partition_month").is_between(*months, closed="left"))
    return frame.select(
        *source.column_names,
        "partition_month",
        source_file=pl.lit(str(raw.path)),
        source_line="source_line",
        ingested_at=pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")),
    )

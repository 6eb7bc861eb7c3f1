"""Silver cleaning: bronze text to typed columns, with a quarantine for rows that cannot be valid.

Rules (see the domain notes): underscores around numbers are stripped, placeholder values mean
unknown (null), values outside a column's valid range become null, personal data is dropped.
A row is quarantined, with every reason that applies, when a required value is missing, a value
cannot be read as its type, or its key repeats an earlier row. Every bronze row ends up in
exactly one of the two outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from loan_default.lib.raw_reader import ISO_DATE_FORMAT
from loan_default.lib.sources import Column, Kind, Source

REASON_SEPARATOR = "; "
CREDIT_HISTORY_PATTERN = r"^(\d+) Years? and (\d+) Months?$"
LINEAGE = ("partition_month", "source_file", "source_line")
_INT64_LIMIT = 2.0**63


@dataclass(frozen=True)
class CleanResult:
    silver: pl.DataFrame
    quarantine: pl.DataFrame
    # Values set to null because they were placeholders or out of range, per column.
    nulled_values: dict[str, int]


def _text(column: Column) -> pl.Expr:
    return pl.col(column.name).str.strip_chars()


def _is_blank(column: Column, text: pl.Expr) -> pl.Expr:
    blank = text.is_null() | (text == "")
    return blank | text.is_in(list(column.placeholders)) if column.placeholders else blank


def _typed(
    column: Column, text: pl.Expr, date_format: str, number: pl.Expr | None = None
) -> pl.Expr:
    """The typed value of the stripped `text`, null where it is blank or unreadable.

    Written as one conditional per column: this runs on every raw value, so it is the hot path.
    `number` is the column already parsed, when every value parsed as it stands.
    """
    placeholder = text.is_in(list(column.placeholders)) if column.placeholders else None
    match column.kind:
        case Kind.DATE:
            value = text.str.to_date(date_format, strict=False)
        case Kind.INT | Kind.FLOAT:
            if number is None:
                number = text.str.strip_chars("_").cast(pl.Float64, strict=False)
            valid = number.is_finite()
            if column.kind is Kind.INT:
                # Stays Float64 until the range rule has run: a huge sentinel such as
                # __-333333333333333333333333333__ is out of range, not a failed Int64 cast.
                valid = valid & (number == number.round(0))
            if placeholder is not None:
                valid = valid & ~placeholder
            return pl.when(valid).then(number)
        case Kind.DURATION:
            value = parse_credit_history_months(text)
        case _:
            value = pl.when(text != "").then(text)
    return value if placeholder is None else pl.when(~placeholder).then(value)


def _in_range(column: Column, value: pl.Expr) -> pl.Expr:
    condition = pl.lit(True)
    if column.valid_min is not None:
        condition = condition & (value >= column.valid_min)
    if column.valid_max is not None:
        condition = condition & (value <= column.valid_max)
    return condition


def _tmp(role: str, column: Column) -> str:
    return f"__{role}_{column.name}"


def _plain_numbers(bronze: pl.DataFrame, columns: list[Column]) -> dict[str, pl.Series]:
    """The numeric columns whose every value parses as it stands, already parsed.

    Such a column needs no stripping: the parser accepts neither blanks nor underscores, so a
    value that parses is its own stripped text. Clean numeric columns (the usual case) skip
    two string passes this way; any column with a value that does not parse keeps the full rules.
    """
    if not columns or bronze.is_empty():
        return {}
    parsed = bronze.select(
        pl.col(c.name).cast(pl.Float64, strict=False).alias(_tmp("number", c)) for c in columns
    )
    return {
        c.name: parsed[_tmp("number", c)]
        for c in columns
        if parsed[_tmp("number", c)].null_count() == bronze[c.name].null_count()
    }


def clean(bronze: pl.DataFrame, source: Source, date_format: str = ISO_DATE_FORMAT) -> CleanResult:
    """Silver rows, quarantined rows and null counts, for a frame of one row or of millions.

    Every rule is a boolean flag computed once per row in one lazy query (so polars evaluates
    each parsed value once); the reason text is built only for the rows that fail.
    """
    kept = [c for c in source.columns if c.kind is not Kind.PERSONAL]
    plain = _plain_numbers(bronze, [c for c in kept if c.kind in (Kind.INT, Kind.FLOAT)])
    rows = bronze.hstack(list(plain.values())).lazy()
    if not bronze["source_line"].is_sorted():
        rows = rows.sort("source_line")
    # A plain number column is its own stripped text: blanks and underscores never parse.
    text = {c.name: pl.col(c.name) if c.name in plain else pl.col(_tmp("text", c)) for c in kept}
    number = {name: pl.col(series.name) for name, series in plain.items()}
    typed = rows.with_columns(
        _text(c).alias(_tmp("text", c)) for c in kept if c.name not in plain
    ).with_columns(
        *(
            _typed(c, text[c.name], date_format, number.get(c.name)).alias(_tmp("typed", c))
            for c in kept
        ),
        *(_is_blank(c, text[c.name]).alias(_tmp("blank", c)) for c in kept),
    )

    flags: list[tuple[pl.Expr, str]] = []
    nulled: dict[str, pl.Expr] = {}
    final: list[pl.Expr] = []
    for column in kept:
        value = pl.col(_tmp("typed", column))
        blank = pl.col(_tmp("blank", column))
        flags.append((value.is_null() & ~blank, f"unreadable_{column.kind.value}:{column.name}"))
        if column.required:
            flags.append((blank, f"missing_value:{column.name}"))
        if column.valid_min is not None or column.valid_max is not None:
            outside = value.is_not_null() & ~_in_range(column, value)
            if column.required:
                flags.append((outside, f"out_of_range:{column.name}"))
            else:
                value = pl.when(outside).then(None).otherwise(value)
                nulled[column.name] = outside
        if column.kind is Kind.INT:
            # Beyond Int64 but within the valid range (a column without bounds): unreadable.
            too_big = value.is_not_null() & (value.abs() >= _INT64_LIMIT)
            flags.append((too_big & _in_range(column, value), f"unreadable_int:{column.name}"))
            value = pl.when(~too_big).then(value).cast(pl.Int64)
        if column.placeholders:
            nulled[f"{column.name} (placeholder)"] = text[column.name].is_in(
                list(column.placeholders)
            )
        final.append(value.alias(f"__final_{column.silver_name}"))

    # Rows are in file order (sorted above), so the first of a repeated key is the one kept.
    key = pl.struct(_tmp("typed", source.column(k)) for k in source.key)
    flags.append((~key.is_first_distinct(), "duplicate_key"))
    flag_names = [f"__flag_{i}" for i in range(len(flags))]
    judged = (
        typed.select(
            *final,
            *LINEAGE,
            *(pl.col(c.name) for c in kept),
            *(
                condition.fill_null(False).alias(n)
                for (condition, _), n in zip(flags, flag_names, strict=True)
            ),
            *(
                condition.fill_null(False).alias(f"__nulled_{i}")
                for i, condition in enumerate(nulled.values())
            ),
        )
        .with_columns(__bad=pl.any_horizontal(flag_names))
        .collect()
    )
    bad = pl.col("__bad")
    good = judged.filter(~bad) if judged["__bad"].any() else judged
    silver = good.select(
        *(pl.col(f"__final_{c.silver_name}").alias(c.silver_name) for c in kept), *LINEAGE
    )
    reason = pl.concat_str(
        [
            pl.when(pl.col(n)).then(pl.lit(label))
            for (_, label), n in zip(flags, flag_names, strict=True)
        ],
        separator=REASON_SEPARATOR,
        ignore_nulls=True,
    )
    quarantine = judged.filter(bad).select(
        *LINEAGE, *(pl.col(c.name) for c in kept), reason.alias("reason")
    )
    counts = (
        good.select(pl.col(f"__nulled_{i}").sum().alias(name) for i, name in enumerate(nulled)).row(
            0, named=True
        )
        if nulled
        else {}
    )
    return CleanResult(silver, quarantine, {k: int(v or 0) for k, v in counts.items() if v})


def parse_credit_history_months(text: pl.Expr) -> pl.Expr:
    """'10 Years and 9 Months' -> 129."""
    years = text.str.extract(CREDIT_HISTORY_PATTERN, 1).cast(pl.Int64)
    months = text.str.extract(CREDIT_HISTORY_PATTERN, 2).cast(pl.Int64)
    return years * 12 + months

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


def _is_blank(column: Column) -> pl.Expr:
    text = _text(column)
    blank = text.is_null() | (text == "")
    return blank | text.is_in(list(column.placeholders)) if column.placeholders else blank


def _typed(column: Column, date_format: str) -> pl.Expr:
    """The typed value, null where the raw text is blank or unreadable.

    Written as one conditional per column: this runs on every raw value, so it is the hot path.
    """
    text = _text(column)
    placeholder = text.is_in(list(column.placeholders)) if column.placeholders else None
    match column.kind:
        case Kind.DATE:
            value = text.str.to_date(date_format, strict=False)
        case Kind.INT | Kind.FLOAT:
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


def clean(bronze: pl.DataFrame, source: Source, date_format: str = ISO_DATE_FORMAT) -> CleanResult:
    kept = [c for c in source.columns if c.kind is not Kind.PERSONAL]
    typed = bronze.sort("source_line").with_columns(
        *(_typed(c, date_format).alias(f"__typed_{c.name}") for c in kept),
        *(_is_blank(c).alias(f"__blank_{c.name}") for c in kept),
    )

    reasons: list[pl.Expr] = []
    nulled: list[pl.Expr] = []
    final: list[pl.Expr] = []
    for column in kept:
        value = pl.col(f"__typed_{column.name}")
        blank = pl.col(f"__blank_{column.name}")
        unreadable = value.is_null() & ~blank
        reasons.append(
            pl.when(unreadable).then(pl.lit(f"unreadable_{column.kind.value}:{column.name}"))
        )
        if column.required:
            reasons.append(pl.when(blank).then(pl.lit(f"missing_value:{column.name}")))
        if column.valid_min is not None or column.valid_max is not None:
            outside = value.is_not_null() & ~_in_range(column, value)
            if column.required:
                reasons.append(pl.when(outside).then(pl.lit(f"out_of_range:{column.name}")))
            else:
                value = pl.when(outside).then(None).otherwise(value)
                nulled.append(outside.sum().alias(column.name))
        if column.kind is Kind.INT:
            # Beyond Int64 but within the valid range (a column without bounds): unreadable.
            too_big = value.is_not_null() & (value.abs() >= _INT64_LIMIT)
            too_big_in_range = too_big & _in_range(column, value)
            reasons.append(pl.when(too_big_in_range).then(pl.lit(f"unreadable_int:{column.name}")))
            value = pl.when(~too_big).then(value).cast(pl.Int64)
        if column.placeholders:
            placeholder = _text(column).is_in(list(column.placeholders))
            nulled.append(placeholder.sum().alias(f"{column.name} (placeholder)"))
        final.append(value.alias(column.silver_name))

    # Rows are in file order (sorted below), so the first of a repeated key is the one kept.
    duplicate = ~pl.struct(f"__typed_{k}" for k in source.key).is_first_distinct()
    reasons.append(pl.when(duplicate).then(pl.lit("duplicate_key")))

    judged = typed.with_columns(
        __reason=pl.concat_str(reasons, separator=REASON_SEPARATOR, ignore_nulls=True)
    )
    bad = pl.col("__reason") != ""
    silver = judged.filter(~bad).select(*final, *LINEAGE)
    quarantine = judged.filter(bad).select(
        *LINEAGE, *[pl.col(c.name) for c in kept], pl.col("__reason").alias("reason")
    )
    counts = judged.filter(~bad).select(nulled).row(0, named=True) if nulled else {}
    return CleanResult(silver, quarantine, {k: int(v or 0) for k, v in counts.items() if v})


def parse_credit_history_months(text: pl.Expr) -> pl.Expr:
    """'10 Years and 9 Months' -> 129."""
    years = text.str.extract(CREDIT_HISTORY_PATTERN, 1).cast(pl.Int64)
    months = text.str.extract(CREDIT_HISTORY_PATTERN, 2).cast(pl.Int64)
    return years * 12 + months

"""Silver cleaning: bronze text to typed columns, with a quarantine for rows that cannot be valid.

Each column's rules are declared once, on its `sources.Column` (how it parses, its placeholders,
its valid range, whether it is required); `_column_rules` turns one declaration into polars
expressions, one rule each, applied in this order:

1. surrounding whitespace is stripped;
2. a placeholder means unknown: null, counted as `<column> (placeholder)`;
3. the text parses as the column's kind (numbers without the underscores around them, whole
   numbers for integers, dates in the run's format, "N Years and M Months" as months); text
   that does not is quarantined as `unreadable_<kind>:<column>`;
4. a required column without a value is quarantined as `missing_value:<column>`;
5. a value outside the valid range is quarantined as `out_of_range:<column>` when the column is
   required, otherwise null, counted as `<column>`;
6. an integer beyond Int64 that no range excludes is quarantined as `unreadable_int:<column>`.

Then the rules of a row: a value holding a control character (`sources.CONTROL_CHARACTERS`) is
quarantined as `control_character:<column>`, and a key repeating an earlier row's as
`duplicate_key`. Personal columns are dropped. Every bronze row ends in exactly one of silver
or quarantine, a quarantined row with every reason that applies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from loan_default.lib.ingest.raw_reader import ISO_DATE_FORMAT
from loan_default.lib.ingest.sources import CONTROL_CHARACTERS, Column, Kind, Source

REASON_SEPARATOR = "; "
CREDIT_HISTORY_PATTERN = r"^(\d+) Years? and (\d+) Months?$"
LINEAGE = ("partition_month", "source_file", "source_line")
# Numbers parse as Float64 first; an integer column's value must stay below this to be an Int64.
INT64_LIMIT = 2.0**63
# How a query is run: the pipeline's default, or the scoring API's choice for its one-row frames.
Collect = Callable[[pl.LazyFrame], pl.DataFrame]


@dataclass(frozen=True)
class CleanResult:
    silver: pl.DataFrame
    quarantine: pl.DataFrame
    # Per silver row (`source_line`), whether a rule nulled a value: one column per nulling
    # rule, named `<column>` (out of range) or `<column> (placeholder)`.
    nulled: pl.DataFrame

    @property
    def nulled_values(self) -> dict[str, int]:
        """Values set to null because they were placeholders or out of range, per column."""
        counts = self.nulled.drop("source_line").sum()
        if counts.is_empty():  # a source without nulling rules
            return {}
        return {name: int(count) for name, count in counts.row(0, named=True).items() if count}


def parse_credit_history_months(text: pl.Expr) -> pl.Expr:
    """'10 Years and 9 Months' -> 129."""
    years = text.str.extract(CREDIT_HISTORY_PATTERN, 1).cast(pl.Int64)
    months = text.str.extract(CREDIT_HISTORY_PATTERN, 2).cast(pl.Int64)
    return years * 12 + months


def _step(name: str, column: Column) -> str:
    """The temporary column holding one rule's result for `column`.

    Each rule reads the results before it by name, so every rule runs once per value however
    many later rules use it.
    """
    return f"__{name}:{column.name}"


@dataclass(frozen=True)
class _ColumnRules:
    """One column's rules as expressions, in the order they run (see the module docstring)."""

    # Each step's expressions read the temporary columns of the steps before.
    steps: tuple[tuple[pl.Expr, ...], ...]
    value: pl.Expr
    reasons: tuple[tuple[pl.Expr, str], ...]
    nulled: tuple[tuple[pl.Expr, str], ...]


def _column_rules(column: Column, date_format: str) -> _ColumnRules:
    raw = pl.col(column.name)
    text, number, placeholder, typed, blank, outside = (
        pl.col(_step(name, column))
        for name in ("text", "number", "placeholder", "typed", "blank", "outside")
    )

    # 1. Whitespace around a value is not part of it.
    stripped = raw.str.strip_chars().alias(_step("text", column))

    # 2. Placeholders mean unknown.
    parsing: list[pl.Expr] = []
    if column.placeholders:
        is_placeholder = text.is_in(list(column.placeholders)).fill_null(False)
        parsing.append(is_placeholder.alias(_step("placeholder", column)))

    # 3. Parse by kind. Integers stay Float64 until the range rule has run: a huge sentinel
    # such as __-333333333333333333333333333__ is out of range, not a failed Int64 cast.
    match column.kind:
        case Kind.INT | Kind.FLOAT:
            parsing.append(
                text.str.strip_chars("_")
                .cast(pl.Float64, strict=False)
                .alias(_step("number", column))
            )
            # Finite, and whole for an integer: NaN and infinities leave a NaN remainder.
            readable = number % 1 == 0 if column.kind is Kind.INT else number.is_finite()
            parsed = pl.when(readable).then(number)
        case Kind.DATE:
            parsed = text.str.to_date(date_format, strict=False)
        case Kind.DURATION:
            parsed = parse_credit_history_months(text)
        case _:
            parsed = pl.when(text != "").then(text)
    blank_text = text.fill_null("") == ""
    if column.placeholders:
        parsed, blank_text = pl.when(~placeholder).then(parsed), blank_text | placeholder
    typing = (parsed.alias(_step("typed", column)), blank_text.alias(_step("blank", column)))
    reasons = [(typed.is_null() & ~blank, f"unreadable_{column.kind.value}:{column.name}")]
    nulled = [(placeholder, f"{column.name} (placeholder)")] if column.placeholders else []

    # 4. Required values.
    if column.required:
        reasons.append((blank, f"missing_value:{column.name}"))

    # 5. The valid range.
    ranging: tuple[pl.Expr, ...] = ()
    value = typed
    low, high = column.valid_min, column.valid_max
    if column.has_range:
        if low is not None and high is not None:
            inside = typed.is_between(float(low), float(high))
        else:
            inside = typed >= float(low) if low is not None else typed <= float(high)
        # A missing value is not outside.
        ranging = ((~inside.fill_null(True)).alias(_step("outside", column)),)
        if column.required:
            reasons.append((outside, f"out_of_range:{column.name}"))
        else:
            nulled.append((outside, column.name))
        value = pl.when(~outside).then(typed)

    # 6. Integers must fit an Int64, where the valid range does not already see to that.
    if column.kind is Kind.INT:
        range_fits = (
            low is not None and high is not None and -INT64_LIMIT < low <= high < INT64_LIMIT
        )
        if not range_fits:
            too_big = value.abs() >= INT64_LIMIT
            reasons.append((too_big, f"unreadable_int:{column.name}"))
            value = pl.when(~too_big).then(value)
        value = value.cast(pl.Int64)

    return _ColumnRules(
        steps=((stripped,), tuple(parsing), typing, ranging),
        value=value,
        reasons=tuple(reasons),
        nulled=tuple(nulled),
    )


@dataclass(frozen=True)
class _Plan:
    """Every expression of clean() for one source and date format."""

    # The successive projections that judge each row: typed values, reasons and nulling flags.
    steps: tuple[tuple[pl.Expr, ...], ...]
    judged: tuple[pl.Expr, ...]
    bad: pl.Expr
    silver: tuple[pl.Expr, ...]
    # The quarantine's columns: lineage and raw values as in bronze, then the reason.
    quarantine_kept: tuple[str, ...]
    quarantine: tuple[pl.Expr, ...]
    nulled: tuple[pl.Expr, ...]


_BAD = "__bad"


def _row_rules(source: Source, kept: list[Column]) -> list[tuple[pl.Expr, str]]:
    """The rules of a whole row, judged after those of its values."""
    # Judged on the stripped text: surrounding whitespace (a trailing line break) is no reason.
    control = [
        (pl.col(_step("text", c)).str.contains(CONTROL_CHARACTERS), f"control_character:{c.name}")
        for c in kept
    ]
    # Rows are in file order (sorted before), so the first of a repeated key is the one kept.
    key = pl.struct(pl.col(_step("typed", source.column(k))) for k in source.key)
    return [*control, (~key.is_first_distinct(), "duplicate_key")]


# One plan per source and date format: building its hundreds of expressions costs as much as
# running them on a request's one-row frame.
@functools.cache
def _plan(source: Source, date_format: str) -> _Plan:
    kept = [c for c in source.columns if c.kind is not Kind.PERSONAL]
    rules = [_column_rules(c, date_format) for c in kept]
    reasons = [reason for r in rules for reason in r.reasons] + _row_rules(source, kept)
    nulled = [flag for r in rules for flag in r.nulled]
    # Each value and flag is judged into a column of its own, named by position.
    values = [f"__value:{c.silver_name}" for c in kept]
    reason_flags = [f"__reason_{i}" for i in range(len(reasons))]
    nulled_flags = [f"__nulled_{i}" for i in range(len(nulled))]
    bronze_columns = (*LINEAGE, *(c.name for c in kept))
    return _Plan(
        steps=tuple(
            tuple(expr for column_step in step for expr in column_step)
            for step in zip(*(r.steps for r in rules), strict=True)
        ),
        judged=(
            *(r.value.alias(name) for r, name in zip(rules, values, strict=True)),
            *bronze_columns,
            *(flag.alias(name) for (flag, _), name in zip(reasons, reason_flags, strict=True)),
            *(flag.alias(name) for (flag, _), name in zip(nulled, nulled_flags, strict=True)),
        ),
        # A flag of a missing value may be null, which counts as false here (a sum skips it)
        # and in the reason. A sum rather than any_horizontal, whose cost grows with the square
        # of its inputs.
        bad=(pl.sum_horizontal(reason_flags) > 0).alias(_BAD),
        silver=(
            *(pl.col(name).alias(c.silver_name) for c, name in zip(kept, values, strict=True)),
            *LINEAGE,
        ),
        quarantine_kept=bronze_columns,
        quarantine=(
            *bronze_columns,
            pl.concat_str(
                [
                    pl.when(name).then(pl.lit(label))
                    for (_, label), name in zip(reasons, reason_flags, strict=True)
                ],
                separator=REASON_SEPARATOR,
                ignore_nulls=True,
            ).alias("reason"),
        ),
        nulled=(
            "source_line",
            *(
                pl.col(name).alias(label)
                for (_, label), name in zip(nulled, nulled_flags, strict=True)
            ),
        ),
    )


def clean(
    bronze: pl.DataFrame,
    source: Source,
    date_format: str = ISO_DATE_FORMAT,
    collect: Collect = pl.LazyFrame.collect,
) -> CleanResult:
    """Silver rows, quarantined rows and what was nulled, for a frame of one row or millions.

    Every rule is a boolean flag computed once per row in one lazy query; the reason text is
    built only for the rows that fail. Projections run in sequence (`_seq`): the streaming
    engine splits a large input by rows, so a projection has nothing to gain from polars'
    thread pool besides.
    """
    plan = _plan(source, date_format)
    rows = bronze.lazy()
    if not bronze["source_line"].is_sorted():
        rows = rows.sort("source_line")
    for step in plan.steps:
        rows = rows.with_columns_seq(*step)
    judged = collect(rows.select_seq(*plan.judged).with_columns_seq(plan.bad))
    if judged[_BAD].any():
        good = judged.lazy().filter(~pl.col(_BAD))
        quarantine = collect(judged.lazy().filter(_BAD).select_seq(*plan.quarantine))
    else:  # the usual case: no reason text to build
        good = judged.lazy()
        quarantine = judged.clear()[list(plan.quarantine_kept)].with_columns(reason=pl.lit(""))
    return CleanResult(
        silver=collect(good.select_seq(*plan.silver)),
        quarantine=quarantine,
        nulled=collect(good.select_seq(*plan.nulled)),
    )

"""Silver cleaning: bronze text to typed columns, with a quarantine for rows that cannot be valid.

Rules (see the domain notes): underscores around numbers are stripped, placeholder values mean
unknown (null), values outside a column's valid range become null, personal data is dropped.
A row is quarantined, with every reason that applies, when a required value is missing, a value
cannot be read as its type, a value holds a control character (`sources.CONTROL_CHARACTERS`),
or its key repeats an earlier row. Every bronze row ends up in
exactly one of the two outputs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import polars as pl

from loan_default.lib.ingest.raw_reader import ISO_DATE_FORMAT
from loan_default.lib.ingest.sources import CONTROL_CHARACTERS, Column, Kind, Source
from loan_default.lib.storage import query_plans

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


def _is_blank(text: pl.Expr, placeholder: pl.Expr | None) -> pl.Expr:
    blank = text.is_null() | (text == "")
    return blank if placeholder is None else blank | placeholder


def _typed(
    column: Column,
    text: pl.Expr,
    date_format: str,
    number: pl.Expr | None = None,
    placeholder: pl.Expr | None = None,
) -> pl.Expr:
    """The typed value of the stripped `text`, null where it is blank or unreadable.

    Written as one conditional per column: this runs on every raw value, so it is the hot path.
    `number` is a numeric column's text already parsed as a float, underscores stripped;
    `placeholder` whether the text is one of the column's placeholders (None: it has none).
    """
    match column.kind:
        case Kind.DATE:
            value = text.str.to_date(date_format, strict=False)
        case Kind.INT | Kind.FLOAT:
            assert number is not None, f"{column.name}: a numeric column needs its parsed value"
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


def _prefix(role: str) -> str:
    return f"__{role}_"


def _tmp(role: str, column: Column) -> str:
    return _prefix(role) + column.name


def _plain_numbers(
    bronze: pl.DataFrame, columns: list[Column]
) -> tuple[dict[str, pl.Series], frozenset[str]]:
    """The numeric columns whose every value parses as it stands, already parsed, and which of
    them need no rule at all.

    Such a column needs no stripping: the parser accepts neither blanks nor underscores, so a
    value that parses is its own stripped text. Clean numeric columns (the usual case) skip
    two string passes this way; any column with a value that does not parse keeps the full rules.
    A plain column is also exact when every value is finite, whole for an integer column (and
    within Int64), inside the valid range and no placeholder, and present if required: no rule
    can then flag or null a value, and the plan takes its numbers as they are.
    """
    if not columns or bronze.is_empty():
        return {}, frozenset()
    names = [c.name for c in columns]
    # One expression over all the columns: on a one-row request, building and planning an
    # expression per column costs more than the casts.
    parsed = query_plans.select(
        bronze, pl.col(names).cast(pl.Float64, strict=False).name.prefix(_prefix("number"))
    )
    parsed_nulls, text_nulls = parsed.null_count().row(0), bronze[names].null_count().row(0)
    pairs = zip(parsed_nulls, text_nulls, strict=True)
    plain = [i for i, (number, text) in enumerate(pairs) if number == text]
    if not plain:
        return {}, frozenset()
    numbers = parsed if len(plain) == len(columns) else parsed[:, plain]
    plain_columns = tuple(columns[i] for i in plain)
    nulls = tuple(parsed_nulls[i] for i in plain)
    # Rows x columns; null and NaN both become NaN.
    exact = _exact(bronze, numbers.to_numpy(order="c"), plain_columns, nulls)
    return dict(zip((c.name for c in plain_columns), numbers.get_columns(), strict=True)), exact


@dataclass(frozen=True)
class _Limits:
    """Per column, as arrays: the valid range, whether whole numbers only and if required."""

    low: np.ndarray
    high: np.ndarray
    whole: np.ndarray
    required: np.ndarray


@functools.cache
def _limits(columns: tuple[Column, ...]) -> _Limits:
    return _Limits(
        low=np.array([-np.inf if c.valid_min is None else c.valid_min for c in columns]),
        high=np.array([np.inf if c.valid_max is None else c.valid_max for c in columns]),
        whole=np.array([c.kind is Kind.INT for c in columns]),
        required=np.array([c.required for c in columns]),
    )


def _exact(
    bronze: pl.DataFrame, values: np.ndarray, columns: tuple[Column, ...], nulls: tuple[int, ...]
) -> frozenset[str]:
    """The plain columns (parsed in `values`, rows x columns, with `nulls` nulls each) that no
    cleaning rule can touch.

    Judged on all columns at once in numpy: a few array operations, where one polars
    expression per column would cost more than the rules it spares on a one-row frame.
    """
    limits = _limits(columns)
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(values) & (values >= limits.low) & (values <= limits.high)
        valid &= ~limits.whole | ((values == np.round(values)) & (np.abs(values) < _INT64_LIMIT))
    # A NaN that was not a null is a parsed "nan": unreadable, so its column is not exact.
    only_nulls = missing.sum(axis=0) == np.array(nulls)
    present = ~(limits.required & missing.any(axis=0))
    exact = (valid | missing).all(axis=0) & only_nulls & present
    return frozenset(
        c.name
        for c, ok in zip(columns, exact, strict=True)
        if ok and not _holds_placeholder(bronze, c)
    )


def _holds_placeholder(bronze: pl.DataFrame, column: Column) -> bool:
    numeric = _numeric_placeholders(column)
    return bool(numeric) and bool(bronze[column.name].is_in(numeric).any())


@functools.cache
def _numeric_placeholders(column: Column) -> tuple[str, ...]:
    """The column's placeholders that parse as numbers: a plain column, whose every value
    parses, can hold no other (so most columns need no look at all)."""
    parsed = pl.Series(column.placeholders, dtype=pl.String).cast(pl.Float64, strict=False)
    return tuple(
        text for text, number in zip(column.placeholders, parsed, strict=True) if number is not None
    )


@dataclass(frozen=True)
class _Plan:
    """Every expression clean() runs for one source, date format and set of plain and exact
    columns.

    Built once and reused: building ~1,000 polars expressions in Python costs as much as
    running them on a small frame, and the scoring API cleans frames of one row.
    """

    stripped: tuple[pl.Expr, ...]
    parsed: tuple[pl.Expr, ...]
    placeholders: tuple[pl.Expr, ...]
    typed: tuple[pl.Expr, ...]
    outside: tuple[pl.Expr, ...]
    values: tuple[pl.Expr, ...]
    sized: tuple[pl.Expr, ...]
    judged: tuple[pl.Expr, ...]
    flag_names: tuple[str, ...]
    silver: tuple[pl.Expr, ...]
    quarantine: tuple[pl.Expr, ...]
    # The quarantine's columns before `reason`, all as in bronze.
    quarantine_kept: tuple[str, ...]
    counts: tuple[pl.Expr, ...]


def _control_columns(bronze: pl.DataFrame, names: list[str]) -> frozenset[str]:
    """The columns of `names` whose raw text holds a control character.

    Usually none: one expression over each row's values joined decides that, and the plan then
    carries no control-character rule at all.
    """
    if not names or bronze.is_empty():
        return frozenset()
    joined = pl.concat_str(names, ignore_nulls=True).str.contains(CONTROL_CHARACTERS).any()
    if not query_plans.select(bronze, joined).item():
        return frozenset()
    found = query_plans.select(bronze, pl.col(names).str.contains(CONTROL_CHARACTERS).any())
    return frozenset(name for name, hit in zip(names, found.row(0), strict=True) if hit)


@functools.lru_cache(maxsize=256)
def _plan(
    source: Source,
    date_format: str,
    plain: frozenset[str],
    exact: frozenset[str],
    control: frozenset[str] = frozenset(),
) -> _Plan:
    kept = [c for c in source.columns if c.kind is not Kind.PERSONAL]
    # Exact columns (see _plain_numbers) are their parsed numbers; the rest go through the rules.
    ruled = [c for c in kept if c.name not in exact]
    # A plain number column is its own stripped text: blanks and underscores never parse.
    text = {c.name: pl.col(c.name) if c.name in plain else pl.col(_tmp("text", c)) for c in kept}
    numeric = [c for c in kept if c.kind in (Kind.INT, Kind.FLOAT)]
    number = {c.name: pl.col(_tmp("number", c)) for c in numeric}
    stripped = tuple(_text(c).alias(_tmp("text", c)) for c in kept if c.name not in plain)
    parsed = tuple(
        text[c.name].str.strip_chars("_").cast(pl.Float64, strict=False).alias(_tmp("number", c))
        for c in numeric
        if c.name not in plain
    )
    # Whether a value is a placeholder, once per column: the typed value, the blank test and
    # the placeholder count all refer to it.
    placeholder = {c.name: pl.col(_tmp("placeholder", c)) for c in ruled if c.placeholders}
    placeholders = tuple(
        text[c.name].is_in(list(c.placeholders)).alias(_tmp("placeholder", c))
        for c in ruled
        if c.placeholders
    )
    typed = (
        *(
            _typed(c, text[c.name], date_format, number.get(c.name), placeholder.get(c.name)).alias(
                _tmp("typed", c)
            )
            for c in ruled
        ),
        *(_is_blank(text[c.name], placeholder.get(c.name)).alias(_tmp("blank", c)) for c in ruled),
    )

    # Range and size tests become columns of their own, so that the flags and final values
    # below refer to them by name: one small expression each instead of nested copies.
    ranged = [c for c in ruled if c.valid_min is not None or c.valid_max is not None]
    outside_of = {c.name: pl.col(_tmp("outside", c)) for c in ranged}
    outside = tuple(
        (pl.col(_tmp("typed", c)).is_not_null() & ~_in_range(c, pl.col(_tmp("typed", c)))).alias(
            _tmp("outside", c)
        )
        for c in ranged
    )
    value_of: dict[str, pl.Expr] = {}
    nulled_values: list[pl.Expr] = []
    sized: list[pl.Expr] = []
    for column in ruled:
        value = pl.col(_tmp("typed", column))
        if column.name in outside_of and not column.required:
            value = pl.when(outside_of[column.name]).then(None).otherwise(value)
            nulled_values.append(value.alias(_tmp("value", column)))
            value = pl.col(_tmp("value", column))
        if column.kind is Kind.INT:
            sized.append(
                (value.is_not_null() & (value.abs() >= _INT64_LIMIT)).alias(_tmp("big", column))
            )
        value_of[column.name] = value

    flags: list[tuple[pl.Expr, str]] = []
    nulled: dict[str, pl.Expr] = {}
    final: list[pl.Expr] = []
    for column in kept:
        if column.name in exact:  # present if required: nothing to flag
            value = number[column.name]
            value = value.cast(pl.Int64) if column.kind is Kind.INT else value
            final.append(value.alias(f"__final_{column.silver_name}"))
            continue
        value = value_of[column.name]
        typed_value = pl.col(_tmp("typed", column))
        blank = pl.col(_tmp("blank", column))
        flags.append(
            (typed_value.is_null() & ~blank, f"unreadable_{column.kind.value}:{column.name}")
        )
        if column.required:
            flags.append((blank, f"missing_value:{column.name}"))
        if column.name in outside_of:
            if column.required:
                flags.append((outside_of[column.name], f"out_of_range:{column.name}"))
            else:
                nulled[column.name] = outside_of[column.name]
        if column.kind is Kind.INT:
            # Beyond Int64 but within the valid range (a column without bounds): unreadable.
            too_big = pl.col(_tmp("big", column))
            in_range = ~outside_of[column.name] if column.name in outside_of else None
            flags.append(
                (
                    too_big if in_range is None else too_big & in_range,
                    f"unreadable_int:{column.name}",
                )
            )
            value = pl.when(~too_big).then(value).cast(pl.Int64)
        if column.placeholders:
            nulled[f"{column.name} (placeholder)"] = placeholder[column.name]
        final.append(value.alias(f"__final_{column.silver_name}"))

    # Judged on the stripped text: surrounding whitespace (a trailing line break) is no reason.
    flags.extend(
        (text[c.name].str.contains(CONTROL_CHARACTERS), f"control_character:{c.name}")
        for c in kept
        if c.name in control
    )
    # Rows are in file order (sorted before), so the first of a repeated key is the one kept.
    key = pl.struct(
        number[k] if k in exact else pl.col(_tmp("typed", source.column(k))) for k in source.key
    )
    flags.append((~key.is_first_distinct(), "duplicate_key"))
    flag_names = tuple(f"__flag_{i}" for i in range(len(flags)))
    judged = (
        *final,
        *(pl.col(name) for name in LINEAGE),
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
    quarantine_kept = (*LINEAGE, *(c.name for c in kept))
    reason = pl.concat_str(
        [
            pl.when(pl.col(n)).then(pl.lit(label))
            for (_, label), n in zip(flags, flag_names, strict=True)
        ],
        separator=REASON_SEPARATOR,
        ignore_nulls=True,
    )
    return _Plan(
        stripped=stripped,
        parsed=parsed,
        placeholders=placeholders,
        typed=typed,
        outside=outside,
        values=tuple(nulled_values),
        sized=tuple(sized),
        judged=judged,
        flag_names=flag_names,
        silver=(
            *(pl.col(f"__final_{c.silver_name}").alias(c.silver_name) for c in kept),
            *(pl.col(name) for name in LINEAGE),
        ),
        quarantine=(*(pl.col(name) for name in quarantine_kept), reason.alias("reason")),
        quarantine_kept=quarantine_kept,
        counts=tuple(pl.col(f"__nulled_{i}").sum().alias(name) for i, name in enumerate(nulled)),
    )


def clean(bronze: pl.DataFrame, source: Source, date_format: str = ISO_DATE_FORMAT) -> CleanResult:
    """Silver rows, quarantined rows and null counts, for a frame of one row or of millions.

    Every rule is a boolean flag computed once per row in one lazy query (so polars evaluates
    each parsed value once); the reason text is built only for the rows that fail.
    """
    kept = [c for c in source.columns if c.kind is not Kind.PERSONAL]
    plain, exact = _plain_numbers(bronze, [c for c in kept if c.kind in (Kind.INT, Kind.FLOAT)])
    # A number that parses as it stands holds no control character: only other columns look.
    control = _control_columns(bronze, [c.name for c in kept if c.name not in plain])
    plan = _plan(source, date_format, frozenset(plain), exact, control)
    rows = bronze.hstack(list(plain.values())).lazy()
    if not bronze["source_line"].is_sorted():
        rows = rows.sort("source_line")
    # Projections run in sequence: the in-memory engine of a small input would hand each to
    # the thread pool (see query_plans); the streaming engine of a large one splits by rows.
    judged = query_plans.collect(
        rows.with_columns_seq(*plan.stripped)
        .with_columns_seq(*plan.parsed, *plan.placeholders)
        .with_columns_seq(*plan.typed)
        .with_columns_seq(*plan.outside)
        .with_columns_seq(*plan.values)
        .with_columns_seq(*plan.sized)
        .select_seq(*plan.judged)
        .with_columns_seq(__bad=pl.any_horizontal(plan.flag_names)),
        bronze.height,
    )
    bad = pl.col("__bad")
    if judged["__bad"].any():
        good = judged.filter(~bad)
        quarantine = query_plans.select(judged.filter(bad), *plan.quarantine)
    else:  # the usual case: no reason text to build, the quarantine is empty
        good = judged
        quarantine = (
            judged[list(plan.quarantine_kept)].clear().hstack([pl.Series("reason", [], pl.String)])
        )
    silver = query_plans.select(good, *plan.silver)
    counts = query_plans.select(good, *plan.counts).row(0, named=True) if plan.counts else {}
    return CleanResult(silver, quarantine, {k: int(v or 0) for k, v in counts.items() if v})


def parse_credit_history_months(text: pl.Expr) -> pl.Expr:
    """'10 Years and 9 Months' -> 129."""
    years = text.str.extract(CREDIT_HISTORY_PATTERN, 1).cast(pl.Int64)
    months = text.str.extract(CREDIT_HISTORY_PATTERN, 2).cast(pl.Int64)
    return years * 12 + months

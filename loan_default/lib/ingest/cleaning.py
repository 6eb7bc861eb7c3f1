"""Silver cleaning: bronze text to typed columns, with a quarantine for rows that cannot be valid.

Each column's rules are declared on its `sources.Column` (how it parses, its placeholders, its
valid range, whether it is required), narrowed by the rules declared below (`PLAUSIBLE_RANGES`,
`NULLED_WHEN_UNREADABLE`, `FIXED_PER_ENTITY`); `_column_rules` turns one declaration into polars
expressions, one rule each, applied in this order:

1. surrounding whitespace is stripped;
2. a placeholder means unknown: null, counted as `<column> (placeholder)`;
3. the text parses as the column's kind (numbers without the underscores around them, whole
   numbers for integers, dates in the run's format, "N Years and M Months" as months); text
   that does not is quarantined as `unreadable_<kind>:<column>`, or, in a column of
   `NULLED_WHEN_UNREADABLE`, null, counted as `<column> (unreadable_<kind>)`;
4. a required column without a value is quarantined as `missing_value:<column>`;
5. a value outside the valid range (the column's, narrowed by `PLAUSIBLE_RANGES`) is
   quarantined as `out_of_range:<column>` when the column is required, otherwise null, counted
   as `<column>`;
6. an integer beyond Int64 that no range excludes is unreadable, as in rule 3.

Then the rules of a row: a value holding a control character (`sources.CONTROL_CHARACTERS`) is
quarantined as `control_character:<column>`, a text key holding an invisible character
(`INVISIBLE_CHARACTERS`) as `invisible_character:<column>`, values of a row that disagree
(`CONSISTENT_ROWS`: a loan's dates, its month on book) as `inconsistent:<column> (...)`, a key
repeating an earlier row's as `duplicate_key`, and a value that must stay the same for an entity
(`FIXED_PER_ENTITY`: a loan's start date and tenure) but differs from the entity's first row as
`contradicts_loan:<column> (loan_id <id>: <first value> in its first snapshot, <value> here)`.
Personal columns are dropped. Every bronze row ends in exactly one of silver or quarantine, a
quarantined row with every reason that applies; every nulled value is counted in `nulled`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

import polars as pl

from loan_default.lib.ingest.raw_reader import ISO_DATE_FORMAT, parse_date
from loan_default.lib.ingest.sources import (
    CONTROL_CHARACTERS,
    FEATURES_ATTRIBUTES,
    FEATURES_FINANCIALS,
    LMS_LOAN_DAILY,
    Column,
    Kind,
    Source,
)

REASON_SEPARATOR = "; "
# Months run 0..11 beside the years: "17 Years and 14 Months" is not a duration.
CREDIT_HISTORY_PATTERN = r"^(\d+) Years? and (\d|1[01]) Months?$"
LINEAGE = ("partition_month", "source_file", "source_line")
# Numbers parse as Float64 first; an integer column's value must stay below this to be an Int64.
INT64_LIMIT = 2.0**63
# How a query is run: the pipeline's default, or the scoring API's choice for its one-row frames.
Collect = Callable[[pl.LazyFrame], pl.DataFrame]

# --- Rules declared with the cleaning, on top of the columns of `sources.py` -------------------

# Plausibility of amounts: no loan of this book comes near these bounds (its amounts are tens
# of thousands); a value beyond one (1e300) is an export or unit error, not a loan. They narrow
# the column's own valid range, and the range rule judges the value: these columns are
# required, so its row is quarantined as `out_of_range:<column>`.
AMOUNT_LIMIT = 1e8
PLAUSIBLE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    LMS_LOAN_DAILY.name: {
        "loan_amt": (0, AMOUNT_LIMIT),
        "due_amt": (0, AMOUNT_LIMIT),
        "paid_amt": (0, AMOUNT_LIMIT),
        "overdue_amt": (0, AMOUNT_LIMIT),
        "balance": (-AMOUNT_LIMIT, AMOUNT_LIMIT),
    },
}

# Optional values a feature row can do without: one that does not parse (`nan`, `4l872`) is
# set to null and counted as `<column> (unreadable_<kind>)`, as an out-of-range one is, instead
# of quarantining the applicant's whole row. Every optional number of attributes and
# financials is listed; keys, dates, the loan book and the clickstream stay strict.
NULLED_WHEN_UNREADABLE: dict[str, frozenset[str]] = {
    FEATURES_ATTRIBUTES.name: frozenset({"Age"}),
    FEATURES_FINANCIALS.name: frozenset(
        {
            "Annual_Income",
            "Monthly_Inhand_Salary",
            "Num_Bank_Accounts",
            "Num_Credit_Card",
            "Interest_Rate",
            "Num_of_Loan",
            "Delay_from_due_date",
            "Num_of_Delayed_Payment",
            "Changed_Credit_Limit",
            "Num_Credit_Inquiries",
            "Outstanding_Debt",
            "Credit_Utilization_Ratio",
            "Credit_History_Age",
            "Total_EMI_per_month",
            "Amount_invested_monthly",
            "Monthly_Balance",
        }
    ),
}


@dataclass(frozen=True)
class FixedValues:
    """Columns an entity holds the same value in, in every row of it.

    The entity's first row (earliest `date_column`, then file line; an earlier month already in
    silver comes first) sets each value; a row that differs is quarantined as
    `<reason>:<column> (...)`, naming the entity and both values.
    """

    entity: str
    columns: tuple[str, ...]
    reason: str


FIXED_PER_ENTITY: dict[str, FixedValues] = {
    LMS_LOAN_DAILY.name: FixedValues("loan_id", ("loan_start_date", "tenure"), "contradicts_loan"),
}

# Invisible format characters (zero-width spaces and joiners, word joiner, a byte-order mark
# left by joining files): in a key they make two equal-looking keys differ, so a row whose
# text key holds one is quarantined as `invisible_character:<column>`.
INVISIBLE_CHARACTERS = "[\u200b-\u200f\u2060\ufeff]"


# Values of one row that must agree: (reason, test over the row's typed values, by column). A
# row failing one is quarantined as `<reason>`; a value missing or out of its range fails none
# (its own rule names it). A column of `FIXED_PER_ENTITY` is read as its entity holds it, so a
# row contradicting its loan is quarantined for that alone.
RowTest = Callable[[Callable[[str], pl.Expr]], pl.Expr]
CONSISTENT_ROWS: dict[str, tuple[tuple[str, RowTest], ...]] = {
    LMS_LOAN_DAILY.name: (
        (
            "inconsistent:snapshot_date (before loan_start_date)",
            lambda value: value("snapshot_date") >= value("loan_start_date"),
        ),
        (
            "inconsistent:installment_num (beyond tenure)",
            lambda value: value("installment_num") <= value("tenure"),
        ),
    ),
}


def declared(source: Source) -> Source:
    """The source with the ranges cleaning judges: each column's own, narrowed by
    `PLAUSIBLE_RANGES`."""
    narrowed = PLAUSIBLE_RANGES.get(source.name, {})
    columns = []
    for column in source.columns:
        if column.name in narrowed:
            low, high = narrowed[column.name]
            if column.valid_min is not None:
                low = max(low, column.valid_min)
            if column.valid_max is not None:
                high = min(high, column.valid_max)
            column = replace(column, valid_min=low, valid_max=high)
        columns.append(column)
    return replace(source, columns=tuple(columns))


UNREADABLE_PREFIX = "unreadable_"
PLACEHOLDER = "placeholder"


def nulled_reason(label: str) -> tuple[str, str] | None:
    """The (column, reason) of a `CleanResult.nulled` column, as the quarantine would name it:
    `out_of_range` or `unreadable_<kind>`; None for a placeholder, which means unknown."""
    column, _, why = label.partition(" (")
    why = why.removesuffix(")")
    if why == PLACEHOLDER:
        return None
    return column, why or "out_of_range"


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


def _column_rules(column: Column, date_format: str, null_unreadable: bool = False) -> _ColumnRules:
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
            parsed = parse_date(text, date_format)
        case Kind.DURATION:
            parsed = parse_credit_history_months(text)
        case _:
            parsed = pl.when(text != "").then(text)
    blank_text = text.fill_null("") == ""
    if column.placeholders:
        parsed, blank_text = pl.when(~placeholder).then(parsed), blank_text | placeholder
    typing = (parsed.alias(_step("typed", column)), blank_text.alias(_step("blank", column)))
    unreadable = typed.is_null() & ~blank
    reasons: list[tuple[pl.Expr, str]] = []
    nulled = [(placeholder, f"{column.name} ({PLACEHOLDER})")] if column.placeholders else []

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
            unreadable = unreadable | too_big.fill_null(False)
            value = pl.when(~too_big).then(value)
        value = value.cast(pl.Int64)
    kind = f"{UNREADABLE_PREFIX}{column.kind.value}"
    if null_unreadable:
        nulled.append((unreadable, f"{column.name} ({kind})"))
    else:
        reasons.insert(0, (unreadable, f"{kind}:{column.name}"))

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
    # For a source with values fixed per entity: the entity's earlier values (silver names to
    # the names joined, and their types) are joined on `known_on` (row column, known column),
    # then `fixed` gives each row the values it must hold.
    known_names: dict[str, str]
    known_schema: dict[str, pl.DataType]
    known_on: tuple[str, str] | None
    fixed: tuple[pl.Expr, ...]
    judged: tuple[pl.Expr, ...]
    bad: pl.Expr
    silver: tuple[pl.Expr, ...]
    # The quarantine's columns: lineage and raw values as in bronze, then the reason.
    quarantine_kept: tuple[str, ...]
    quarantine: tuple[pl.Expr, ...]
    nulled: tuple[pl.Expr, ...]


_BAD = "__bad"
# A reason's text: fixed, or built per row from the values it names.
Label = str | pl.Expr


def _control_rule(column: Column) -> tuple[pl.Expr, str]:
    """A value holding a control character. Judged on the stripped text: surrounding
    whitespace (a trailing line break) is no reason."""
    text = pl.col(_step("text", column))
    return text.str.contains(CONTROL_CHARACTERS), f"control_character:{column.name}"


def _invisible_rule(column: Column) -> tuple[pl.Expr, str]:
    """An identifier holding a byte-order mark or zero-width character, which would pass as a
    different one."""
    text = pl.col(_step("text", column))
    return text.str.contains(INVISIBLE_CHARACTERS), f"invisible_character:{column.name}"


def _row_rules(source: Source, kept: list[Column]) -> list[tuple[pl.Expr, Label]]:
    """The rules of a whole row, judged after those of its values."""
    control = [_control_rule(c) for c in kept]
    # Rows are in file order (sorted before), so the first of a repeated key is the one kept.
    invisible = [
        _invisible_rule(source.column(k)) for k in source.key if source.column(k).kind is Kind.TEXT
    ]
    key = pl.struct(pl.col(_step("typed", source.column(k))) for k in source.key)
    return [
        *control,
        *invisible,
        *_consistency_rules(source),
        (~key.is_first_distinct(), "duplicate_key"),
        *_fixed_rules(source),
    ]


def _consistency_rules(source: Source) -> list[tuple[pl.Expr, Label]]:
    rule = FIXED_PER_ENTITY.get(source.name)
    fixed = rule.columns if rule else ()

    def value(name: str) -> pl.Expr:
        column = source.column(name)
        read = pl.col(_step("reference" if name in fixed else "typed", column))
        return pl.when(~pl.col(_step("outside", column))).then(read) if column.has_range else read

    return [
        ((~holds(value)).fill_null(False), reason)
        for reason, holds in CONSISTENT_ROWS.get(source.name, ())
    ]


def _known(name: str) -> str:
    return f"__known:{name}"


def _shown(value: pl.Expr, column: Column) -> pl.Expr:
    """A typed value as the reason text shows it (integers are Float64 until cast)."""
    if column.kind is Kind.INT:
        value = value.cast(pl.Int64, strict=False)
    return value.cast(pl.String).fill_null("null")


def _fixed_references(source: Source) -> tuple[pl.Expr, ...]:
    """Per row and fixed column, the value its entity holds: an earlier month's, else that of
    its first row here with a value."""
    rule = FIXED_PER_ENTITY.get(source.name)
    if rule is None:
        return ()
    entity = pl.col(_step("typed", source.column(rule.entity)))
    first = (pl.col(_step("typed", source.column(source.date_column))), pl.col("source_line"))
    references = []
    for name in rule.columns:
        column = source.column(name)
        here = pl.col(_step("typed", column)).sort_by(*first, nulls_last=True).drop_nulls()
        references.append(
            pl.coalesce(pl.col(_known(name)), here.first().over(entity)).alias(
                _step("reference", column)
            )
        )
    return tuple(references)


def _fixed_rules(source: Source) -> list[tuple[pl.Expr, Label]]:
    rule = FIXED_PER_ENTITY.get(source.name)
    if rule is None:
        return []
    entity = pl.col(_step("typed", source.column(rule.entity)))
    rules: list[tuple[pl.Expr, Label]] = []
    for name in rule.columns:
        column = source.column(name)
        value, reference = pl.col(_step("typed", column)), pl.col(_step("reference", column))
        differs = entity.is_not_null() & (value != reference).fill_null(False)
        label = pl.format(
            f"{rule.reason}:{name} ({rule.entity} {{}}: {{}} in its first snapshot, {{}} here)",
            entity,
            _shown(reference, column),
            _shown(value, column),
        )
        rules.append((differs, label))
    return rules


def _known_columns(source: Source) -> dict[str, pl.DataType]:
    """The columns (bronze names) of `clean(known=...)` and their silver types."""
    rule = FIXED_PER_ENTITY.get(source.name)
    if rule is None:
        return {}
    types = {Kind.DATE: pl.Date(), Kind.INT: pl.Int64(), Kind.FLOAT: pl.Float64()}
    return {
        name: types.get(source.column(name).kind, pl.String())
        for name in (rule.entity, *rule.columns)
    }


def _known_frame(plan: _Plan, known: pl.DataFrame | None) -> pl.DataFrame:
    """`known` renamed and typed for the join; an empty frame when there is none."""
    if known is None or known.is_empty():
        return pl.DataFrame(schema=plan.known_schema)
    return known.select(
        pl.col(silver).cast(plan.known_schema[name]).alias(name)
        for silver, name in plan.known_names.items()
    )


def first_values(silver: pl.DataFrame, source: Source) -> pl.DataFrame:
    """Per entity of `FIXED_PER_ENTITY`, the fixed values of its first silver row: what later
    rows must repeat (`clean(known=...)`). Empty for a source without such values."""
    rule = FIXED_PER_ENTITY.get(source.name)
    if rule is None:
        return pl.DataFrame()
    names = [source.column(n).silver_name for n in (rule.entity, *rule.columns)]
    date = source.column(source.date_column).silver_name
    return (
        silver.sort(date, "source_line", nulls_last=True)
        .unique(names[0], keep="first", maintain_order=True)
        .select(names)
    )


# One plan per source and date format: building its hundreds of expressions costs as much as
# running them on a request's one-row frame.
@functools.cache
def _plan(source: Source, date_format: str) -> _Plan:
    source = declared(source)
    kept = [c for c in source.columns if c.kind is not Kind.PERSONAL]
    lenient = NULLED_WHEN_UNREADABLE.get(source.name, frozenset())
    strict = sorted(name for name in lenient if source.column(name).required)
    if strict:
        raise ValueError(f"{source.name}: required columns cannot be nulled: {strict}")
    rules = [_column_rules(c, date_format, c.name in lenient) for c in kept]
    reasons = [reason for r in rules for reason in r.reasons] + _row_rules(source, kept)
    nulled = [flag for r in rules for flag in r.nulled]
    # Each value and flag is judged into a column of its own, named by position.
    values = [f"__value:{c.silver_name}" for c in kept]
    reason_flags = [f"__reason_{i}" for i in range(len(reasons))]
    nulled_flags = [f"__nulled_{i}" for i in range(len(nulled))]
    # A label built per row is judged into a column too, where its rule fails.
    labels = {
        i: pl.when(flag).then(label).alias(f"__label_{i}")
        for i, (flag, label) in enumerate(reasons)
        if isinstance(label, pl.Expr)
    }
    bronze_columns = (*LINEAGE, *(c.name for c in kept))
    known = _known_columns(source)
    rule = FIXED_PER_ENTITY.get(source.name)
    return _Plan(
        steps=tuple(
            tuple(expr for column_step in step for expr in column_step)
            for step in zip(*(r.steps for r in rules), strict=True)
        ),
        known_names={source.column(name).silver_name: _known(name) for name in known},
        known_schema={_known(name): dtype for name, dtype in known.items()},
        known_on=(
            (_step("typed", source.column(rule.entity)), _known(rule.entity)) if rule else None
        ),
        fixed=_fixed_references(source),
        judged=(
            *(r.value.alias(name) for r, name in zip(rules, values, strict=True)),
            *bronze_columns,
            *(flag.alias(name) for (flag, _), name in zip(reasons, reason_flags, strict=True)),
            *(flag.alias(name) for (flag, _), name in zip(nulled, nulled_flags, strict=True)),
            *labels.values(),
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
                    pl.col(f"__label_{i}") if i in labels else pl.when(name).then(pl.lit(label))
                    for i, ((_, label), name) in enumerate(zip(reasons, reason_flags, strict=True))
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
    known: pl.DataFrame | None = None,
) -> CleanResult:
    """Silver rows, quarantined rows and what was nulled, for a frame of one row or millions.

    `known` holds the fixed values of entities seen in earlier months (`first_values` of their
    silver rows), which rows here must repeat.

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
    if plan.known_on is not None:
        rows = rows.join(
            _known_frame(plan, known).lazy(),
            left_on=plan.known_on[0],
            right_on=plan.known_on[1],
            how="left",
            maintain_order="left",
        ).with_columns_seq(*plan.fixed)
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


def value_reasons(
    values: list[str | None],
    source: Source,
    column_name: str,
    collect: Collect = pl.LazyFrame.collect,
) -> list[list[str]]:
    """The reasons cleaning would quarantine each value for, as `column_name` of `source`.

    The column's own rules and the control- and invisible-character rules, for a value judged
    apart from its row as an identifier: the scoring API's `Customer_ID`, which its frames
    replace by an internal key.
    """
    column = declared(source).column(column_name)
    lenient = column_name in NULLED_WHEN_UNREADABLE.get(source.name, frozenset())
    rules = _column_rules(column, ISO_DATE_FORMAT, lenient)
    reasons = [*rules.reasons, _control_rule(column), _invisible_rule(column)]
    rows = pl.LazyFrame({column.name: values}, schema={column.name: pl.String})
    for step in rules.steps:
        rows = rows.with_columns_seq(*step)
    flags = collect(
        rows.select_seq(flag.fill_null(False).alias(str(i)) for i, (flag, _) in enumerate(reasons))
    )
    return [
        [label for (_, label), hit in zip(reasons, row, strict=True) if hit]
        for row in flags.iter_rows()
    ]

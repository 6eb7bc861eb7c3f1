"""Applications in the raw schema to feature rows, through the pipeline's own code.

Each request becomes bronze-like text frames, one per source, that go through the same
`clean()` as the files, the loan book's `with_delinquency()` and `build_features()`. Nothing
here re-implements a cleaning or feature rule: it only builds the frames, maps the
quarantine's reasons back to request fields, and refuses what the batch pipeline would
tolerate silently (a value it nulls as out of range or unreadable, a source row dated after the
application). `Customer_ID`, which the frames replace by an internal key, is judged by the
same column rules (`value_reasons`).

Each application gets its own internal customer and loan key (its position in the request), so
applications in one batch never see each other's rows, whatever Customer_ID they carry.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from loan_default import settings
from loan_default.lib.gold.features import build_features
from loan_default.lib.gold.loan_delinquency import with_delinquency
from loan_default.lib.ingest.cleaning import (
    REASON_SEPARATOR,
    CleanResult,
    clean,
    declared,
    nulled_reason,
    value_reasons,
)
from loan_default.lib.ingest.raw_reader import ISO_DATE_FORMAT, raw_month
from loan_default.lib.ingest.sources import (
    FEATURE_CLICKSTREAM,
    FEATURES_ATTRIBUTES,
    FEATURES_FINANCIALS,
    LMS_LOAN_DAILY,
    Kind,
    Source,
)
from loan_default.lib.models.reason_codes import score_with_reasons
from loan_default.lib.models.training import TrainedModel
from loan_default.serving.schemas import SHARED_KEY, Application

SECTIONS = {
    FEATURES_ATTRIBUTES.name: "attributes",
    FEATURES_FINANCIALS.name: "financials",
    FEATURE_CLICKSTREAM.name: "clickstream",
}
# Loan book columns the request carries, and which request field each one comes from.
LOAN_FIELDS = {
    "loan_start_date": "loan_start_date",
    "snapshot_date": "loan_start_date",
    "tenure": "tenure",
    "loan_amt": "loan_amt",
    "balance": "loan_amt",
}
# The loan book row at application: month on book 0, nothing due, paid or overdue yet.
AT_APPLICATION = {"installment_num": "0", "due_amt": "0", "paid_amt": "0", "overdue_amt": "0"}
MESSAGES = {
    "unreadable_float": "is not a number",
    "unreadable_int": "is not a whole number (or too large)",
    "unreadable_date": "is not a date (YYYY-MM-DD)",
    "unreadable_duration": "is not of the form 'N Years and M Months'",
    "unreadable_text": "is not readable text",
    "unreadable_category": "is not readable text",
    "missing_value": "is required",
    "control_character": "holds a control character (NUL, another C0 code or DEL)",
    "invisible_character": "holds an invisible character (a byte-order mark or zero-width)",
    "out_of_range": "is outside the valid range",
    "duplicate_key": "repeats a month already given",
    "after_application_month": (
        "is in a month after the application month (loan_start_date's month), "
        "so the pipeline would not use this row"
    ),
}


@dataclass(frozen=True)
class FieldError:
    """A refused value: which application, where in it, and why (never the value itself)."""

    application: int
    loc: tuple[str | int, ...]
    type: str
    msg: str


class RejectedApplications(ValueError):
    """Some applications hold values the pipeline would quarantine or silently drop."""

    def __init__(self, errors: list[FieldError]):
        super().__init__(f"{len(errors)} invalid value(s)")
        self.errors = errors


def collect(query: pl.LazyFrame) -> pl.DataFrame:
    """A request's query, run the way its few rows (usually one) run fastest.

    On a frame of one application a query's fixed costs are most of its time: the streaming
    engine's start-up (polars' default) and the optimizer's passes over hundreds of expressions
    both cost more than evaluating them, and give the same result.
    """
    return query.collect(engine="in-memory", optimizations=pl.QueryOptFlags.none())


@dataclass(frozen=True)
class _Bronze:
    """Bronze-like frames per source, and where each source line came from in the request."""

    frames: dict[str, pl.DataFrame]
    # Per source: source_line -> (application index, row index within its section or None).
    origins: dict[str, list[tuple[int, int | None]]]


@functools.cache
def _bronze_columns(source: Source) -> tuple[tuple[str, ...], pl.Expr, pl.Expr]:
    """The raw columns cleaning reads, and the lineage expressions of a request's frame."""
    columns = tuple(
        c.name for c in source.columns if c.kind is not Kind.PERSONAL and c.name != SHARED_KEY
    )
    month = raw_month(source.date_column, ISO_DATE_FORMAT).alias("partition_month")
    return columns, month, pl.lit(f"api:{source.name}").alias("source_file")


def _text_frame(source: Source, rows: list[dict], owners: list[int]) -> pl.DataFrame:
    """Raw text columns plus the lineage `clean()` keeps, as bronze has them.

    Only the columns cleaning reads are taken from `rows`: personal data never enters a frame.
    The customer key is the owning application's position in the request.
    """
    columns, month, source_file = _bronze_columns(source)
    return pl.from_dicts(rows, schema=dict.fromkeys(columns, pl.String)).with_columns_seq(
        pl.Series(SHARED_KEY, [str(owner) for owner in owners], dtype=pl.String),
        month,
        source_file,
        pl.Series("source_line", range(len(owners)), dtype=pl.Int64),
    )


# clean() results of empty or one-row bronze frames, which repeat from request to request: the
# empty clickstream of every applicant since the gap, the mob-0 loan row of a month. clean()
# runs the same few hundred polars expressions whatever the row count, so a repeat is served
# from here.
# Bounded in bytes: a row is kept only when its frame holds at most _CLEANED_MAX_ROW_BYTES
# (real rows hold a tenth of that; a request's own text would otherwise decide what stays in
# memory), and at most _CLEANED_MAX rows are.
_CLEANED: dict[tuple, CleanResult] = {}
_CLEANED_MAX = 1024
_CLEANED_MAX_ROW_BYTES = 4096


def _clean(source: Source, bronze: pl.DataFrame) -> CleanResult:
    """clean() as the pipeline runs it, memoized for single applications' repeating rows."""
    if bronze.height > 1 or bronze.estimated_size() > _CLEANED_MAX_ROW_BYTES:
        return clean(bronze, source, ISO_DATE_FORMAT, collect)
    key = (source.name, bronze.row(0) if bronze.height else None)
    result = _CLEANED.get(key)
    if result is None:
        result = clean(bronze, source, ISO_DATE_FORMAT, collect)
        if len(_CLEANED) >= _CLEANED_MAX:
            _CLEANED.clear()
        _CLEANED[key] = result
    return result


def bronze_frames(applications: Sequence[Application]) -> _Bronze:
    indices = range(len(applications))
    loans = [
        {
            "loan_id": str(index),
            **AT_APPLICATION,
            **{column: getattr(application, name) for column, name in LOAN_FIELDS.items()},
        }
        for index, application in zip(indices, applications, strict=True)
    ]
    frames = {LMS_LOAN_DAILY.name: _text_frame(LMS_LOAN_DAILY, loans, list(indices))}
    origins: dict[str, list[tuple[int, int | None]]] = {
        LMS_LOAN_DAILY.name: [(index, None) for index in indices]
    }
    for source, section in (
        (FEATURES_ATTRIBUTES, "attributes"),
        (FEATURES_FINANCIALS, "financials"),
    ):
        rows = [getattr(application, section).__dict__ for application in applications]
        frames[source.name] = _text_frame(source, rows, list(indices))
        origins[source.name] = [(index, None) for index in indices]
    months = [
        (index, position, month.__dict__)
        for index, application in zip(indices, applications, strict=True)
        for position, month in enumerate(application.clickstream)
    ]
    frames[FEATURE_CLICKSTREAM.name] = _text_frame(
        FEATURE_CLICKSTREAM, [m for _, _, m in months], [index for index, _, _ in months]
    )
    origins[FEATURE_CLICKSTREAM.name] = [(index, position) for index, position, _ in months]
    return _Bronze(frames, origins)


def _field_loc(source: Source, column: str, position: int | None) -> tuple[str | int, ...]:
    if source is LMS_LOAN_DAILY:
        return (LOAN_FIELDS.get(column, column),)
    section = SECTIONS[source.name]
    return (section, column) if position is None else (section, position, column)


def _error(source: Source, origin: tuple[int, int | None], column: str, kind: str) -> FieldError:
    index, position = origin
    loc = _field_loc(source, column, position)
    message = f"{loc[-1]} {MESSAGES.get(kind, kind)}"
    if kind == "out_of_range":
        spec = declared(source).column(column)
        message += f" [{_bound(spec.valid_min)}, {_bound(spec.valid_max)}]"
    return FieldError(index, loc, kind, message)


def _bound(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:g}"


def _quarantine_errors(
    source: Source, quarantine: pl.DataFrame, origins: list[tuple[int, int | None]]
) -> list[FieldError]:
    errors: list[FieldError] = []
    if quarantine.is_empty():  # the usual case, decided without a query
        return errors
    for line, reasons in quarantine.select("source_line", "reason").iter_rows():
        for reason in reasons.split(REASON_SEPARATOR):
            kind, _, column = reason.partition(":")
            errors.append(_error(source, origins[line], column or source.date_column, kind))
    return errors


def _nulled_refused(result: CleanResult) -> list[tuple[int, str, str]]:
    """(source_line, column, reason) of values cleaning set to null for lying outside their
    range or not parsing.

    Cleaning nulls such values in optional columns; the API refuses them instead, so the
    caller learns which field is wrong. A placeholder means unknown and is accepted.
    """
    refused = {
        label: reason
        for label in result.nulled.columns[1:]
        if (reason := nulled_reason(label)) is not None
    }
    if not refused or result.nulled.is_empty():
        return []
    labels = list(refused)
    flags = result.nulled[labels].fill_null(False).to_numpy()
    rows, columns = np.nonzero(flags)
    lines = result.nulled["source_line"].to_numpy()[rows]
    return [(int(line), *refused[labels[c]]) for line, c in zip(lines, columns, strict=True)]


def _customer_id_errors(applications: Sequence[Application]) -> list[FieldError]:
    """What cleaning would quarantine a loan row for in its Customer_ID (a NUL byte, blank)."""
    judged = value_reasons(
        [application.Customer_ID for application in applications],
        LMS_LOAN_DAILY,
        SHARED_KEY,
        collect,
    )
    return [
        FieldError(index, (SHARED_KEY,), kind, f"{SHARED_KEY} {MESSAGES.get(kind, kind)}")
        for index, reasons in enumerate(judged)
        for kind in (reason.partition(":")[0] for reason in reasons)
    ]


def _after_application(silver: pl.DataFrame, application_months: pl.DataFrame) -> list[int]:
    """Source lines of a month after their application's: the pipeline would never use them.

    Compared by month, as the features compare them: any day of the application month is on
    or before it. `partition_month` is the month of the row's date, as bronze assigns it.
    """
    if silver.is_empty() or application_months.is_empty():
        return []
    if silver["partition_month"].max() <= application_months["application_month"].min():
        return []  # the common case, decided without a join
    late = silver.join(application_months, on="customer_id").filter(
        pl.col("partition_month") > pl.col("application_month")
    )
    return late["source_line"].to_list()


def features_of(applications: Sequence[Application]) -> pl.DataFrame:
    """Feature-store rows, one per application in request order, or RejectedApplications."""
    bronze = bronze_frames(applications)
    silver: dict[str, pl.DataFrame] = {}
    errors = _customer_id_errors(applications)
    for source in (LMS_LOAN_DAILY, FEATURES_ATTRIBUTES, FEATURES_FINANCIALS, FEATURE_CLICKSTREAM):
        origins = bronze.origins[source.name]
        result = _clean(source, bronze.frames[source.name])
        errors += _quarantine_errors(source, result.quarantine, origins)
        errors += [
            _error(source, origins[line], column, kind)
            for line, column, kind in _nulled_refused(result)
        ]
        silver[source.name] = result.silver
    loans = silver[LMS_LOAN_DAILY.name]
    months = loans.select_seq("customer_id", application_month=pl.col("partition_month"))
    for source in (FEATURES_ATTRIBUTES, FEATURES_FINANCIALS, FEATURE_CLICKSTREAM):
        origins = bronze.origins[source.name]
        errors += [
            _error(source, origins[line], source.date_column, "after_application_month")
            for line in _after_application(silver[source.name], months)
        ]
    if errors:
        # One error per field and kind: loan_amt also fills the loan book's balance, whose
        # range differs, and the caller has one field to fix.
        unique = list({(e.application, e.loc, e.type): e for e in reversed(errors)}.values())
        raise RejectedApplications(sorted(unique, key=lambda e: (e.application, str(e.loc))))
    features = build_features(
        with_delinquency(loans.lazy()),
        silver[FEATURES_ATTRIBUTES.name],
        silver[FEATURES_FINANCIALS.name],
        silver[FEATURE_CLICKSTREAM.name],
        settings.CLICKSTREAM_LOOKBACK,
        collect,
    )
    return features.sort(pl.col("loan_id").cast(pl.Int64))


def score(model: TrainedModel, applications: Sequence[Application]) -> pl.DataFrame:
    """probability, calibrated_probability, decision and reasons (for decision 1) per
    application, in request order: the predictions asset's own `score_with_reasons`."""
    return score_with_reasons(model, features_of(applications))

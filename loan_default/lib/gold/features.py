"""The feature store: one row per loan at application (mob 0), using only data dated <= T.

Attributes and financials come from the customer's latest row dated on or before the
application month T (an as-of join); clickstream is averaged over a trailing window of months
ending at T. Source dates compare by month, as bronze partitions them: a row dated any day of
month T (2024-05-17) is on or before T and serves applications from T on, never earlier ones.
A loan with no clickstream in the window gets nulls, `has_clickstream = 0` and a count of 0,
never zeros in the feature columns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import polars as pl

from loan_default.lib.gold.lookback import ClickstreamLookback
from loan_default.lib.ingest.sources import LOAN_TYPES

CLICKSTREAM_COLUMNS = tuple(f"fe_{i}" for i in range(1, 21))
# The steps below run eagerly on frames (the pipeline's months) or build one lazy query
# (build_features), which its caller runs as it sees fit. Their projections run in sequence
# (`_seq`): polars' streaming engine splits a large input by rows anyway, and on a request's
# one row, handing each projection to polars' thread pool costs more than evaluating it.
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
ATTRIBUTE_FEATURES = ("age", "occupation")
FINANCIAL_FEATURES = (
    "annual_income",
    "monthly_inhand_salary",
    "num_bank_accounts",
    "num_credit_card",
    "interest_rate",
    "num_of_loan",
    "delay_from_due_date",
    "num_of_delayed_payment",
    "changed_credit_limit",
    "num_credit_inquiries",
    "credit_mix",
    "outstanding_debt",
    "credit_utilization_ratio",
    "payment_of_min_amount",
    "total_emi_per_month",
    "amount_invested_monthly",
    "monthly_balance",
)


def loan_type_column(loan_type: str) -> str:
    return "loan_type_" + re.sub(r"[^a-z]+", "_", loan_type.lower()).strip("_")


CLICKSTREAM_COUNTS = ("clickstream_months_seen", "clickstream_months_seen_long")
# The feature store's columns, in order: keys, then features.
FEATURE_STORE_COLUMNS = (
    "loan_id",
    "customer_id",
    "application_month",
    "loan_amt",
    "tenure",
    *ATTRIBUTE_FEATURES,
    *FINANCIAL_FEATURES,
    "credit_history_months",
    *(loan_type_column(loan_type) for loan_type in LOAN_TYPES),
    "num_loan_types",
    "payment_spend_level",
    "payment_value_level",
    "debt_to_income",
    "emi_to_salary",
    "loan_to_income",
    "balance_to_salary",
    *(f"{c}_mean" for c in CLICKSTREAM_COLUMNS),
    *(f"{c}_mean_long" for c in CLICKSTREAM_COLUMNS),
    *CLICKSTREAM_COUNTS,
    "has_clickstream",
    "max_source_date",
)


def _loan_type_items(type_of_loan: pl.Expr) -> pl.Expr:
    """'Auto Loan, and Payday Loan' -> ['Auto Loan', 'Payday Loan']."""
    return type_of_loan.fill_null("").str.replace_all(r"(^|, )and ", "$1").str.split(", ")


def _loan_type_counts(items: pl.Expr) -> list[pl.Expr]:
    return [
        items.list.count_matches(loan_type).cast(pl.Int32).alias(loan_type_column(loan_type))
        for loan_type in LOAN_TYPES
    ]


def _count_listed(type_of_loan: pl.Expr) -> pl.Expr:
    items = type_of_loan.fill_null("").str.split(", ")
    return (items.list.len() - items.list.count_matches("")).cast(pl.Int32)


def _point_in_time(left: Frame, right: Frame, prefix: str) -> Frame:
    """Each loan's latest `right` row of its customer dated in its application month or before.

    The as-of key is the row's month (`<prefix>_month`); sorted by date, the last row of a
    month is its latest, and a backward as-of join takes the last row whose key matches.
    """
    return left.sort("application_month").join_asof(
        right.sort(f"{prefix}_date"),
        left_on="application_month",
        right_on=f"{prefix}_month",
        by="customer_id",
        strategy="backward",
        check_sortedness=False,
    )


_AT_APPLICATION = pl.col("mob") == 0
_APPLICATION_COLUMNS = (
    pl.col("loan_id"),
    pl.col("customer_id"),
    pl.col("partition_month").alias("application_month"),
    pl.col("snapshot_date").alias("loan_snapshot_date"),
    pl.col("loan_amt"),
    pl.col("tenure"),
)


def applications(loans: Frame) -> Frame:
    """The loans at application (mob 0): what a feature row describes."""
    return loans.filter(_AT_APPLICATION).select_seq(*_APPLICATION_COLUMNS)


@dataclass(frozen=True)
class _WindowPlan:
    """The expressions of `clickstream_window`, built once per window: on one application,
    building them in Python costs as much as running them."""

    in_window: pl.Expr
    short: pl.Expr
    short_values: tuple[pl.Expr, ...]
    aggregates: tuple[pl.Expr, ...]


@functools.cache
def _window_plan(lookback: ClickstreamLookback) -> _WindowPlan:
    def start(months: int) -> pl.Expr:
        return pl.col("application_month").dt.offset_by(f"-{months - 1}mo")

    # A row's month is what the windows compare, so a row of any day of month T counts for T:
    # the window runs from the 1st of its first month to before the 1st of month T + 1.
    # The short window as columns that are null outside it: every aggregate is then a plain
    # column reduction, which polars runs on its fast path (a filter inside an aggregate is
    # evaluated group by group). A mean skips nulls, so it is the mean over the window.
    return _WindowPlan(
        in_window=pl.col("snapshot_date").is_between(
            start(lookback.long_months),
            pl.col("application_month").dt.offset_by("1mo"),
            closed="left",
        ),
        short=(pl.col("snapshot_date") >= start(lookback.months)).alias("__short"),
        short_values=tuple(
            pl.when(pl.col("__short")).then(pl.col(c)).alias(f"__short_{c}")
            for c in CLICKSTREAM_COLUMNS
        ),
        aggregates=(
            *(pl.col(f"__short_{c}").mean().alias(f"{c}_mean") for c in CLICKSTREAM_COLUMNS),
            *(pl.col(c).mean().alias(f"{c}_mean_long") for c in CLICKSTREAM_COLUMNS),
            pl.col("__short").sum().cast(pl.Int32).alias("clickstream_months_seen"),
            pl.len().cast(pl.Int32).alias("clickstream_months_seen_long"),
            pl.col("snapshot_date").max().alias("clickstream_last_date"),
        ),
    )


def clickstream_window(
    applications: pl.DataFrame,
    clickstream: pl.DataFrame | pl.LazyFrame,
    lookback: ClickstreamLookback,
) -> pl.DataFrame:
    """Per loan and application month: clickstream means over both windows, months seen and
    the last month used.

    Per (loan, month), so a run over many months judges each loan within its own month, as a
    month-by-month run would. Given a lazy scan (the pipeline's silver files), polars streams
    it, so memory stays bounded and each clickstream row is read once for every month.
    """
    return _clickstream_aggregates(applications.lazy(), clickstream.lazy(), lookback).collect()


def _clickstream_aggregates(
    applications: pl.LazyFrame, clickstream: pl.LazyFrame, lookback: ClickstreamLookback
) -> pl.LazyFrame:
    plan = _window_plan(lookback)
    return (
        applications.select_seq("loan_id", "customer_id", "application_month")
        .join(
            clickstream.select_seq("customer_id", "snapshot_date", *CLICKSTREAM_COLUMNS),
            on="customer_id",
        )
        .filter(plan.in_window)
        .with_columns_seq(plan.short)
        .with_columns_seq(*plan.short_values)
        .group_by("loan_id", "application_month")
        .agg(*plan.aggregates)
    )


# assemble_features' expressions, built once: on one application, building them in Python
# costs as much as running them.
_ATTRIBUTE_COLUMNS = (
    pl.col("customer_id"),
    pl.col("snapshot_date").alias("attributes_date"),
    pl.col("snapshot_date").dt.month_start().alias("attributes_month"),
    *(pl.col(c) for c in ATTRIBUTE_FEATURES),
)
_FINANCIAL_COLUMNS = (
    pl.col("customer_id"),
    pl.col("snapshot_date").alias("financials_date"),
    pl.col("snapshot_date").dt.month_start().alias("financials_month"),
    *(
        pl.col(c)
        for c in (*FINANCIAL_FEATURES, "credit_history_age", "type_of_loan", "payment_behaviour")
    ),
)
_LISTED_LOAN_TYPES = _loan_type_items(pl.col("type_of_loan")).alias("__loan_types")
_BEHAVIOUR = pl.col("payment_behaviour").str.extract_groups(
    r"^(?<spend>High|Low)_spent_(?<value>Small|Medium|Large)_value_payments$"
)
_SEEN, _SEEN_LONG = (pl.col(c).fill_null(0) for c in CLICKSTREAM_COUNTS)
_DERIVED = (
    *_loan_type_counts(pl.col("__loan_types")),
    pl.col("credit_history_age").alias("credit_history_months"),
    _count_listed(pl.col("type_of_loan")).alias("num_loan_types"),
    _BEHAVIOUR.struct.field("spend").alias("payment_spend_level"),
    _BEHAVIOUR.struct.field("value").alias("payment_value_level"),
    (pl.col("outstanding_debt") / pl.col("annual_income")).alias("debt_to_income"),
    (pl.col("total_emi_per_month") / pl.col("monthly_inhand_salary")).alias("emi_to_salary"),
    (pl.col("loan_amt") / pl.col("annual_income")).alias("loan_to_income"),
    (pl.col("monthly_balance") / pl.col("monthly_inhand_salary")).alias("balance_to_salary"),
    _SEEN.alias("clickstream_months_seen"),
    _SEEN_LONG.alias("clickstream_months_seen_long"),
    (_SEEN > 0).cast(pl.Int8).alias("has_clickstream"),
    pl.max_horizontal(
        "loan_snapshot_date", "attributes_date", "financials_date", "clickstream_last_date"
    ).alias("max_source_date"),
)


def assemble_features(
    applications: Frame, attributes: Frame, financials: Frame, clickstream: Frame
) -> Frame:
    """Feature rows from applications, source rows and the clickstream aggregate.

    `attributes` and `financials` may hold rows of any months, later ones included: each loan
    takes its customer's latest row of its application month or before, so a run over many
    months gives exactly what a run per month gives, and the API (one application, its own
    rows) the same as the pipeline. The clickstream aggregate is joined on loan and month.
    """
    attributes = attributes.select_seq(*_ATTRIBUTE_COLUMNS)
    financials = financials.select_seq(*_FINANCIAL_COLUMNS)
    joined = _point_in_time(applications, attributes, "attributes")
    joined = _point_in_time(joined, financials, "financials")
    joined = joined.join(clickstream, on=["loan_id", "application_month"], how="left")
    derived = joined.with_columns_seq(_LISTED_LOAN_TYPES).with_columns_seq(*_DERIVED)
    return derived.select_seq(FEATURE_STORE_COLUMNS).sort("application_month", "loan_id")


def build_features(
    loans: pl.DataFrame | pl.LazyFrame,
    attributes: pl.DataFrame | pl.LazyFrame,
    financials: pl.DataFrame | pl.LazyFrame,
    clickstream: pl.DataFrame | pl.LazyFrame,
    lookback: ClickstreamLookback,
    collect: Callable[[pl.LazyFrame], pl.DataFrame] = pl.LazyFrame.collect,
) -> pl.DataFrame:
    """Feature rows for every loan whose mob-0 snapshot is in `loans`, as one query that
    `collect` runs (the scoring API runs it its own way)."""
    applied = applications(loans.lazy())
    clicks = _clickstream_aggregates(applied, clickstream.lazy(), lookback)
    return collect(assemble_features(applied, attributes.lazy(), financials.lazy(), clicks))

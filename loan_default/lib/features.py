"""The feature store: one row per loan at application (mob 0), using only data dated <= T.

Attributes and financials come from the customer's latest row at or before the application
month (an as-of join); clickstream is averaged over a trailing window of months ending at T.
A loan with no clickstream in the window gets nulls, `has_clickstream = 0` and a count of 0,
never zeros in the feature columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from loan_default.lib import query_plans

CLICKSTREAM_COLUMNS = tuple(f"fe_{i}" for i in range(1, 21))
LOAN_TYPES = (
    "Auto Loan",
    "Credit-Builder Loan",
    "Debt Consolidation Loan",
    "Home Equity Loan",
    "Mortgage Loan",
    "Not Specified",
    "Payday Loan",
    "Personal Loan",
    "Student Loan",
)
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


@dataclass(frozen=True)
class FeatureWindow:
    """Clickstream windows in months, both ending at the application month.

    The short window is the team's six-month average; the long one averages all history it
    covers, which steadies these noisy monthly signals further.
    """

    clickstream_months: int = 6
    long_clickstream_months: int = 24

    def __post_init__(self) -> None:
        if not 1 <= self.clickstream_months <= self.long_clickstream_months:
            raise ValueError(f"need 1 <= short <= long clickstream window, got {self}")


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


def _point_in_time(
    left: pl.DataFrame, right: pl.DataFrame, prefix: str, by: list[str]
) -> pl.DataFrame:
    """Each loan's latest `right` row (dated by `<prefix>_date`) on or before its application
    month."""
    return _sorted(left, "application_month").join_asof(
        _sorted(right, f"{prefix}_date"),
        left_on="application_month",
        right_on=f"{prefix}_date",
        by=by,
        strategy="backward",
        check_sortedness=False,
    )


def _sorted(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """`frame` sorted by `column`; as it is when it already is (a request's single row)."""
    return frame if frame[column].is_sorted() else frame.sort(column)


def applications(loans: pl.DataFrame) -> pl.DataFrame:
    """The loans at application (mob 0): what a feature row describes."""
    return query_plans.select(
        loans.filter(pl.col("mob") == 0),
        "loan_id",
        "customer_id",
        application_month=pl.col("partition_month"),
        loan_snapshot_date=pl.col("snapshot_date"),
        loan_amt=pl.col("loan_amt"),
        tenure=pl.col("tenure"),
    )


def clickstream_window(
    applications: pl.DataFrame, clickstream: pl.DataFrame | pl.LazyFrame, window: FeatureWindow
) -> pl.DataFrame:
    """Per loan and application month: clickstream means over both windows, months seen and
    the last month used.

    Per (loan, month), so a run over many months judges each loan within its own month, as a
    month-by-month run would. Given a lazy scan (the pipeline's silver files), polars streams
    it, so memory stays bounded and each clickstream row is read once for every month.
    """

    def start(months: int) -> pl.Expr:
        return pl.col("application_month").dt.offset_by(f"-{months - 1}mo")

    in_window = (
        applications.lazy()
        .select_seq("loan_id", "customer_id", "application_month")
        .join(
            clickstream.lazy().select_seq("customer_id", "snapshot_date", *CLICKSTREAM_COLUMNS),
            on="customer_id",
        )
        .filter(
            pl.col("snapshot_date").is_between(
                start(window.long_clickstream_months), pl.col("application_month")
            )
        )
    )
    # The short window as columns that are null outside it: every aggregate below is then a
    # plain column reduction, which polars runs on its fast path (a filter inside an aggregate
    # is evaluated group by group). A mean skips nulls, so it is the mean over the window.
    # Projections run in sequence, as in clean(): streaming splits a large input by rows.
    short = pl.col("snapshot_date") >= start(window.clickstream_months)
    aggregated = (
        in_window.with_columns_seq(
            __short=short,
            **{f"__short_{c}": pl.when(short).then(pl.col(c)) for c in CLICKSTREAM_COLUMNS},
        )
        .group_by("loan_id", "application_month")
        .agg(
            *(pl.col(f"__short_{c}").mean().alias(f"{c}_mean") for c in CLICKSTREAM_COLUMNS),
            *(pl.col(c).mean().alias(f"{c}_mean_long") for c in CLICKSTREAM_COLUMNS),
            clickstream_months_seen=pl.col("__short").sum().cast(pl.Int32),
            clickstream_months_seen_long=pl.len().cast(pl.Int32),
            clickstream_last_date=pl.col("snapshot_date").max(),
        )
    )
    if isinstance(clickstream, pl.LazyFrame):
        return aggregated.collect(engine="streaming")
    return query_plans.collect(aggregated, clickstream.height)


def assemble_features(
    applications: pl.DataFrame,
    attributes: pl.DataFrame,
    financials: pl.DataFrame,
    clickstream: pl.DataFrame,
    per_month: bool = False,
) -> pl.DataFrame:
    """Feature rows from applications, source rows and the clickstream aggregate.

    `per_month` joins each loan only to the attributes and financials of its own month (they
    carry `partition_month`), so a run over many months gives exactly what a run per month
    gives. The clickstream aggregate is always joined on loan and month.
    """
    by = ["customer_id"]
    attribute_columns = [
        "customer_id",
        pl.col("snapshot_date").alias("attributes_date"),
        *ATTRIBUTE_FEATURES,
    ]
    financial_columns = [
        "customer_id",
        pl.col("snapshot_date").alias("financials_date"),
        *FINANCIAL_FEATURES,
        "credit_history_age",
        "type_of_loan",
        "payment_behaviour",
    ]
    if per_month:
        month = pl.col("partition_month").alias("application_month")
        attributes = query_plans.select(attributes, *attribute_columns, month)
        financials = query_plans.select(financials, *financial_columns, month)
        by = ["customer_id", "application_month"]
    else:
        attributes = query_plans.select(attributes, attribute_columns)
        financials = query_plans.select(financials, financial_columns)
    joined = _point_in_time(applications, attributes, "attributes", by)
    joined = _point_in_time(joined, financials, "financials", by)
    joined = query_plans.with_columns(
        joined.join(clickstream, on=["loan_id", "application_month"], how="left"),
        __loan_types=_loan_type_items(pl.col("type_of_loan")),
    )
    behaviour = pl.col("payment_behaviour").str.extract_groups(
        r"^(?<spend>High|Low)_spent_(?<value>Small|Medium|Large)_value_payments$"
    )
    seen, seen_long = (pl.col(c).fill_null(0) for c in CLICKSTREAM_COUNTS)
    derived = query_plans.with_columns(
        joined,
        *_loan_type_counts(pl.col("__loan_types")),
        credit_history_months=pl.col("credit_history_age"),
        num_loan_types=_count_listed(pl.col("type_of_loan")),
        payment_spend_level=behaviour.struct.field("spend"),
        payment_value_level=behaviour.struct.field("value"),
        debt_to_income=pl.col("outstanding_debt") / pl.col("annual_income"),
        emi_to_salary=pl.col("total_emi_per_month") / pl.col("monthly_inhand_salary"),
        loan_to_income=pl.col("loan_amt") / pl.col("annual_income"),
        balance_to_salary=pl.col("monthly_balance") / pl.col("monthly_inhand_salary"),
        clickstream_months_seen=seen,
        clickstream_months_seen_long=seen_long,
        has_clickstream=(seen > 0).cast(pl.Int8),
        max_source_date=pl.max_horizontal(
            "loan_snapshot_date", "attributes_date", "financials_date", "clickstream_last_date"
        ),
    )
    # Picked by name: a lookup, where a select would plan an expression per column.
    features = derived[list(FEATURE_STORE_COLUMNS)]
    return query_plans.sort(features, "application_month", "loan_id")


def build_features(
    loans: pl.DataFrame,
    attributes: pl.DataFrame,
    financials: pl.DataFrame,
    clickstream: pl.DataFrame,
    window: FeatureWindow,
) -> pl.DataFrame:
    """Feature rows for every loan whose mob-0 snapshot is in `loans`."""
    applied = applications(loans)
    return assemble_features(
        applied, attributes, financials, clickstream_window(applied, clickstream, window)
    )

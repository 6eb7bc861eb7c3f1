"""Feature logic on hand-built frames: point-in-time joins, the clickstream window, ratios."""

import random
from datetime import date

import polars as pl
import pytest

from loan_default.lib.gold.features import (
    CLICKSTREAM_COLUMNS,
    FINANCIAL_FEATURES,
    applications,
    assemble_features,
    build_features,
    clickstream_window,
)
from loan_default.lib.gold.lookback import ClickstreamLookback

T = date(2024, 6, 1)


def loans(*customers: tuple[str, date]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "loan_id": [f"{c}_L" for c, _ in customers],
            "customer_id": [c for c, _ in customers],
            "partition_month": [m for _, m in customers],
            "snapshot_date": [m for _, m in customers],
            "mob": [0] * len(customers),
            "loan_amt": [10_000.0] * len(customers),
            "tenure": [10] * len(customers),
        }
    )


def attributes(rows: list[tuple[str, date, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "snapshot_date": [r[1] for r in rows],
            "age": [r[2] for r in rows],
            "occupation": ["Lawyer"] * len(rows),
        }
    )


def financials(rows: list[tuple[str, date, float]]) -> pl.DataFrame:
    base = {c: [1.0] * len(rows) for c in FINANCIAL_FEATURES}
    base.update(
        customer_id=[r[0] for r in rows],
        snapshot_date=[r[1] for r in rows],
        annual_income=[r[2] for r in rows],
        outstanding_debt=[r[2] / 4 for r in rows],
        monthly_inhand_salary=[2_000.0] * len(rows),
        total_emi_per_month=[500.0] * len(rows),
        credit_mix=["Good"] * len(rows),
        payment_of_min_amount=["No"] * len(rows),
        credit_history_age=[129] * len(rows),
        type_of_loan=["Auto Loan, Payday Loan, and Auto Loan"] * len(rows),
        payment_behaviour=["Low_spent_Large_value_payments"] * len(rows),
    )
    return pl.DataFrame(base)


def clickstream(rows: list[tuple[str, date, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "snapshot_date": [r[1] for r in rows],
            **{c: [r[2] for r in rows] for c in CLICKSTREAM_COLUMNS},
        }
    )


def test_only_rows_dated_on_or_before_application_are_used():
    features = build_features(
        loans(("A", T)),
        attributes([("A", date(2024, 5, 1), 30), ("A", T, 31), ("A", date(2024, 7, 1), 99)]),
        financials([("A", T, 40_000.0), ("A", date(2024, 8, 1), 1.0)]),
        clickstream(
            [
                ("A", date(2023, 12, 1), 1000),  # before the 6-month window
                ("A", date(2024, 1, 1), 10),
                ("A", date(2024, 6, 1), 20),
                ("A", date(2024, 7, 1), 5000),  # after application: leakage if used
            ]
        ),
        ClickstreamLookback(months=6, long_months=12),
    )
    row = features.row(0, named=True)
    assert row["age"] == 31
    assert row["annual_income"] == 40_000.0
    assert row["fe_1_mean"] == pytest.approx(15.0)
    assert row["clickstream_months_seen"] == 2
    # The long window reaches 2023-12 too, but never 2024-07.
    assert row["fe_1_mean_long"] == pytest.approx((1000 + 10 + 20) / 3)
    assert row["clickstream_months_seen_long"] == 3
    assert row["has_clickstream"] == 1
    assert row["max_source_date"] == T


def test_window_length_is_configurable():
    click = clickstream([("A", date(2024, 4, 1), 10), ("A", T, 20)])
    features = build_features(
        loans(("A", T)),
        attributes([("A", T, 30)]),
        financials([("A", T, 40_000.0)]),
        click,
        ClickstreamLookback(months=1, long_months=2),
    )
    assert features["fe_1_mean"].to_list() == [20.0]
    assert features["clickstream_months_seen"].to_list() == [1]
    # 2024-04 lies three months back: outside a two-month long window as well.
    assert features["fe_1_mean_long"].to_list() == [20.0]
    with pytest.raises(ValueError):
        ClickstreamLookback(months=7, long_months=6)


def test_missing_clickstream_is_null_with_indicator_not_zero():
    features = build_features(
        loans(("A", T)),
        attributes([("A", T, 30)]),
        financials([("A", T, 40_000.0)]),
        clickstream([("B", T, 7)]),
        ClickstreamLookback(),
    )
    row = features.row(0, named=True)
    assert row["fe_1_mean"] is None
    assert row["has_clickstream"] == 0
    assert row["clickstream_months_seen"] == 0


def test_engineered_features_by_hand():
    features = build_features(
        loans(("A", T)),
        attributes([("A", T, 30)]),
        financials([("A", T, 40_000.0)]),
        clickstream([]).cast({"snapshot_date": pl.Date, "customer_id": pl.String}),
        ClickstreamLookback(),
    )
    row = features.row(0, named=True)
    assert row["credit_history_months"] == 129
    assert row["loan_type_auto_loan"] == 2
    assert row["loan_type_payday_loan"] == 1
    assert row["loan_type_student_loan"] == 0
    assert row["num_loan_types"] == 3
    assert row["payment_spend_level"] == "Low"
    assert row["payment_value_level"] == "Large"
    assert row["debt_to_income"] == pytest.approx(0.25)
    assert row["emi_to_salary"] == pytest.approx(0.25)
    assert row["loan_to_income"] == pytest.approx(0.25)
    assert "ssn" not in features.columns and "name" not in features.columns


def test_only_mob_zero_rows_become_applications():
    book = pl.concat(
        [
            loans(("A", T)),
            loans(("B", date(2024, 1, 1))).with_columns(mob=pl.lit(5, dtype=pl.Int64)),
        ]
    )
    features = build_features(
        book,
        attributes([("A", T, 30), ("B", date(2024, 1, 1), 40)]),
        financials([("A", T, 40_000.0), ("B", date(2024, 1, 1), 1.0)]),
        clickstream([("A", T, 1)]),
        ClickstreamLookback(),
    )
    assert features["loan_id"].to_list() == ["A_L"]


def test_earlier_and_mid_month_rows_are_used_later_rows_are_not():
    """Dates compare by month: a row of any day of month T, or of an earlier month, is on or
    before T; of several, the latest date wins; a row of a later month is never used."""
    features = build_features(
        loans(("EARLIER", T), ("MID", T), ("TWO", T), ("LATER", T)),
        attributes(
            [
                ("EARLIER", date(2024, 5, 1), 41),  # a month before the loan
                ("MID", date(2024, 6, 17), 42),  # mid-month, in the loan's month
                ("TWO", date(2024, 6, 3), 1),
                ("TWO", date(2024, 6, 17), 43),  # the later of two in the month
                ("TWO", date(2024, 7, 1), 99),  # a month after: leakage if used
                ("LATER", date(2024, 7, 1), 99),
            ]
        ),
        financials(
            [
                ("EARLIER", date(2024, 4, 20), 41_000.0),
                ("MID", date(2024, 6, 30), 42_000.0),
                ("TWO", date(2024, 6, 17), 43_000.0),
                ("TWO", date(2024, 6, 2), 1.0),
                ("LATER", date(2024, 7, 2), 1.0),
            ]
        ),
        clickstream([]).cast({"snapshot_date": pl.Date, "customer_id": pl.String}),
        ClickstreamLookback(),
    )
    rows = {r["customer_id"]: r for r in features.iter_rows(named=True)}
    for customer, age, income in (("EARLIER", 41, 41_000.0), ("MID", 42, 42_000.0)):
        assert rows[customer]["age"] == age
        assert rows[customer]["occupation"] == "Lawyer"
        assert rows[customer]["annual_income"] == income
        assert rows[customer]["debt_to_income"] == pytest.approx(0.25)
        assert rows[customer]["credit_history_months"] == 129
    assert rows["TWO"]["age"] == 43 and rows["TWO"]["annual_income"] == 43_000.0
    assert rows["LATER"]["age"] is None and rows["LATER"]["annual_income"] is None
    # max_source_date is the newest date used, which may lie after the 1st of month T.
    assert rows["EARLIER"]["max_source_date"] == T
    assert rows["MID"]["max_source_date"] == date(2024, 6, 30)
    assert rows["TWO"]["max_source_date"] == date(2024, 6, 17)
    assert rows["LATER"]["max_source_date"] == T


def test_mid_month_clickstream_counts_in_its_own_month():
    features = build_features(
        loans(("A", T)),
        attributes([("A", T, 30)]),
        financials([("A", T, 40_000.0)]),
        clickstream(
            [
                ("A", date(2023, 12, 20), 1000),  # month T-6: outside the short window
                ("A", date(2024, 1, 15), 10),  # month T-5: inside
                ("A", date(2024, 6, 17), 20),  # month T itself
                ("A", date(2024, 7, 1), 5000),  # after T
            ]
        ),
        ClickstreamLookback(months=6, long_months=12),
    )
    row = features.row(0, named=True)
    assert row["fe_1_mean"] == pytest.approx(15.0)
    assert row["clickstream_months_seen"] == 2
    assert row["fe_1_mean_long"] == pytest.approx((1000 + 10 + 20) / 3)
    assert row["clickstream_months_seen_long"] == 3
    assert row["max_source_date"] == date(2024, 6, 17)


def test_bulk_path_equals_month_by_month_build_features():
    """The backfill path (streamed clickstream window, one as-of join over all months) gives
    exactly what build_features gives month by month, down to the last bit of every mean, with
    source rows dated in earlier months, mid-month, and after the application."""
    rng = random.Random(11)
    months = [date(2023 + (m // 12), m % 12 + 1, 1) for m in range(30)]
    customers = [f"C{i}" for i in range(60)]
    book, attrs, fins, clicks = [], [], [], []

    def some_day(month: date) -> date:
        return month.replace(day=rng.choice([1, 1, 9, 28]))

    for number, customer in enumerate(customers):
        index = rng.randrange(3, len(months))
        book.append((customer, months[index]))
        # Dated in the loan's month or up to two months before, on any day of the month.
        attrs.append((customer, some_day(months[index - rng.randint(0, 2)]), rng.randint(18, 70)))
        fins.append((customer, some_day(months[index - rng.randint(0, 2)]), rng.uniform(1e4, 9e4)))
        if index + 1 < len(months):  # a newer row after the application: never used for it
            attrs.append((customer, some_day(months[index + 1]), 99))
            fins.append((customer, some_day(months[index + 1]), 1.0))
        for month in months:
            if rng.random() < 0.7 and number % 7:
                clicks.append((customer, some_day(month), rng.randint(-50, 500)))
    in_month = pl.col("snapshot_date").dt.month_start()
    lms = loans(*book).with_columns(partition_month=in_month)
    attributes_ = attributes(attrs).with_columns(partition_month=in_month)
    financials_ = financials(fins).with_columns(partition_month=in_month)
    clicks_ = (
        clickstream(clicks)
        .with_columns(pl.col(f"fe_{i}") * i for i in range(1, 21))
        .with_columns(partition_month=in_month)
    )
    lookback = ClickstreamLookback(months=4, long_months=9)

    def up_to(frame: pl.DataFrame, month: date) -> pl.DataFrame:
        return frame.filter(pl.col("partition_month") <= month)

    expected = pl.concat(
        build_features(
            lms.filter(pl.col("partition_month") == month),
            up_to(attributes_, month),
            up_to(financials_, month),
            up_to(clicks_, month),
            lookback,
        )
        for month in months
    )
    applied = applications(lms)
    # As the pipeline reads silver: a lazy scan, streamed; attributes of every month at once.
    aggregate = clickstream_window(applied, clicks_.lazy(), lookback)
    bulk = assemble_features(applied, attributes_, financials_, aggregate)
    assert bulk.height == len(customers)
    assert bulk.equals(expected, null_equal=True)
    assert bulk["has_clickstream"].sum() > 0 and (bulk["has_clickstream"] == 0).sum() > 0
    # Every customer has rows on or before its application, whatever their day: none is null,
    # and none is the newer row.
    assert bulk["age"].null_count() == 0 and bulk["annual_income"].null_count() == 0
    assert 99 not in bulk["age"].to_list() and bulk["annual_income"].min() > 1.0
    assert (bulk["max_source_date"].dt.month_start() <= bulk["application_month"]).all()

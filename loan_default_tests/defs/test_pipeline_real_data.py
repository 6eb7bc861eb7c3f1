"""The whole data layer on the real dataset: the facts in ../shared/data/README.md."""

from datetime import date

import duckdb
import polars as pl
import pytest

from loan_default.lib.ingest.sources import PERSONAL_COLUMNS, SOURCES


def query(database, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).pl()


def test_label_store_matches_the_course_label(real_warehouse):
    database, _ = real_warehouse
    labels = query(database, "select * from gold.label_store")
    assert labels.height == 12_500
    assert labels["loan_id"].n_unique() == 12_500
    assert labels["label_month"].n_unique() == 25
    assert labels["label_month"].min() == date(2023, 7, 1)
    assert labels["label_month"].max() == date(2025, 7, 1)
    assert labels["label"].sum() == 3_602
    assert round(labels["label"].mean() * 100, 2) == 28.82
    assert labels["label_def"].unique().to_list() == ["30dpd_6mob"]
    assert (labels["mob"] == 6).all()


def test_feature_store_has_one_application_row_per_loan(real_warehouse):
    database, _ = real_warehouse
    features = query(database, "select * from gold.feature_store")
    assert features.height == 12_500
    assert features["loan_id"].n_unique() == 12_500
    assert features["application_month"].n_unique() == 25
    assert features["application_month"].min() == date(2023, 1, 1)
    assert features["application_month"].max() == date(2025, 1, 1)
    assert (features["max_source_date"] <= features["application_month"]).all()


def test_clickstream_gap_is_missing_not_zero(real_warehouse):
    database, _ = real_warehouse
    no_click = query(database, "select * from gold.feature_store where has_clickstream = 0")
    assert no_click.height == 3_526
    assert no_click["application_month"].min() == date(2024, 7, 1)
    assert no_click["fe_1_mean"].null_count() == 3_526
    assert (no_click["clickstream_months_seen"] == 0).all()
    seen = query(
        database,
        "select application_month, max(clickstream_months_seen) as most "
        "from gold.feature_store group by 1 order by 1",
    )
    # A six-month window fills up from the sixth month of data on.
    assert seen.filter(pl.col("application_month") == date(2023, 1, 1))["most"].item() == 1
    assert seen.filter(pl.col("application_month") == date(2023, 6, 1))["most"].item() == 6


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_rows_are_conserved_per_table_and_month(real_warehouse, source):
    database, _ = real_warehouse
    unbalanced = query(
        database,
        f"""
        with b as (select partition_month, count(*) n from bronze.{source} group by 1),
             s as (select partition_month, count(*) n from silver.{source} group by 1),
             q as (select partition_month, count(*) n from silver.quarantine_{source} group by 1)
        select b.partition_month, b.n, coalesce(s.n, 0) + coalesce(q.n, 0) as accounted
        from b full join s using (partition_month) full join q using (partition_month)
        where coalesce(b.n, 0) <> coalesce(s.n, 0) + coalesce(q.n, 0)
        """,
    )
    assert unbalanced.is_empty(), unbalanced
    raw_rows = {
        "lms_loan_daily": 137_500,
        "features_attributes": 12_500,
        "features_financials": 12_500,
        "feature_clickstream": 215_376,
    }
    assert (
        query(database, f"select count(*) n from bronze.{source}")["n"].item() == raw_rows[source]
    )


def test_no_personal_data_in_gold_or_silver(real_warehouse):
    database, _ = real_warehouse
    columns = query(
        database,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('silver', 'gold')",
    )
    assert not columns.filter(
        pl.col("column_name").str.to_lowercase().is_in(PERSONAL_COLUMNS)
    ).height
    ssn_like = query(
        database,
        "select count(*) n from gold.feature_store where "
        "regexp_matches(cast(columns(*) as varchar), '^\\d{3}-\\d{2}-\\d{4}$')",
    )
    assert ssn_like["n"].item() == 0


def test_every_check_ran_and_passed(real_warehouse):
    _, result = real_warehouse
    evaluations = result.get_asset_check_evaluations()
    # Bronze: 2 per source (rows outside the months, month volume); silver: 5 per source,
    # months_present on 3, installment_sequence on the loan book; gold: 5 + 5.
    assert len(evaluations) == 4 * 2 + 4 * 5 + 3 + 1 + 5 + 5
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
    assert failed == []


def test_ui_metadata_on_materializations(real_warehouse):
    _, result = real_warehouse
    by_key = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    assert by_key["gold/label_store"]["dagster/row_count"].value == 12_500
    schema = by_key["gold/feature_store"]["dagster/column_schema"].value
    described = {c.name: c.description for c in schema.columns}
    assert all(described.values()), [n for n, d in described.items() if not d]

"""Gold: the label store and the point-in-time feature store, one monthly partition each."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import polars as pl

from loan_default import settings
from loan_default.defs.checks import ERROR, WARN, check_result, check_spec
from loan_default.defs.gold.upstream_months import require_upstream_months
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import backfill_policy, month_span, monthly_partitions, months_of
from loan_default.defs.silver.assets import silver_asset_key, silver_table
from loan_default.lib import data_quality
from loan_default.lib.gold.features import (
    applications,
    assemble_features,
    clickstream_window,
)
from loan_default.lib.gold.labels import LABEL_STORE_COLUMNS, build_labels
from loan_default.lib.ingest.raw_reader import MONTH_COLUMN as MONTH
from loan_default.lib.ingest.sources import (
    FEATURE_CLICKSTREAM,
    FEATURES_ATTRIBUTES,
    FEATURES_FINANCIALS,
    LMS_LOAN_DAILY,
)
from loan_default.lib.months import add_months, month_range
from loan_default.lib.storage.table_store import TableStore
from loan_default.lib.thresholds import load_thresholds

LABEL_STORE = dg.AssetKey(["gold", "label_store"])
FEATURE_STORE = dg.AssetKey(["gold", "feature_store"])
LABEL_TABLE, FEATURE_TABLE = "gold.label_store", "gold.feature_store"

EVERY_MONTH_UP_TO_T = dg.TimeWindowPartitionMapping(
    start_offset=-len(month_range(settings.FIRST_MONTH, settings.LAST_MONTH)),
    end_offset=0,
    allow_nonexistent_upstream_partitions=True,
)

# Gold must be materialized by 09:00 UTC on the 5th of each month (within the 28 days before).
monthly_freshness = dg.FreshnessPolicy.cron(
    deadline_cron="0 9 5 * *", lower_bound_delta=timedelta(days=28)
)
gold_common = dict(
    group_name="gold",
    partitions_def=monthly_partitions,
    backfill_policy=backfill_policy,
    kinds={"duckdb", "polars"},
    owners=settings.OWNERS,
    pool="duckdb",
    freshness_policy=monthly_freshness,
)
LABEL_CHECKS = {
    "schema": ("columns as declared in the label contract", True),
    "keys_unique": ("unique (loan_id, label_month)", True),
    "keys_not_null": ("no null loan_id or label", True),
    "label_rate": ("default rate within the sane band", False),
    "no_personal_data": ("no SSN or name column", True),
}
FEATURE_CHECKS = {
    "keys_unique": ("one row per loan_id", True),
    "keys_not_null": ("no null loan_id", True),
    "point_in_time": ("no source row dated after the application month", True),
    "no_personal_data": ("no SSN or name column", True),
    "value_ranges": ("features within plausible ranges", False),
}


def _specs(asset: dg.AssetKey, checks: dict) -> list[dg.AssetCheckSpec]:
    return [check_spec(asset, name, text, blocking) for name, (text, blocking) in checks.items()]


def _results(asset: dg.AssetKey, checks: dict, outcomes: dict) -> Iterator[dg.AssetCheckResult]:
    for name, (_, blocking) in checks.items():
        outcome = data_quality.across_months(outcomes[name])
        yield check_result(asset, name, outcome, ERROR if blocking else WARN)


@dg.asset(
    key=LABEL_STORE,
    deps=[silver_asset_key(LMS_LOAN_DAILY)],
    description=f"Per label month T: loans at month on book {settings.LABEL.mob} and whether "
    f"they defaulted: {settings.LABEL.text}.",
    check_specs=_specs(LABEL_STORE, LABEL_CHECKS),
    **gold_common,
)
def label_store(
    context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[TableStore]
) -> Iterator:
    definition = settings.LABEL
    band = load_thresholds()["data_quality"]["label_rate"]
    window, months = month_span(context), months_of(context)
    # Only the label mob's rows: every month of the run in one read.
    loans = warehouse.read(
        silver_table(LMS_LOAN_DAILY), MONTH, *window, where=f"mob = {int(definition.mob)}"
    )
    labels = build_labels(loans, definition)
    warehouse.replace(LABEL_TABLE, labels, "label_month", *window)
    metadata = table_metadata(warehouse.describe(LABEL_TABLE, "label_month", *window))
    defaults = int(labels["label"].sum() or 0)
    keys = labels.select("label_month", "loan_id", "label")
    outcomes = {
        "schema": dict.fromkeys(months, data_quality.schema_matches(labels, LABEL_STORE_COLUMNS)),
        "keys_unique": data_quality.by_month(
            months,
            "label_month",
            lambda rows: data_quality.keys_unique(rows, ["loan_id", "label_month"]),
            keys,
        ),
        "keys_not_null": data_quality.by_month(
            months,
            "label_month",
            lambda rows: data_quality.keys_not_null(rows, ["loan_id", "label"]),
            keys,
        ),
        "label_rate": data_quality.by_month(
            months,
            "label_month",
            lambda rows: data_quality.rate_in_band(rows, "label", band["low"], band["high"]),
            keys,
        ),
        "no_personal_data": dict.fromkeys(months, data_quality.no_personal_data(labels)),
    }
    yield dg.MaterializeResult(
        metadata={**metadata, "label_def": definition.name, "defaults": defaults}
    )
    yield from _results(LABEL_STORE, LABEL_CHECKS, outcomes)


@dg.asset(
    key=FEATURE_STORE,
    deps=[
        silver_asset_key(LMS_LOAN_DAILY),
        # Attributes and financials: the customer's latest row of month T or before.
        *(
            dg.AssetDep(silver_asset_key(source), partition_mapping=EVERY_MONTH_UP_TO_T)
            for source in (FEATURES_ATTRIBUTES, FEATURES_FINANCIALS)
        ),
        dg.AssetDep(
            silver_asset_key(FEATURE_CLICKSTREAM),
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-(settings.CLICKSTREAM_LOOKBACK.long_months - 1),
                end_offset=0,
                allow_nonexistent_upstream_partitions=True,
            ),
        ),
    ],
    description=(
        "Per application month T: one row per loan at mob 0 with features known at T; "
        f"clickstream averaged over the {settings.CLICKSTREAM_LOOKBACK.months} and "
        f"{settings.CLICKSTREAM_LOOKBACK.long_months} months up to T."
    ),
    check_specs=_specs(FEATURE_STORE, FEATURE_CHECKS),
    **gold_common,
)
def feature_store(
    context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[TableStore]
) -> Iterator:
    require_upstream_months(context, silver_asset_key(LMS_LOAN_DAILY))
    lookback = settings.CLICKSTREAM_LOOKBACK
    ranges = {
        **load_thresholds()["data_quality"]["feature_value_ranges"],
        "clickstream_months_seen": [0, lookback.months],
        "clickstream_months_seen_long": [0, lookback.long_months],
    }
    span, months = month_span(context), months_of(context)
    # Every month of the run at once; the clickstream window streams over silver,
    # reading each clickstream row once instead of once per month that uses it.
    applied = applications(
        warehouse.read(silver_table(LMS_LOAN_DAILY), MONTH, *span, where="mob = 0")
    )
    # Attributes and financials of every month up to the run's last, one read each: a
    # loan takes its customer's latest row of its month or before (an as-of join).
    attributes, financials = (
        warehouse.read(silver_table(source), MONTH, settings.FIRST_MONTH, span[1])
        for source in (FEATURES_ATTRIBUTES, FEATURES_FINANCIALS)
    )
    first = add_months(span[0], 1 - lookback.long_months)
    clickstream = warehouse.scan(silver_table(FEATURE_CLICKSTREAM), MONTH, first, span[1])
    clicks = clickstream_window(applied, clickstream, lookback)
    features = assemble_features(applied, attributes, financials, clicks)
    warehouse.replace(FEATURE_TABLE, features, "application_month", *span)
    metadata = table_metadata(warehouse.describe(FEATURE_TABLE, "application_month", *span))
    without_clickstream = int((features["has_clickstream"] == 0).sum())
    month = "application_month"
    # Sources compare by month: a row dated any day of month T is on or before T.
    keys = features.select(month, "loan_id", pl.col("max_source_date").dt.month_start())
    outcomes = {
        "keys_unique": data_quality.by_month(
            months, month, lambda rows: data_quality.keys_unique(rows, ["loan_id"]), keys
        ),
        "keys_not_null": data_quality.by_month(
            months, month, lambda rows: data_quality.keys_not_null(rows, ["loan_id"]), keys
        ),
        "point_in_time": data_quality.by_month(
            months,
            month,
            lambda rows: data_quality.no_future_sources(rows, month, "max_source_date"),
            keys,
        ),
        "no_personal_data": dict.fromkeys(months, data_quality.no_personal_data(features)),
        "value_ranges": data_quality.by_month(
            months,
            month,
            lambda rows: data_quality.values_in_range(rows, ranges),
            features.select(month, *(c for c in ranges if c != month)),
        ),
    }
    yield dg.MaterializeResult(
        metadata={
            **metadata,
            "clickstream_window_months": lookback.months,
            "loans_without_clickstream": without_clickstream,
        }
    )
    yield from _results(FEATURE_STORE, FEATURE_CHECKS, outcomes)

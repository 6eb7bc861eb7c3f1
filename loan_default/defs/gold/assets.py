"""Gold: the label store and the point-in-time feature store, one monthly partition each."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from loan_default import settings
from loan_default.defs.checks import ERROR, WARN, check_result, check_spec
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import monthly_partitions, months_of, single_run, window_of
from loan_default.defs.silver.assets import silver_asset_key, silver_table
from loan_default.lib import data_quality
from loan_default.lib.features import FeatureWindow, build_features
from loan_default.lib.labels import LABEL_STORE_COLUMNS, LabelDefinition, build_labels
from loan_default.lib.months import add_months
from loan_default.lib.sources import (
    FEATURE_CLICKSTREAM,
    FEATURES_ATTRIBUTES,
    FEATURES_FINANCIALS,
    LMS_LOAN_DAILY,
)
from loan_default.lib.thresholds import load_thresholds
from loan_default.lib.warehouse import read_months, replace_months

LABEL_STORE = dg.AssetKey(["gold", "label_store"])
FEATURE_STORE = dg.AssetKey(["gold", "feature_store"])
LABEL_TABLE, FEATURE_TABLE = "gold.label_store", "gold.feature_store"
FEATURE_WINDOW = FeatureWindow(
    clickstream_months=settings.CLICKSTREAM_WINDOW_MONTHS,
    long_clickstream_months=settings.CLICKSTREAM_LONG_WINDOW_MONTHS,
)

# Gold must be materialized by 09:00 UTC on the 5th of each month (within the 28 days before).
monthly_freshness = dg.FreshnessPolicy.cron(
    deadline_cron="0 9 5 * *", lower_bound_delta=timedelta(days=28)
)
gold_common = dict(
    group_name="gold",
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
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


class LabelStoreConfig(dg.Config):
    """The label definition: default when dpd >= dpd_threshold at month on book `mob`."""

    dpd_threshold: int = 30
    mob: int = 6


@dg.asset(
    key=LABEL_STORE,
    deps=[silver_asset_key(LMS_LOAN_DAILY)],
    description="Per label month T: loans at the label mob and whether they defaulted.",
    check_specs=_specs(LABEL_STORE, LABEL_CHECKS),
    **gold_common,
)
def label_store(
    context: dg.AssetExecutionContext, config: LabelStoreConfig, warehouse: DuckDBResource
) -> Iterator:
    definition = LabelDefinition(dpd_threshold=config.dpd_threshold, mob=config.mob)
    band = load_thresholds()["data_quality"]["label_rate"]
    outcomes: dict[str, dict] = {name: {} for name in LABEL_CHECKS}
    defaults = 0
    with warehouse.get_connection() as connection:
        for month in months_of(context):
            next_month = add_months(month, 1)
            loans = read_months(
                connection, silver_table(LMS_LOAN_DAILY), "partition_month", month, next_month
            )
            labels = build_labels(loans, definition)
            replace_months(connection, LABEL_TABLE, labels, "label_month", month, next_month)
            defaults += int(labels["label"].sum() or 0)
            outcomes["schema"][month] = data_quality.schema_matches(labels, LABEL_STORE_COLUMNS)
            outcomes["keys_unique"][month] = data_quality.keys_unique(
                labels, ["loan_id", "label_month"]
            )
            outcomes["keys_not_null"][month] = data_quality.keys_not_null(
                labels, ["loan_id", "label"]
            )
            outcomes["label_rate"][month] = data_quality.rate_in_band(
                labels, "label", band["low"], band["high"]
            )
            outcomes["no_personal_data"][month] = data_quality.no_personal_data(labels)
        metadata = table_metadata(connection, LABEL_TABLE, "label_month", window_of(context))
    yield dg.MaterializeResult(
        metadata={**metadata, "label_def": definition.name, "defaults": defaults}
    )
    yield from _results(LABEL_STORE, LABEL_CHECKS, outcomes)


@dg.asset(
    key=FEATURE_STORE,
    deps=[
        silver_asset_key(LMS_LOAN_DAILY),
        silver_asset_key(FEATURES_ATTRIBUTES),
        silver_asset_key(FEATURES_FINANCIALS),
        dg.AssetDep(
            silver_asset_key(FEATURE_CLICKSTREAM),
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-(FEATURE_WINDOW.long_clickstream_months - 1),
                end_offset=0,
                allow_nonexistent_upstream_partitions=True,
            ),
        ),
    ],
    description=(
        "Per application month T: one row per loan at mob 0 with features known at T; "
        f"clickstream averaged over the {settings.CLICKSTREAM_WINDOW_MONTHS} and "
        f"{settings.CLICKSTREAM_LONG_WINDOW_MONTHS} months up to T."
    ),
    check_specs=_specs(FEATURE_STORE, FEATURE_CHECKS),
    **gold_common,
)
def feature_store(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> Iterator:
    window = FEATURE_WINDOW
    ranges = {
        **load_thresholds()["data_quality"]["feature_value_ranges"],
        "clickstream_months_seen": [0, window.clickstream_months],
        "clickstream_months_seen_long": [0, window.long_clickstream_months],
    }
    outcomes: dict[str, dict] = {name: {} for name in FEATURE_CHECKS}
    without_clickstream = 0
    with warehouse.get_connection() as connection:
        for month in months_of(context):
            next_month = add_months(month, 1)
            same_month = {
                source.name: read_months(
                    connection, silver_table(source), "partition_month", month, next_month
                )
                for source in (LMS_LOAN_DAILY, FEATURES_ATTRIBUTES, FEATURES_FINANCIALS)
            }
            clickstream = read_months(
                connection,
                silver_table(FEATURE_CLICKSTREAM),
                "partition_month",
                add_months(month, 1 - window.long_clickstream_months),
                next_month,
            )
            features = build_features(
                same_month[LMS_LOAN_DAILY.name],
                same_month[FEATURES_ATTRIBUTES.name],
                same_month[FEATURES_FINANCIALS.name],
                clickstream,
                window,
            )
            replace_months(
                connection, FEATURE_TABLE, features, "application_month", month, next_month
            )
            without_clickstream += int((features["has_clickstream"] == 0).sum())
            outcomes["keys_unique"][month] = data_quality.keys_unique(features, ["loan_id"])
            outcomes["keys_not_null"][month] = data_quality.keys_not_null(features, ["loan_id"])
            outcomes["point_in_time"][month] = data_quality.no_future_sources(
                features, "application_month", "max_source_date"
            )
            outcomes["no_personal_data"][month] = data_quality.no_personal_data(features)
            outcomes["value_ranges"][month] = data_quality.values_in_range(features, ranges)
        metadata = table_metadata(
            connection, FEATURE_TABLE, "application_month", window_of(context)
        )
    yield dg.MaterializeResult(
        metadata={
            **metadata,
            "clickstream_window_months": window.clickstream_months,
            "loans_without_clickstream": without_clickstream,
        }
    )
    yield from _results(FEATURE_STORE, FEATURE_CHECKS, outcomes)

"""Gold: the label store and the point-in-time feature store, one monthly partition each."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import polars as pl

from loan_default import settings
from loan_default.defs.checks import ERROR, WARN, check_result, check_spec
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import monthly_partitions, single_run
from loan_default.defs.silver.assets import silver_asset_key
from loan_default.lib import data_quality
from loan_default.lib.features import FeatureWindow, build_features
from loan_default.lib.labels import LABEL_STORE_COLUMNS, LabelDefinition, build_labels
from loan_default.lib.sources import (
    FEATURE_CLICKSTREAM,
    FEATURES_ATTRIBUTES,
    FEATURES_FINANCIALS,
    LMS_LOAN_DAILY,
)
from loan_default.lib.thresholds import load_thresholds

LABEL_STORE = dg.AssetKey(["gold", "label_store"])
FEATURE_STORE = dg.AssetKey(["gold", "feature_store"])

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


class LabelStoreConfig(dg.Config):
    """The label definition: default when dpd >= dpd_threshold at month on book `mob`."""

    dpd_threshold: int = 30
    mob: int = 6


@dg.asset(
    key=LABEL_STORE,
    ins={"loans": dg.AssetIn(silver_asset_key(LMS_LOAN_DAILY))},
    description="Per label month T: loans at the label mob and whether they defaulted.",
    metadata={"partition_expr": "label_month"},
    check_specs=[
        check_spec(
            LABEL_STORE, "schema", "columns as declared in the label contract", blocking=True
        ),
        check_spec(LABEL_STORE, "keys_unique", "unique (loan_id, label_month)", blocking=True),
        check_spec(LABEL_STORE, "keys_not_null", "no null loan_id or label", blocking=True),
        check_spec(LABEL_STORE, "label_rate", "default rate within the sane band", blocking=False),
        check_spec(LABEL_STORE, "no_personal_data", "no SSN or name column", blocking=True),
    ],
    **gold_common,
)
def label_store(config: LabelStoreConfig, loans: pl.DataFrame) -> Iterator:
    definition = LabelDefinition(dpd_threshold=config.dpd_threshold, mob=config.mob)
    labels = build_labels(loans, definition)
    yield dg.Output(
        labels,
        metadata={
            **table_metadata(labels, "label_month"),
            "label_def": definition.name,
            "defaults": int(labels["label"].sum() or 0),
        },
    )
    band = load_thresholds()["data_quality"]["label_rate"]
    yield check_result(
        LABEL_STORE, "schema", data_quality.schema_matches(labels, LABEL_STORE_COLUMNS), ERROR
    )
    yield check_result(
        LABEL_STORE,
        "keys_unique",
        data_quality.keys_unique(labels, ["loan_id", "label_month"]),
        ERROR,
    )
    yield check_result(
        LABEL_STORE,
        "keys_not_null",
        data_quality.keys_not_null(labels, ["loan_id", "label"]),
        ERROR,
    )
    yield check_result(
        LABEL_STORE,
        "label_rate",
        data_quality.rate_in_band(labels, "label", band["low"], band["high"]),
        WARN,
    )
    yield check_result(
        LABEL_STORE, "no_personal_data", data_quality.no_personal_data(labels), ERROR
    )


clickstream_window = dg.TimeWindowPartitionMapping(
    start_offset=-(settings.CLICKSTREAM_WINDOW_MONTHS - 1),
    end_offset=0,
    allow_nonexistent_upstream_partitions=True,
)


@dg.asset(
    key=FEATURE_STORE,
    ins={
        "loans": dg.AssetIn(silver_asset_key(LMS_LOAN_DAILY)),
        "attributes": dg.AssetIn(silver_asset_key(FEATURES_ATTRIBUTES)),
        "financials": dg.AssetIn(silver_asset_key(FEATURES_FINANCIALS)),
        "clickstream": dg.AssetIn(
            silver_asset_key(FEATURE_CLICKSTREAM), partition_mapping=clickstream_window
        ),
    },
    description=(
        "Per application month T: one row per loan at mob 0 with features known at T; "
        f"clickstream averaged over the {settings.CLICKSTREAM_WINDOW_MONTHS} months up to T."
    ),
    metadata={"partition_expr": "application_month"},
    check_specs=[
        check_spec(FEATURE_STORE, "keys_unique", "one row per loan_id", blocking=True),
        check_spec(FEATURE_STORE, "keys_not_null", "no null loan_id", blocking=True),
        check_spec(
            FEATURE_STORE,
            "point_in_time",
            "no source row dated after the application month",
            blocking=True,
        ),
        check_spec(FEATURE_STORE, "no_personal_data", "no SSN or name column", blocking=True),
        check_spec(
            FEATURE_STORE, "value_ranges", "features within plausible ranges", blocking=False
        ),
    ],
    **gold_common,
)
def feature_store(
    loans: pl.DataFrame,
    attributes: pl.DataFrame,
    financials: pl.DataFrame,
    clickstream: pl.DataFrame,
) -> Iterator:
    window = FeatureWindow(clickstream_months=settings.CLICKSTREAM_WINDOW_MONTHS)
    features = build_features(loans, attributes, financials, clickstream, window)
    yield dg.Output(
        features,
        metadata={
            **table_metadata(features, "application_month"),
            "clickstream_window_months": window.clickstream_months,
            "loans_without_clickstream": int((features["has_clickstream"] == 0).sum()),
        },
    )
    ranges = {
        **load_thresholds()["data_quality"]["feature_value_ranges"],
        "clickstream_months_seen": [0, window.clickstream_months],
    }
    yield check_result(
        FEATURE_STORE, "keys_unique", data_quality.keys_unique(features, ["loan_id"]), ERROR
    )
    yield check_result(
        FEATURE_STORE, "keys_not_null", data_quality.keys_not_null(features, ["loan_id"]), ERROR
    )
    yield check_result(
        FEATURE_STORE,
        "point_in_time",
        data_quality.no_future_sources(features, "application_month", "max_source_date"),
        ERROR,
    )
    yield check_result(
        FEATURE_STORE, "no_personal_data", data_quality.no_personal_data(features), ERROR
    )
    yield check_result(
        FEATURE_STORE, "value_ranges", data_quality.values_in_range(features, ranges), WARN
    )

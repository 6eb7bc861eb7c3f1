"""The walk-forward backtest: partitioned by as-of label month, summarized across them.

Not part of `make run`: `make backtest` backfills it (see the README).
"""

import dagster as dg

from loan_default import settings
from loan_default.defs.gold.assets import FEATURE_STORE, FEATURE_TABLE, LABEL_STORE, LABEL_TABLE
from loan_default.defs.metadata import report_metadata, table_metadata
from loan_default.defs.models.config import FAMILY_CONFIGS, BacktestConfig
from loan_default.defs.partitions import backfill_policy, month_span, monthly_partitions, months_of
from loan_default.defs.resources import ModelStoreResource
from loan_default.lib.models.backtest import (
    BacktestData,
    chart_html,
    months_markdown,
    summarize,
    summary_markdown,
    walk_forward,
)
from loan_default.lib.storage import object_storage
from loan_default.lib.storage.table_store import TableStore

BACKTEST = dg.AssetKey(["models", "backtest"])
BACKTEST_SUMMARY = dg.AssetKey(["models", "backtest_summary"])
BACKTEST_TABLE = "models.backtest"


@dg.asset(
    key=BACKTEST,
    deps=[FEATURE_STORE, LABEL_STORE],
    group_name="backtest",
    partitions_def=monthly_partitions,
    backfill_policy=backfill_policy,
    kinds={"scikitlearn", "duckdb"},
    owners=settings.OWNERS,
    pool="duckdb",
    description=(
        "Per as-of label month: each family trained on its relative windows with the labels "
        "observed by then, and scored on its out-of-time month."
    ),
)
def backtest(
    context: dg.AssetExecutionContext,
    config: BacktestConfig,
    warehouse: dg.ResourceParam[TableStore],
) -> dg.MaterializeResult:
    unknown = sorted(set(config.families) - set(FAMILY_CONFIGS))
    if unknown:
        raise dg.Failure(f"unknown families {unknown}; expected some of {list(FAMILY_CONFIGS)}")
    start, end = month_span(context)
    table = walk_forward(
        config.families,
        months_of(context),
        BacktestData.of(warehouse.read(FEATURE_TABLE), warehouse.read(LABEL_TABLE), settings.LABEL),
        settings.LABEL,
        {f: FAMILY_CONFIGS[f](seed=config.seed).hyperparameters() for f in config.families},
        tuple(config.relative_months),
        config.seed,
        config.clickstream_dropout,
        log=context.log.debug,
    )
    warehouse.replace(BACKTEST_TABLE, table, "as_of_month", start, end)
    metadata = table_metadata(warehouse.describe(BACKTEST_TABLE, "as_of_month", start, end))
    return dg.MaterializeResult(
        metadata={**metadata, "oot_roc_auc": dg.MetadataValue.md(months_markdown(table))}
    )


@dg.asset(
    key=BACKTEST_SUMMARY,
    deps=[BACKTEST],
    group_name="backtest",
    kinds={"plotly"},
    owners=settings.OWNERS,
    pool="duckdb",
    description="Mean out-of-time ROC-AUC per family over the backtest's as-of months, with a "
    "95% interval, the per-month table and a plotly chart.",
)
def backtest_summary(
    warehouse: dg.ResourceParam[TableStore], model_store: ModelStoreResource
) -> dg.MaterializeResult:
    rows = warehouse.read_if_exists(BACKTEST_TABLE)
    if rows is None or rows.is_empty():
        raise dg.Failure("models.backtest is empty: run `make backtest` (or backfill it) first")
    summary = summarize(rows)
    chart = object_storage.join(model_store.report_dir, "backtest", "backtest.html")
    object_storage.write_bytes(
        chart, chart_html(rows, summary).encode(), model_store.object_storage()
    )
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(summary_markdown(summary)),
            "oot_roc_auc_by_month": dg.MetadataValue.md(months_markdown(rows)),
            "as_of_months": rows["as_of_month"].n_unique(),
            **report_metadata("chart", chart),
        }
    )

"""The monitoring report: per model and month the action with its reasons, as markdown
metadata, a JSON file and a plotly dashboard linked from the materialization."""

import json

import dagster as dg
import polars as pl

from loan_default import settings
from loan_default.defs.gold.assets import LABEL_TABLE
from loan_default.defs.metadata import report_metadata
from loan_default.defs.models.assets import PREDICTIONS_TABLE
from loan_default.defs.monitoring.assets import (
    DRIFT,
    DRIFT_TABLE,
    ESTIMATE_TABLE,
    ESTIMATED,
    FAIRNESS,
    FAIRNESS_TABLE,
    PERFORMANCE,
    PERFORMANCE_TABLE,
    RULES,
)
from loan_default.defs.resources import ModelStoreResource
from loan_default.lib.models import registry
from loan_default.lib.monitoring.alerts import actions_table
from loan_default.lib.monitoring.dashboard import DashboardInputs, build_dashboard
from loan_default.lib.monitoring.fairness import FAIRNESS_SCHEMA
from loan_default.lib.monitoring.monitoring_tables import (
    DRIFT_SCHEMA,
    ESTIMATE_SCHEMA,
    PERFORMANCE_SCHEMA,
    ScoredVersion,
    estimates_to_judge,
    input_group,
    scores_with_labels,
    with_held_out,
)
from loan_default.lib.storage import object_storage
from loan_default.lib.storage.table_store import TableStore
from loan_default.lib.thresholds import load_thresholds

REPORT = dg.AssetKey(["monitoring", "monitoring_report"])
PREDICTION_COLUMNS = (
    "loan_id",
    "application_month",
    "model_family",
    "model_version",
    "is_champion",
    "calibrated_probability",
    "decision",
)
LABEL_COLUMNS = ("loan_id", "label_month", "label", "label_def")


def _table(warehouse: TableStore, table: str, schema: dict) -> pl.DataFrame:
    """A whole monitoring table; its typed empty frame before the first materialization."""
    rows = warehouse.read_if_exists(table)
    return pl.DataFrame(schema=schema) if rows is None else rows


def _newest_actions_markdown(actions: pl.DataFrame) -> str:
    if actions.is_empty():
        return "no monitored month yet"
    newest = actions.filter(pl.col("month") == actions["month"].max())
    lines = [
        f"| {r['month']} | {r['model_family']}{' (champion)' if r['is_champion'] else ''} | "
        f"**{r['action']}** | {'<br>'.join(r['reasons'][:5]) or 'within thresholds'} |"
        for r in newest.iter_rows(named=True)
    ]
    return "| month | model | action | reasons |\n|---|---|---|---|\n" + "\n".join(lines)


@dg.asset(
    key=REPORT,
    deps=[PERFORMANCE, ESTIMATED, DRIFT, FAIRNESS],
    group_name="monitoring",
    kinds={"duckdb", "plotly"},
    owners=settings.OWNERS,
    pool="duckdb",
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "Per model and month the action (MONITOR, ACTIVE_MONITORING, RETRAIN) with its "
        "reasons, as a JSON file and a plotly dashboard."
    ),
)
def monitoring_report(
    context: dg.AssetExecutionContext,
    warehouse: dg.ResourceParam[TableStore],
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    with warehouse.connect() as connection:
        versions = {r.version_id: ScoredVersion.of(r) for r in registry.all_versions(connection)}
    performance = _table(warehouse, PERFORMANCE_TABLE, PERFORMANCE_SCHEMA)
    estimates = _table(warehouse, ESTIMATE_TABLE, ESTIMATE_SCHEMA)
    drift = _table(warehouse, DRIFT_TABLE, DRIFT_SCHEMA)
    fairness = _table(warehouse, FAIRNESS_TABLE, FAIRNESS_SCHEMA)
    predictions = warehouse.read(PREDICTIONS_TABLE, columns=PREDICTION_COLUMNS)
    labels = warehouse.read(LABEL_TABLE, columns=LABEL_COLUMNS)
    newest_label = labels["label_month"].max() if labels.height else None
    judged_estimates = estimates_to_judge(estimates, versions, newest_label)
    actions = actions_table(performance, drift, judged_estimates, RULES, input_group)
    inputs = DashboardInputs(
        performance=performance,
        estimates=estimates,
        drift=drift,
        scored_labels=with_held_out(
            scores_with_labels(predictions, labels, settings.LABEL), versions
        ),
        scores=predictions.select(
            "model_family", "is_champion", "application_month", "calibrated_probability"
        ),
        actions=actions,
        fairness=fairness,
    )
    s3 = model_store.object_storage()
    dashboard = object_storage.join(
        model_store.report_dir, "monitoring", "monitoring_dashboard.html"
    )
    object_storage.write_bytes(dashboard, build_dashboard(inputs, RULES).encode(), s3)
    report = object_storage.join(model_store.report_dir, "monitoring", "monitoring_report.json")
    text = json.dumps(
        {
            "thresholds_version": load_thresholds()["version"],
            "actions": actions.with_columns(pl.col("month").cast(pl.String)).to_dicts(),
        },
        indent=2,
    )
    object_storage.write_bytes(report, text.encode(), s3)
    champion = actions.filter(pl.col("is_champion"))
    newest = (
        champion.filter(pl.col("month") == champion["month"].max()) if champion.height else None
    )
    context.log.info(f"monitoring report: {report}, dashboard: {dashboard}")
    return dg.MaterializeResult(
        metadata={
            "actions": dg.MetadataValue.md(_newest_actions_markdown(actions)),
            "champion_action": newest["action"][0] if newest is not None else "none",
            "months_monitored": actions["month"].n_unique(),
            "retrain_months": champion.filter(pl.col("action") == "RETRAIN").height,
            "report": dg.MetadataValue.path(report),
            **report_metadata("dashboard", dashboard),
            "dagster/row_count": actions.height,
        }
    )

"""The model document of every registered version, (re)written after the gate: an HTML file
under the report dir, linked from the version's registry row, and markdown in the UI."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from loan_default import settings
from loan_default.defs.gold.assets import FEATURE_TABLE, LABEL_TABLE
from loan_default.defs.models.assets import CHAMPION
from loan_default.defs.models.backtest import BACKTEST_TABLE
from loan_default.defs.resources import ModelStoreResource
from loan_default.lib.models import registry
from loan_default.lib.models.model_data import labeled_applications
from loan_default.lib.models.model_document import (
    document_of,
    render_markdown,
    stale_versions,
    write_document,
)
from loan_default.lib.monitoring.drift import BinningRule
from loan_default.lib.monitoring.fairness import FairnessRules
from loan_default.lib.storage.warehouse import table_exists
from loan_default.lib.thresholds import load_thresholds

MODEL_DOCUMENT = dg.AssetKey(["models", "model_document"])
DOCUMENT_DIR = "model_documents"
# Monitoring's drift table, read when present (written by the monitoring group, after this one in
# `make run`): a document shows what exists when it is written.
DRIFT_TABLE = "monitoring.drift"


def _table(connection, table: str, where: str = "", params: list | None = None):
    if not table_exists(connection, table):
        return None
    return connection.execute(f"select * from {table} {where}", params or []).pl()


def _information_value(record: registry.RegistryRecord) -> pl.DataFrame | None:
    """The scorecard's own IV table, written beside its artifact at training."""
    csv = Path(record.artifact_path).with_name(f"{record.version_id}.information_value.csv")
    return pl.read_csv(csv) if csv.exists() else None


@dg.asset(
    key=MODEL_DOCUMENT,
    deps=[CHAMPION],
    group_name="models",
    kinds={"duckdb", "python"},
    owners=settings.OWNERS,
    pool="duckdb",
    # Runs after every gate run, wherever the gate ran (make train, the retrain job, the UI),
    # while the daemon runs `model_document_automation`.
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "The model document (SR 11-7 style) of each version whose document is missing or "
        "older than a gate decision about it: HTML under the report dir, linked from its "
        "registry row (document_path) and from the API's GET /model."
    ),
)
def model_document(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, model_store: ModelStoreResource
) -> dg.MaterializeResult:
    directory = Path(model_store.report_dir) / DOCUMENT_DIR
    monitoring = load_thresholds()["monitoring"]
    rule = BinningRule.of(monitoring["stability"])
    fairness_rules = FairnessRules.of(monitoring["fairness"])
    written: dict[str, str] = {}
    with warehouse.get_connection() as connection:
        records = {r.version_id: r for r in registry.all_versions(connection)}
        decisions = registry.decisions(connection)
        stale = stale_versions(records.values(), decisions)
        if stale:
            features = connection.execute(f"select * from {FEATURE_TABLE}").pl()
            labels = connection.execute(f"select * from {LABEL_TABLE}").pl()
            backtest = _table(connection, BACKTEST_TABLE)
        for version_id in stale:
            record = records[version_id]
            data = labeled_applications(features, labels, settings.LABEL, record.as_of_month)
            document = document_of(
                record,
                registry.load_artifact(record),
                data,
                settings.LABEL.text,
                rule,
                decisions,
                datetime.now(UTC).replace(tzinfo=None),
                information_value=_information_value(record),
                monitoring_drift=_table(
                    connection,
                    DRIFT_TABLE,
                    "where model_version = ? and kind = 'score' order by month",
                    [version_id],
                ),
                fairness_rules=fairness_rules,
                backtest=None
                if backtest is None
                else backtest.filter(pl.col("model_family") == record.family),
            )
            path = write_document(document, directory)
            registry.set_document(connection, version_id, str(path), document.generated_at)
            written[version_id] = render_markdown(document)
            context.log.info(f"{version_id}: model document written to {path}")
        now = {r.version_id: r for r in registry.all_versions(connection)}
        champion = registry.champion(connection)
    rows = "\n".join(
        f"| {r.version_id} | {r.family} | {r.status} | "
        f"{'written' if v in written else 'current'} | {r.document_path} |"
        for v, r in now.items()
    )
    metadata = {
        "documents": dg.MetadataValue.md(
            "| version | family | status | this run | document |\n|---|---|---|---|---|\n" + rows
        ),
        "written": len(written),
        "document_dir": dg.MetadataValue.path(str(directory)),
    }
    if champion is not None and champion.document_path:
        metadata["champion_document"] = dg.MetadataValue.path(champion.document_path)
    for version_id, markdown in written.items():
        metadata[f"document {version_id}"] = dg.MetadataValue.md(markdown)
    return dg.MaterializeResult(metadata=metadata)


model_document_automation = dg.AutomationConditionSensorDefinition(
    "model_document_automation",
    target=dg.AssetSelection.assets(MODEL_DOCUMENT),
    default_status=dg.DefaultSensorStatus.RUNNING,
)

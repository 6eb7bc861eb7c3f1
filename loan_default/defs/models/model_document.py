"""The model document of every registered version, (re)written after the gate: an HTML file
under the report dir (a folder or an s3:// prefix), linked from the version's registry row, and
markdown in the UI."""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from loan_default import settings
from loan_default.defs.gold.assets import FEATURE_TABLE, LABEL_TABLE
from loan_default.defs.models.assets import CHAMPION
from loan_default.defs.models.backtest import BACKTEST_TABLE
from loan_default.defs.resources import ModelStoreResource
from loan_default.lib.models import registry
from loan_default.lib.models.fairness_alternative import AlternativeRules
from loan_default.lib.models.model_data import labeled_applications
from loan_default.lib.models.model_document import (
    TrainingInformationValues,
    document_of,
    render_html,
    render_markdown,
    stale_versions,
)
from loan_default.lib.monitoring.drift import BinningRule
from loan_default.lib.monitoring.fairness import FairnessRules
from loan_default.lib.storage import object_storage
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.table_store import TableStore
from loan_default.lib.thresholds import load_thresholds

MODEL_DOCUMENT = dg.AssetKey(["models", "model_document"])
DOCUMENT_DIR = "model_documents"
# Monitoring's drift table, read when present (written by the monitoring group, after this one in
# `make run`): a document shows what exists when it is written.
DRIFT_TABLE = "monitoring.drift"


def _beside(location: str, name: str) -> str:
    """The location of file `name` in the folder of `location` (a path or an s3:// URI)."""
    if object_storage.is_remote(location):
        return location.rsplit("/", 1)[0] + "/" + name
    return str(Path(location).with_name(name))


def _information_value(
    record: registry.RegistryRecord, s3: S3Endpoint | None
) -> pl.DataFrame | None:
    """The scorecard's own IV table, written beside its artifact at training."""
    csv = _beside(record.artifact_path, f"{record.version_id}.information_value.csv")
    try:
        return pl.read_csv(object_storage.read_bytes(csv, s3))
    except FileNotFoundError:
        return None


def _score_drift(drift: pl.DataFrame | None, version_id: str) -> pl.DataFrame | None:
    """Monitoring's score drift rows of one version, by month."""
    if drift is None:
        return None
    rows = drift.filter((pl.col("model_version") == version_id) & (pl.col("kind") == "score"))
    return rows.sort("month", maintain_order=True)


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
    context: dg.AssetExecutionContext,
    warehouse: dg.ResourceParam[TableStore],
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    directory = object_storage.join(model_store.report_dir, DOCUMENT_DIR)
    monitoring = load_thresholds()["monitoring"]
    rule = BinningRule.of(monitoring["stability"])
    fairness_rules = FairnessRules.of(monitoring["fairness"])
    # The less-discriminatory-alternative search retrains the family: only for the listed
    # (quick) families and the champion, whose decisions are the ones made.
    search = AlternativeRules.of(monitoring["fairness"]["alternatives"])
    written: dict[str, str] = {}
    s3 = model_store.object_storage()
    with warehouse.connect() as connection:
        records = {r.version_id: r for r in registry.all_versions(connection)}
        decisions = registry.decisions(connection)
    stale = stale_versions(
        records.values(), decisions, lambda location: object_storage.exists(location, s3)
    )
    if stale:
        features, labels = warehouse.read(FEATURE_TABLE), warehouse.read(LABEL_TABLE)
        backtest = warehouse.read_if_exists(BACKTEST_TABLE)
        drift = warehouse.read_if_exists(DRIFT_TABLE)
    information_values = TrainingInformationValues()
    labeled: dict[date, pl.DataFrame] = {}
    for version_id in stale:
        record = records[version_id]
        if record.as_of_month not in labeled:
            labeled[record.as_of_month] = labeled_applications(
                features, labels, settings.LABEL, record.as_of_month
            )
        data = labeled[record.as_of_month]
        document = document_of(
            record,
            registry.load_artifact(record, s3),
            data,
            settings.LABEL.text,
            rule,
            decisions,
            datetime.now(UTC).replace(tzinfo=None),
            information_value=_information_value(record, s3),
            monitoring_drift=_score_drift(drift, version_id),
            fairness_rules=fairness_rules,
            backtest=None
            if backtest is None
            else backtest.filter(pl.col("model_family") == record.family),
            training_information_values=information_values,
            alternative_rules=search
            if record.family in search.families or record.status == "champion"
            else None,
        )
        location = object_storage.join(directory, f"{version_id}.html")
        object_storage.write_bytes(location, render_html(document).encode("utf-8"), s3)
        with warehouse.connect() as connection:
            registry.set_document(connection, version_id, location, document.generated_at)
        written[version_id] = render_markdown(document)
        context.log.info(f"{version_id}: model document written to {location}")
    with warehouse.connect() as connection:
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
        "document_dir": dg.MetadataValue.path(directory),
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

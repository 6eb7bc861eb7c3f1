"""The replay's timeline: the runs of each simulated month, read back from the instance, beside
the decisions served and two counterfactual retrain policies on the same cohorts."""

from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from loan_default import settings
from loan_default.defs.gold.assets import FEATURE_STORE, FEATURE_TABLE, LABEL_STORE, LABEL_TABLE
from loan_default.defs.metadata import frame_table, report_metadata
from loan_default.defs.models.assets import CHAMPION, PREDICTIONS
from loan_default.defs.monitoring.automation import retrain_on_alert
from loan_default.defs.resources import ModelStoreResource
from loan_default.lib.models import registry
from loan_default.lib.models.model_data import labeled_applications
from loan_default.lib.models.model_windows import Windows
from loan_default.lib.models.served_decisions import SERVED_TABLE
from loan_default.lib.models.training import train
from loan_default.lib.months import add_months
from loan_default.lib.operations.clock import FRESHNESS_CHECK, SIMULATED_MONTH_TAG
from loan_default.lib.operations.timeline import (
    SERVED,
    MonthEvents,
    cohort_performance,
    paired_gain,
    timeline_chart,
    timeline_rows,
)
from loan_default.lib.storage import object_storage
from loan_default.lib.storage.table_store import TableStore

TIMELINE = dg.AssetKey(["operations", "timeline"])
TIMELINE_TABLE = "operations.timeline"
COHORTS_TABLE = "operations.timeline_cohorts"
MOB = settings.LABEL.mob


class TimelineConfig(dg.Config):
    """The counterfactual retrain policy shown beside the loop: the first champion's family
    retrained every `periodic_months` on its default windows and promoted unconditionally
    (0 leaves it out)."""

    periodic_months: int = 3


def _utc(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, UTC).replace(tzinfo=None) if stamp else None


def replay_events(instance: dg.DagsterInstance, decisions: pl.DataFrame) -> list[MonthEvents]:
    """Per simulated month, what its runs recorded: failed checks, the sensor's retrain and
    its reasons, the champion the gate left, and the gate decisions taken during them."""
    by_month: dict[date, list[dg.DagsterRun]] = {}
    for run in instance.get_runs():
        if SIMULATED_MONTH_TAG in run.tags:
            by_month.setdefault(date.fromisoformat(run.tags[SIMULATED_MONTH_TAG]), []).append(run)
    events = []
    for month, runs in sorted(by_month.items()):
        failed, requested_by, champion, taken = [], None, None, []
        for run in sorted(
            runs, key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp
        ):
            checks = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ).records
            for record in checks:
                evaluation = record.event_log_entry.dagster_event.event_specific_data
                if not evaluation.passed and evaluation.check_name != FRESHNESS_CHECK:
                    failed.append(
                        f"{evaluation.check_name} ({evaluation.severity.value}): "
                        f"{evaluation.description}"
                    )
            if run.tags.get("dagster/sensor_name") == retrain_on_alert.name:
                configs = (run.run_config or {}).get("ops", {}).values()
                detail = next((c["config"].get("reason_detail") for c in configs), None)
                requested_by = f"{run.tags['dagster/sensor_name']}: {detail}"
            for record in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records:
                materialization = record.event_log_entry.asset_materialization
                if materialization and materialization.asset_key == CHAMPION:
                    meta = materialization.metadata
                    champion = (meta["champion_version"].value, meta["champion_family"].value)
            stats = instance.get_run_stats(run.run_id)
            begun, ended = _utc(stats.start_time), _utc(stats.end_time)
            if begun and ended and not decisions.is_empty():
                taken += decisions.filter(pl.col("decided_at").is_between(begun, ended)).to_dicts()
        events.append(
            MonthEvents(
                month=month,
                runs=tuple(r.run_id for r in runs),
                # A retrain's follow-ups judge the month again: each finding once.
                failed_checks=tuple(dict.fromkeys(failed)),
                retrain_requested_by=requested_by,
                champion_after=champion,
                gate_decisions=tuple(taken),
            )
        )
    return events


def _scores(record: registry.RegistryRecord, model, features: pl.DataFrame) -> pl.DataFrame:
    return (
        features.select("loan_id", "application_month")
        .hstack(model.score(features).select("calibrated_probability"))
        .with_columns(model_version=pl.lit(record.version_id))
    )


def _periodic_scores(
    first: registry.RegistryRecord,
    features: pl.DataFrame,
    labels: pl.DataFrame,
    months: list[date],
    every: int,
    log,
) -> pl.DataFrame:
    """The first champion's family retrained as of every `every`-th simulated month on its
    default relative windows, each model serving the months until the next."""
    frames = []
    for start in months[::every]:
        data = labeled_applications(features, labels, settings.LABEL, start)
        windows = Windows.relative(start, MOB)
        result = train(
            first.family,
            data,
            windows,
            first.hyperparameters,
            unlabeled=features,
            log=log,
            importance=False,
        )
        served = features.filter(
            pl.col("application_month").is_between(
                start, min(add_months(start, every - 1), months[-1])
            )
        )
        scored = served.select("loan_id", "application_month").hstack(
            result.model.score(served).select("calibrated_probability")
        )
        frames.append(scored.with_columns(model_version=pl.lit(f"{first.family}@{start:%Y-%m}")))
    return pl.concat(frames)


GAIN_SCHEMA = {
    "model_version": pl.String,
    "months": pl.String,
    "n": pl.Int64,
    "roc_auc": pl.Float64,
    "never_retrain_roc_auc": pl.Float64,
    "difference": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
}


def _champion_gains(
    versions: dict[str, registry.RegistryRecord],
    served: pl.DataFrame,
    never: pl.DataFrame,
    features: pl.DataFrame,
    labels: pl.DataFrame,
    s3,
) -> pl.DataFrame:
    """Each later champion against never retraining, on the labelled cohorts after its fitted
    window (the paired difference with its 95% DeLong interval): did the retrain pay?"""
    rows = []
    first = served.sort("application_month")["model_version"][0]
    for version_id in served["model_version"].unique(maintain_order=True).to_list():
        if version_id == first:
            continue
        record = versions[version_id]
        after = features.filter(
            pl.col("application_month") > date.fromisoformat(record.windows["validation"][1])
        )
        gain = paired_gain(
            _scores(record, registry.load_artifact(record, s3), after), never, labels, MOB
        )
        if gain is None:
            continue
        months = gain["months"]
        rows.append(
            {
                "model_version": version_id,
                "months": f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}",
                "n": gain["n"],
                "roc_auc": gain["first_roc_auc"],
                "never_retrain_roc_auc": gain["second_roc_auc"],
                "difference": gain["difference"],
                "low": gain["low"],
                "high": gain["high"],
            }
        )
    return pl.DataFrame(rows, schema=GAIN_SCHEMA)


@dg.asset(
    key=TIMELINE,
    deps=[PREDICTIONS, FEATURE_STORE, LABEL_STORE, CHAMPION],
    group_name="operations",
    kinds={"duckdb", "plotly"},
    owners=settings.OWNERS,
    pool="duckdb",
    description=(
        "One row per simulated month of a replay (python -m loan_default.replay): the version "
        "that served, failed checks, the retrain the sensor asked for, gate decisions with their "
        "evidence, realized and estimated ROC-AUC of the served decisions; and per cohort the "
        "served decisions against never retraining and retraining every three months."
    ),
)
def timeline(
    context: dg.AssetExecutionContext,
    config: TimelineConfig,
    warehouse: dg.ResourceParam[TableStore],
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    with warehouse.connect() as connection:
        decisions = registry.decisions(connection)
        versions = {r.version_id: r for r in registry.all_versions(connection)}
    events = replay_events(context.instance, decisions)
    if not events:
        return dg.MaterializeResult(metadata={"timeline": "no replay runs in this instance"})
    months = [e.month for e in events]
    window = ("application_month", months[0], add_months(months[-1], 1))
    served = warehouse.read(SERVED_TABLE, *window)
    labels = warehouse.read(LABEL_TABLE)
    features = warehouse.read(FEATURE_TABLE, *window)
    cohorts = [cohort_performance(SERVED, served, labels, MOB)]
    first = versions[served.sort("application_month")["model_version"][0]]
    s3 = model_store.object_storage()
    never = _scores(first, registry.load_artifact(first, s3), features)
    cohorts.append(cohort_performance("never_retrain", never, labels, MOB))
    if config.periodic_months:
        history = warehouse.read(
            FEATURE_TABLE, "application_month", settings.FIRST_MONTH, window[2]
        )
        periodic = _periodic_scores(
            first, history, labels, months, config.periodic_months, context.log.info
        )
        cohorts.append(cohort_performance("every_3_months", periodic, labels, MOB))
    cohort_table = pl.concat(cohorts)
    table = timeline_rows(events, served, cohorts[0], MOB)
    end = add_months(months[-1], 1)
    warehouse.replace(TIMELINE_TABLE, table, "month", months[0], end)
    warehouse.replace(COHORTS_TABLE, cohort_table, "application_month", months[0], end)
    gains = _champion_gains(versions, served, never, features, labels, s3)
    chart = timeline_chart(table, cohort_table, "Served decisions, month by month")
    location = object_storage.join(model_store.report_dir, "operations", "timeline.html")
    object_storage.write_bytes(location, chart.to_html(include_plotlyjs=True).encode(), s3)
    shown = table.select(
        "month",
        "served_family",
        "champion_version",
        pl.col("actions").list.join("; "),
        "realized_cohort",
        "realized_roc_auc",
        "estimated_roc_auc",
    )
    return dg.MaterializeResult(
        metadata={
            "timeline": frame_table(shown),
            "cohorts": frame_table(cohort_table),
            "champions_vs_never_retrain": frame_table(gains),
            **report_metadata("timeline_chart", location),
        }
    )

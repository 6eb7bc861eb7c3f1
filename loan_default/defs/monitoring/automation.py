"""What runs without anyone clicking: the monthly refresh, new raw months, freshness checks,
the report after new monitoring, and a retrain when a champion check fails with ERROR.

Sensors read Dagster's event log and the raw folder, never the DuckDB warehouse: a sensor
holding the file would block the runs it starts.
"""

import json

import dagster as dg

from loan_default.defs.backfills import REPORT
from loan_default.defs.gold.assets import FEATURE_STORE, LABEL_STORE, monthly_freshness
from loan_default.defs.models.assets import CHAMPION, PREDICTIONS, model_assets
from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.defs.models.model_document import MODEL_DOCUMENT
from loan_default.defs.monitoring.assets import (
    DRIFT,
    ESTIMATE_CHECKS,
    ESTIMATED,
    FAIRNESS,
    PERFORMANCE,
    PERFORMANCE_CHECKS,
    STABILITY_CHECKS,
)
from loan_default.defs.partitions import monthly_partitions
from loan_default.defs.resources import RawDataResource
from loan_default.lib.ingest.raw_months import files_fingerprint, month_counts, months_in_loan_book
from loan_default.lib.ingest.raw_reader import RawInputError
from loan_default.lib.ingest.sources import SOURCES
from loan_default.lib.models import registry

RUNNING = dg.DefaultSensorStatus.RUNNING
MONITORED = [PREDICTIONS, DRIFT, ESTIMATED, PERFORMANCE, FAIRNESS]
ALARM_CHECKS = [
    *(dg.AssetCheckKey(DRIFT, name) for name in STABILITY_CHECKS),
    *(dg.AssetCheckKey(ESTIMATED, name) for name in ESTIMATE_CHECKS),
    *(dg.AssetCheckKey(PERFORMANCE, name) for name in PERFORMANCE_CHECKS),
]
RETRAIN_REASON = registry.RETRAIN_AFTER_ALERT
# A retrain after an alarm learns the newest labelled cohorts (Windows.recent), which hold the
# change the alarm saw; the README's Replay section shows why.
ALERT_WINDOW_MODE = "recent"
LOAN_BOOK = SOURCES["lms_loan_daily"]

monthly_refresh = dg.define_asset_job(
    "monthly_refresh",
    selection=dg.AssetSelection.groups("bronze", "silver", "gold")
    | dg.AssetSelection.assets(*MONITORED),
    partitions_def=monthly_partitions,
    description="Every monthly asset of one month: data layers, predictions and monitoring.",
)
# What follows a gate decision, in the gate's own run: every month scored by the champion and
# the newest versions, monitored, reported, and the model documents, without a hand-run step
# or the daemon.
GATE_FOLLOW_UPS = (
    dg.AssetSelection.assets(MODEL_DOCUMENT, REPORT)
    | dg.AssetSelection.groups("predictions")
    | dg.AssetSelection.assets(*MONITORED[1:])
)
FOLLOWED = "then predictions and monitoring of the run's months and the model documents."


def champion_changing_job(name: str, gate_inputs: dg.AssetSelection, what: str) -> dg.JobDefinition:
    """A job whose run may change the champion: the gate (after `gate_inputs`) and, in the
    same run, everything that follows a gate decision, over the months the run names."""
    return dg.define_asset_job(
        name,
        selection=gate_inputs | dg.AssetSelection.assets(CHAMPION) | GATE_FOLLOW_UPS,
        partitions_def=monthly_partitions,
        description=f"{what}, {FOLLOWED}",
    )


retrain = champion_changing_job(
    "retrain",
    dg.AssetSelection.assets(*(a.key for a in model_assets)),
    "A new version of every model family, the champion/challenger gate",
)
champion_gate = champion_changing_job(
    "champion_gate",
    dg.AssetSelection.assets(),
    "The champion/challenger gate again, for challengers with new held-out labels",
)
# An operator's change of champion is the gate asset with config: the same run brings the
# predictions, monitoring and the model documents up to date (README, Manual promotion).
manual_promotion = champion_changing_job(
    "manual_promotion",
    dg.AssetSelection.assets(),
    "Manual promotion or rollback of the champion, with a reason (a row of "
    "models.promotion_decisions, kind 'manual' or 'rollback'; launch it with config "
    "`ops: models__champion: config: {action: promote|rollback, version, reason}` and the "
    "partition range tags over the months to re-score, or make promote / make rollback; the "
    "API follows within LOAN_DEFAULT_API_REFRESH_SECONDS)",
)

monthly_refresh_schedule = dg.build_schedule_from_partitioned_job(
    monthly_refresh,
    name="monthly_refresh_schedule",
    day_of_month=2,
    hour_of_day=6,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

freshness_checks = dg.build_time_partition_freshness_checks(
    assets=MONITORED, deadline_cron=monthly_freshness.deadline_cron
)
freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks, default_status=RUNNING
)
report_automation = dg.AutomationConditionSensorDefinition(
    "report_automation",
    target=dg.AssetSelection.assets(["monitoring", "monitoring_report"]),
    default_status=RUNNING,
)


def new_alarms(instance: dg.DagsterInstance, after: int) -> tuple[list[tuple[int, object]], int]:
    """Failed ERROR evaluations of the champion's checks recorded after execution id `after`,
    and the newest failed execution id seen (the next cursor).

    Check executions have global ids in the instance's index, unlike raw event ids, which the
    SQLite storage numbers per run.
    """
    found, newest = [], after
    for key in ALARM_CHECKS:
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
        for record in history:  # newest first
            if record.id <= after:
                break
            if record.status.value != "FAILED":
                continue
            newest = max(newest, record.id)
            evaluation = record.event.dagster_event.event_specific_data if record.event else None
            if evaluation is not None and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                found.append((record.id, evaluation))
    return sorted(found, key=lambda pair: pair[0]), newest


def _describe(evaluation) -> str:
    meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    return (
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed for "
        f"{meta.get('month')} on {meta.get('model_version')}: {evaluation.description}"
    )


def scored_months(instance: dg.DagsterInstance) -> tuple[str, str] | None:
    """The first and last month of the feature store: the months a gate's follow-ups score
    and monitor again."""
    months = sorted(instance.get_materialized_partitions(FEATURE_STORE))
    return (months[0], months[-1]) if months else None


def month_range_tags(months: tuple[str, str] | None) -> dict[str, str]:
    if months is None:
        return {}
    return {
        "dagster/asset_partition_range_start": months[0],
        "dagster/asset_partition_range_end": months[1],
    }


def retrain_request(
    found: list[tuple[int, object]], months: tuple[str, str] | None = None
) -> dg.RunRequest:
    """One retraining run for the failures of one tick: the alarm's window policy, as of the
    newest labeled month, with the reasons recorded on every new registry row; its follow-ups
    cover `months`."""
    detail = " | ".join(_describe(e) for _, e in found)
    config = {
        f"models__{family}": config_type(
            window_mode=ALERT_WINDOW_MODE, reason=RETRAIN_REASON, reason_detail=detail
        )
        for family, config_type in FAMILY_CONFIGS.items()
    }
    return dg.RunRequest(
        run_key=f"{RETRAIN_REASON}-{max(storage_id for storage_id, _ in found)}",
        run_config=dg.RunConfig(config),
        tags={"loan_default/reason": RETRAIN_REASON, **month_range_tags(months)},
    )


def alarm_subject(evaluation) -> str:
    """What an alarm is about: the asset judged, the champion version and the month. The
    follow-ups of a retrain judge the same subject again; only a new subject asks anew."""
    meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    return (
        f"{evaluation.asset_key.to_user_string()}|{meta.get('model_version')}|{meta.get('month')}"
    )


ACTED_ON_KEPT = 500


def read_alarm_cursor(cursor: str | None) -> tuple[int, list[str]]:
    """(newest execution id seen, subjects already acted on); an older cursor is a bare id."""
    if not cursor:
        return 0, []
    if cursor.isdigit():
        return int(cursor), []
    state = json.loads(cursor)
    return state["after"], state["acted"]


@dg.sensor(
    job=retrain,
    default_status=RUNNING,
    minimum_interval_seconds=60,
    description=(
        "Requests one retraining run per newly failed ERROR check on the champion, once per "
        "champion version and judged month."
    ),
)
def retrain_on_alert(context: dg.SensorEvaluationContext):
    after, acted = read_alarm_cursor(context.cursor)
    found, newest = new_alarms(context.instance, after)
    fresh = [(i, e) for i, e in found if alarm_subject(e) not in acted]
    subjects = list(dict.fromkeys(alarm_subject(e) for _, e in fresh))
    acted = (acted + subjects)[-ACTED_ON_KEPT:]
    context.update_cursor(json.dumps({"after": newest, "acted": acted}))
    if not fresh:
        reason = "already acted on" if found else "no new ERROR failure of a champion check"
        return dg.SkipReason(reason)
    waiting = pending_gate(context.instance, "pending_after_alert")
    if waiting is not None and waiting[0]:
        # A retrain is in flight: its challengers wait for held-out labels, and a newer retrain
        # would only replace them before any evidence could promote one.
        return dg.SkipReason(
            f"{', '.join(waiting[0])} await held-out labels after {waiting[1]}; "
            f"not retraining again for: {'; '.join(_describe(e) for _, e in fresh)}"
        )
    context.log.info("retraining: " + "; ".join(_describe(e) for _, e in fresh))
    return retrain_request(fresh, scored_months(context.instance))


def pending_gate(
    instance: dg.DagsterInstance, key: str = "pending_challengers"
) -> tuple[list[str], str] | None:
    """The challengers the last gate run left waiting (`key`: all, or `pending_after_alert`,
    those a retrain after an alarm trained) and the newest label month it saw, from its
    materialization (the event log, never the warehouse)."""
    event = instance.get_latest_materialization_event(CHAMPION)
    if event is None or event.asset_materialization is None:
        return None
    meta = event.asset_materialization.metadata
    if key not in meta or "labels_through" not in meta:
        return None
    return list(meta[key].value), meta["labels_through"].value


@dg.sensor(
    job=champion_gate,
    default_status=RUNNING,
    minimum_interval_seconds=300,
    description=(
        "Runs the gate again when challengers wait and a newer label month has arrived: each "
        "new month of held-out labels is new evidence."
    ),
)
def challenger_pending(context: dg.SensorEvaluationContext):
    pending = pending_gate(context.instance)
    if pending is None or not pending[0]:
        return dg.SkipReason("no challenger waits for the gate")
    waiting, labels_through = pending
    labelled = sorted(context.instance.get_materialized_partitions(LABEL_STORE))
    if not labelled or labelled[-1] <= labels_through:
        return dg.SkipReason(f"{', '.join(waiting)} wait for labels after {labels_through}")
    return dg.RunRequest(
        run_key=f"gate-{labelled[-1]}-{'-'.join(waiting)}",
        tags={
            "loan_default/reason": "new-held-out-labels",
            **month_range_tags(scored_months(context.instance)),
        },
    )


IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _ingesting(instance: dg.DagsterInstance) -> str | None:
    """A backfill still launching runs, or a run in progress that writes the loan book's
    bronze: the months it writes are not new."""
    for backfill in instance.get_backfills(limit=20):
        if backfill.status.value == "REQUESTED":
            return f"backfill {backfill.backfill_id}"
    loan_book = dg.AssetKey(["bronze", LOAN_BOOK.name])
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        if loan_book in (run.asset_selection or ()):
            return f"run {run.run_id}"
    return None


@dg.sensor(
    job=monthly_refresh,
    default_status=RUNNING,
    minimum_interval_seconds=300,
    description="Starts the monthly refresh when the loan book holds a month not yet ingested.",
)
def new_raw_month(context: dg.SensorEvaluationContext, raw_data: RawDataResource):
    try:
        files = [raw_data.locate(source).path for source in SOURCES.values()]
    except RawInputError as missing:
        return dg.SkipReason(f"raw files not there yet: {missing}")
    fingerprint = files_fingerprint(files)
    if fingerprint == context.cursor:
        return dg.SkipReason("raw files unchanged")
    busy = _ingesting(context.instance)
    if busy:  # judged again at the next tick, once it ends
        return dg.SkipReason(f"{busy} is ingesting months already")
    known = set(monthly_partitions.get_partition_keys())
    counts = {
        source.name: month_counts(raw_data.locate(source), source, raw_data.date_format)
        for source in SOURCES.values()
    }
    present = {
        m.isoformat()
        for m in months_in_loan_book(raw_data.locate(LOAN_BOOK), LOAN_BOOK, raw_data.date_format)
    }
    # Rows dated outside the partitions are ingested by no run: say so rather than drop them.
    for name, rows_by_month in counts.items():
        outside = {
            month.isoformat(): rows
            for month, rows in rows_by_month.items()
            if month.isoformat() not in known
        }
        if outside:
            context.log.warning(
                f"{name}: {sum(outside.values()):,} row(s) dated outside the configured months "
                f"are not ingested (rows per month: {outside}); extend LOAN_DEFAULT_FIRST_MONTH "
                "/ LOAN_DEFAULT_LAST_MONTH to ingest them"
            )
    done = context.instance.get_materialized_partitions(dg.AssetKey(["bronze", LOAN_BOOK.name]))
    new = sorted((present & known) - done)
    context.update_cursor(fingerprint)
    if not new:
        return dg.SkipReason("no new month in the raw loan book")
    return dg.RunRequest(
        run_key=f"raw-{new[0]}-{new[-1]}-{fingerprint[:16]}",
        tags={
            "dagster/asset_partition_range_start": new[0],
            "dagster/asset_partition_range_end": new[-1],
        },
    )

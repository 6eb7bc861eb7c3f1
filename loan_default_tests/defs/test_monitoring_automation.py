"""The sensors on a real instance: retrain once per ERROR failure, start the refresh for new
raw months; and the schedule's job covers every monthly asset."""

import os
import shutil

import dagster as dg
import pytest

from loan_default.definitions import defs as load_definitions
from loan_default.defs.models.assets import CHAMPION
from loan_default.defs.monitoring.assets import DRIFT, PERFORMANCE
from loan_default.defs.monitoring.automation import (
    RETRAIN_REASON,
    challenger_pending,
    monthly_refresh,
    new_raw_month,
    retrain_on_alert,
)
from loan_default.defs.resources import RawDataResource
from loan_default.lib.models.families import FAMILIES
from loan_default.lib.synthetic import generate


def report_check(instance, asset, name, passed, severity, month="2025-01-01"):
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=asset,
            check_name=name,
            passed=passed,
            severity=severity,
            description=f"{name} test outcome",
            metadata={"month": month, "model_version": "gradient_boosting-1"},
        )
    )


def tick(sensor, instance, cursor=None, **kwargs):
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, **kwargs))


def test_retrain_sensor_requests_one_run_per_error_failure():
    ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
    with dg.instance_for_test() as instance:
        first = tick(retrain_on_alert, instance)
        assert first.run_requests == []

        report_check(instance, DRIFT, "champion_score_psi", True, ERROR)  # passed
        report_check(instance, DRIFT, "champion_feature_csi", False, WARN)  # a warning
        report_check(instance, DRIFT, "not_a_champion_check", False, ERROR)
        quiet = tick(retrain_on_alert, instance, first.cursor)
        assert quiet.run_requests == []

        report_check(instance, PERFORMANCE, "champion_roc_auc", False, ERROR)
        alarm = tick(retrain_on_alert, instance, quiet.cursor)
        [request] = alarm.run_requests
        assert request.run_key.startswith(f"{RETRAIN_REASON}-")
        assert request.tags["loan_default/reason"] == RETRAIN_REASON
        ops = request.run_config["ops"]
        config = ops["models__gradient_boosting"]["config"]
        assert config["reason"] == RETRAIN_REASON and config["window_mode"] == "recent"
        assert (
            "monitoring/model_performance:champion_roc_auc failed for 2025-01-01"
            in (config["reason_detail"])
        )
        assert set(ops) == {f"models__{name}" for name in FAMILIES}

        assert tick(retrain_on_alert, instance, alarm.cursor).run_requests == []
        report_check(instance, DRIFT, "champion_score_psi", False, ERROR, month="2025-02-01")
        again = tick(retrain_on_alert, instance, alarm.cursor)
        [second] = again.run_requests
        assert second.run_key != request.run_key
        detail = second.run_config["ops"]["models__tab_transformer"]["config"]["reason_detail"]
        assert "2025-02-01" in detail

        # A retrain's own follow-ups judge the same champion and month again: no new request,
        # else a refused challenger would ask for a retrain after every retrain.
        report_check(instance, PERFORMANCE, "champion_roc_auc", False, ERROR)
        rejudged = tick(retrain_on_alert, instance, again.cursor)
        assert rejudged.run_requests == []
        report_check(instance, PERFORMANCE, "champion_roc_auc", False, ERROR, month="2025-02-01")
        [next_month] = tick(retrain_on_alert, instance, rejudged.cursor).run_requests
        assert (
            "2025-02-01"
            in next_month.run_config["ops"]["models__scorecard"]["config"]["reason_detail"]
        )


@pytest.fixture(scope="module")
def small_raw(tmp_path_factory):
    raw_dir = tmp_path_factory.mktemp("raw_sensor")
    generate(raw_dir, loans=300, seed=1)
    return raw_dir


def report_gate(instance, pending, after_alert, labels_through):
    """A gate run's materialization, as the champion asset records it."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=CHAMPION,
            metadata={
                "champion_version": "gradient_boosting-1",
                "pending_challengers": dg.MetadataValue.json(pending),
                "pending_after_alert": dg.MetadataValue.json(after_alert),
                "labels_through": labels_through,
            },
        )
    )


def report_label_month(instance, month):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=dg.AssetKey(["gold", "label_store"]), partition=month)
    )


def test_an_alarm_waits_while_its_retrain_awaits_held_out_labels():
    ERROR = dg.AssetCheckSeverity.ERROR
    with dg.instance_for_test() as instance:
        report_gate(instance, ["gradient_boosting-2"], ["gradient_boosting-2"], "2025-02-01")
        report_check(instance, PERFORMANCE, "champion_roc_auc", False, ERROR, month="2025-03-01")
        waiting = tick(retrain_on_alert, instance)
        assert waiting.run_requests == []
        assert "gradient_boosting-2 await held-out labels" in waiting.skip_message
        # Judged once on held-out loans and refused: it no longer holds the next alarm back.
        report_gate(instance, ["gradient_boosting-2"], [], "2025-03-01")
        report_check(instance, PERFORMANCE, "champion_roc_auc", False, ERROR, month="2025-04-01")
        [request] = tick(retrain_on_alert, instance, waiting.cursor).run_requests
        assert (
            "2025-04-01"
            in request.run_config["ops"]["models__scorecard"]["config"]["reason_detail"]
        )


def test_the_gate_runs_again_when_a_newer_label_month_arrives_for_a_waiting_challenger():
    with dg.instance_for_test() as instance:
        assert tick(challenger_pending, instance).run_requests == []  # no gate run yet
        report_gate(instance, ["scorecard-2"], [], "2025-02-01")
        report_label_month(instance, "2025-02-01")
        assert tick(challenger_pending, instance).run_requests == []  # nothing newer
        report_label_month(instance, "2025-03-01")
        [request] = tick(challenger_pending, instance).run_requests
        assert request.run_key == "gate-2025-03-01-scorecard-2"
        report_gate(instance, [], [], "2025-03-01")  # promoted or expired: nobody waits
        report_label_month(instance, "2025-04-01")
        assert tick(challenger_pending, instance).run_requests == []


def test_new_raw_month_sensor_requests_the_months_not_yet_ingested(small_raw, tmp_path):
    raw_dir = tmp_path / "raw"
    shutil.copytree(small_raw, raw_dir)
    resources = {"raw_data": RawDataResource(raw_dir=str(raw_dir))}
    with dg.instance_for_test() as instance:
        first = tick(new_raw_month, instance, resources=resources)
        [request] = first.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2023-01-01"
        assert request.tags["dagster/asset_partition_range_end"] == "2025-11-01"
        same = tick(new_raw_month, instance, first.cursor, resources=resources)
        assert same.run_requests == [] and "unchanged" in same.skip_message

        # Every month but the last is ingested; the file changes: only the last is requested.
        bronze = dg.AssetKey(["bronze", "lms_loan_daily"])
        for month in monthly_refresh.partitions_def.get_partition_keys()[:-1]:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=bronze, partition=month)
            )
        loan_book = raw_dir / "lms_loan_daily.csv"
        os.utime(loan_book, ns=(loan_book.stat().st_atime_ns, loan_book.stat().st_mtime_ns + 10**9))
        changed = tick(new_raw_month, instance, same.cursor, resources=resources)
        [request] = changed.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2025-11-01"
        assert request.tags["dagster/asset_partition_range_end"] == "2025-11-01"


def test_new_raw_month_sensor_skips_while_the_raw_folder_is_empty(tmp_path):
    resources = {"raw_data": RawDataResource(raw_dir=str(tmp_path))}
    with dg.instance_for_test() as instance:
        result = tick(new_raw_month, instance, resources=resources)
    assert result.run_requests == []
    assert "raw files not there yet" in result.skip_message
    assert "lms_loan_daily.csv: file not found" in result.skip_message


def test_monthly_refresh_job_and_schedule_cover_every_monthly_asset():
    from loan_default.definitions import defs

    definitions = defs()
    job = definitions.resolve_job_def("monthly_refresh")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"bronze/lms_loan_daily", "gold/feature_store", "models/predictions"} <= keys
    assert {"monitoring/drift", "monitoring/model_performance", "monitoring/fairness"} <= keys
    assert not any(k.startswith("models/") and k != "models/predictions" for k in keys)
    schedule = definitions.resolve_schedule_def("monthly_refresh_schedule")
    assert schedule.cron_schedule == "0 6 2 * *"


def test_new_raw_month_sensor_waits_while_a_run_ingests_months(small_raw, tmp_path):
    """A backfill's queued month runs are writing those months: requesting them again would
    write them twice (the production profile's daemon runs this sensor beside backfills)."""
    resources = {"raw_data": RawDataResource(raw_dir=str(small_raw))}
    job = load_definitions().resolve_job_def("month_layers")
    bronze = dg.AssetKey(["bronze", "lms_loan_daily"])
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(
            job, status=dg.DagsterRunStatus.NOT_STARTED, asset_selection=frozenset({bronze})
        )
        waiting = tick(new_raw_month, instance, resources=resources)
        assert waiting.run_requests == [] and f"run {run.run_id}" in waiting.skip_message
        instance.report_run_canceled(run)
        [request] = tick(new_raw_month, instance, waiting.cursor, resources=resources).run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2023-01-01"

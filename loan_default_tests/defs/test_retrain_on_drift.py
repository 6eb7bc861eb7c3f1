"""End to end on the synthetic drift scenario, with one real Dagster instance throughout:
the drift check fails, the sensor asks for exactly one retrain, the run trains new versions,
the gate decides and says why, and a second tick asks for nothing."""

from datetime import date

import dagster as dg
import duckdb
import polars as pl
import pytest

from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.defs.monitoring.automation import retrain, retrain_on_alert
from loan_default.lib.models import registry
from loan_default.lib.models.families import FAMILIES
from loan_default.lib.synthetic import generate
from loan_default_tests.conftest import (
    ALL_MONTHS,
    materialize_months,
    project_assets,
    project_resources,
    range_tags,
)

GradientBoostingConfig = FAMILY_CONFIGS["gradient_boosting"]

DRIFT_FROM = date(2024, 8, 1)  # after the reference windows (train 2023 .. OOT 2024-05)


def materialize(instance, raw_dir, database, selection, run_config=None, months=None, tags=None):
    result = dg.materialize(
        project_assets(),
        selection=selection,
        instance=instance,
        resources=project_resources(raw_dir, database),
        run_config=run_config or {},
        tags={**range_tags(months), **(tags or {})},
    )
    assert result.success
    return result


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    raw_dir = tmp_path_factory.mktemp("drift_raw")
    generate(raw_dir, loans=6_000, seed=5, drift_from=DRIFT_FROM)
    return raw_dir


def test_drift_alert_retrains_once_and_the_gate_decides(drifted, tmp_path):
    database = tmp_path / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        assert materialize_months(drifted, database, instance).success
        materialize(
            instance,
            drifted,
            database,
            dg.AssetSelection.assets(["models", "gradient_boosting"], ["models", "champion"]),
            dg.RunConfig(
                {"models__gradient_boosting": GradientBoostingConfig(window_mode="absolute")}
            ),
        )
        materialize(
            instance, drifted, database, dg.AssetSelection.groups("predictions"), months=ALL_MONTHS
        )
        monitoring = materialize(
            instance,
            drifted,
            database,
            dg.AssetSelection.assets(
                ["monitoring", "drift"],
                ["monitoring", "estimated_performance"],
                ["monitoring", "model_performance"],
            ),
            months=ALL_MONTHS,
        )
        checks = {e.check_name: e for e in monitoring.get_asset_check_evaluations()}
        # The score shift is a finding to investigate, naming its inputs; it does not retrain.
        score_psi = checks["champion_score_psi"]
        assert not score_psi.passed
        assert score_psi.severity == dg.AssetCheckSeverity.WARN
        assert score_psi.metadata["month"].value == "2025-01-01"  # newest application month
        assert "shifted inputs:" in score_psi.description
        # The governance's P0: realized ROC-AUC on held-out months fell past the business
        # threshold or dropped past the maximum from the out-of-time baseline.
        roc_auc = checks["champion_roc_auc"]
        assert not roc_auc.passed
        assert roc_auc.severity == dg.AssetCheckSeverity.ERROR
        errors = [c for c in checks.values() if not c.passed and c.severity.value == "ERROR"]
        assert {c.check_name for c in errors} == {"champion_roc_auc"}

        tick = retrain_on_alert.evaluate_tick(dg.build_sensor_context(instance=instance))
        [request] = tick.run_requests
        assert request.job_name in (None, retrain.name)
        assert request.run_key.startswith("retrain-after-alert-")

        materialize(
            instance,
            drifted,
            database,
            retrain.selection,
            request.run_config,
            tags=request.tags,
        )
        with duckdb.connect(str(database)) as connection:
            versions = registry.all_versions(connection)
            decisions = registry.decisions(connection)
        retrained = [v for v in versions if v.reason_trained == "retrain-after-alert"]
        assert sorted(v.family for v in retrained) == sorted(FAMILIES)
        for version in retrained:
            assert "champion_roc_auc failed for 2025-07-01" in version.reason_detail
            # The newest cohorts learnt (recent windows as of 2025-07); test and OOT come later.
            assert version.windows["validation"] == ["2025-01-01", "2025-01-01"]
            assert version.windows["oot"] == ["2025-03-01", "2025-03-01"]
        judged = decisions.filter(
            pl.col("candidate_version").is_in([v.version_id for v in retrained])
        )
        assert judged.height == len(FAMILIES)
        assert judged["reason"].str.len_chars().min() > 0
        champion_now = [v for v in versions if v.status == "champion"]
        assert len(champion_now) == 1
        print(judged.select("candidate_version", "promoted", "reason"))

        second = retrain_on_alert.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=tick.cursor)
        )
        assert second.run_requests == []

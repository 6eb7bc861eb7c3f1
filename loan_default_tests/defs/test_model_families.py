"""The family registry (lib/models/families.py) is the one list of model families: the model
assets and their config, the retrain job, the gate, the backtest and serving enumerate it."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import dagster as dg
import duckdb
import pytest

from loan_default.definitions import defs
from loan_default.defs.models.assets import CHAMPION, model_assets
from loan_default.defs.models.config import FAMILY_CONFIGS, BacktestConfig
from loan_default.defs.monitoring.automation import retrain, retrain_request
from loan_default.lib.models import registry
from loan_default.lib.models.families import FAMILIES, family
from loan_default.lib.models.promotion import candidates
from loan_default.serving.model_holder import ChampionHolder


def record(name: str, version: str, status: str = "challenger", auc: float = 0.8):
    return registry.RegistryRecord(
        family=name,
        version_id=version,
        trained_at=datetime(2026, 1, 1),
        as_of_month=date(2025, 7, 1),
        windows={},
        hyperparameters={},
        features=[],
        metrics={"validation": {"roc_auc": auc}},
        threshold=0.5,
        artifact_path="/nowhere.pkl",
        artifact_sha256="0" * 64,
        input_data_version="x",
        code_version="x",
        status=status,
        reason_trained="initial",
        train_seconds=0.0,
    )


def test_one_model_asset_and_config_per_family():
    assert [a.key for a in model_assets] == [dg.AssetKey(["models", n]) for n in FAMILIES]
    assert list(FAMILY_CONFIGS) == list(FAMILIES)
    assert BacktestConfig().families == list(FAMILIES)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_config_fields_are_the_params_dataclass(name):
    """Hyperparameters are declared once, in the params dataclass; the config exposes each
    field with its default, and the training seed seeds the family."""
    params = FAMILIES[name].params
    config_fields = FAMILY_CONFIGS[name].model_fields
    for field in dataclasses.fields(params):
        assert field.name in config_fields
        if field.name != "seed":
            assert config_fields[field.name].default == field.default
    assert FAMILY_CONFIGS[name]().hyperparameters() == FAMILIES[name].hyperparameters()
    seeded = FAMILY_CONFIGS[name](seed=7).hyperparameters()
    assert seeded.get("seed", 7) == 7


def test_an_unknown_family_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown model family 'random_forest'"):
        family("random_forest")


def test_the_retrain_job_trains_every_family_then_the_gate_and_what_follows_it():
    job = defs().resolve_job_def(retrain.name)
    follow_ups = {
        dg.AssetKey(["models", "predictions"]),
        dg.AssetKey(["models", "model_document"]),
        *(dg.AssetKey(["monitoring", n]) for n in ("drift", "estimated_performance")),
        *(dg.AssetKey(["monitoring", n]) for n in ("model_performance", "fairness")),
        dg.AssetKey(["monitoring", "monitoring_report"]),
    }
    assert job.asset_layer.selected_asset_keys == {
        *(dg.AssetKey(["models", n]) for n in FAMILIES),
        CHAMPION,
        *follow_ups,
    }


def test_the_retrain_request_configures_every_family():
    class Evaluation:  # what the sensor reads from a failed check's event
        asset_key = dg.AssetKey(["monitoring", "model_performance"])
        check_name = "champion_roc_auc"
        metadata: dict = {}
        description = "below threshold"

    request = retrain_request([(5, Evaluation())])
    assert list(request.run_config["ops"]) == [f"models__{n}" for n in FAMILIES]


def test_the_gate_judges_the_newest_challenger_of_each_declared_family():
    latest = {
        "gradient_boosting": record("gradient_boosting", "gb-2", auc=0.85),
        "logistic_regression": record("logistic_regression", "lr-1", auc=0.80),
        "tab_transformer": record("tab_transformer", "tt-1", status="champion"),
        "retired_family": record("retired_family", "rf-1", auc=0.99),
    }
    assert [r.version_id for r in candidates(latest)] == ["gb-2", "lr-1"]


def test_serving_refuses_a_champion_of_an_undeclared_family(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        registry.register(connection, record("retired_family", "rf-1", status="champion"))
    holder = ChampionHolder(warehouse)
    assert not holder.refresh()
    assert holder.current is None
    assert "'retired_family', which this code does not declare" in holder.last_error

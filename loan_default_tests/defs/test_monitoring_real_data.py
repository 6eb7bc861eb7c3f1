"""Monitoring on the real data: every label month with predictions is monitored, counts add
up to the label store, the estimate sits beside the realized figure, the report exists."""

import json
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.defs.monitoring.assets import FAIRNESS_RULES
from loan_default_tests.conftest import (
    ALL_MONTHS,
    project_assets,
    project_resources,
    range_tags,
    require_real_data,
)

GradientBoostingConfig = FAMILY_CONFIGS["gradient_boosting"]

LABEL_MONTHS = 25  # 2023-07 .. 2025-07
MONITORING = dg.AssetSelection.assets(
    ["monitoring", "drift"],
    ["monitoring", "estimated_performance"],
    ["monitoring", "model_performance"],
    ["monitoring", "fairness"],
)


def run(database: Path, selection, run_config=None, months=None) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            project_assets(),
            selection=selection,
            instance=instance,
            resources=project_resources(require_real_data(), database),
            run_config=run_config or {},
            tags=range_tags(months),
        )
    assert result.success
    return result


def monitor_champion(warehouse: Path, folder: Path, config: GradientBoostingConfig):
    """A copy of the real warehouse with a boosting champion, scored and monitored."""
    database = folder / "warehouse.duckdb"
    shutil.copy(warehouse, database)
    run(
        database,
        dg.AssetSelection.assets(["models", "gradient_boosting"], ["models", "champion"]),
        dg.RunConfig({"models__gradient_boosting": config}),
    )
    run(database, dg.AssetSelection.groups("predictions"), months=ALL_MONTHS)
    result = run(database, MONITORING, months=ALL_MONTHS)
    report = run(database, dg.AssetSelection.assets(["monitoring", "monitoring_report"]))
    return database, result, report


@pytest.fixture(scope="module")
def monitored(real_warehouse, tmp_path_factory):
    """The champion on the reference windows (train 2023, fitted through 2024-02)."""
    return monitor_champion(
        real_warehouse[0],
        tmp_path_factory.mktemp("monitored"),
        GradientBoostingConfig(window_mode="absolute"),
    )


def table(database: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(f"select * from {name}").pl()


def test_every_label_month_is_monitored_and_counts_match_the_label_store(monitored):
    database, _, _ = monitored
    performance = table(database, "monitoring.model_performance")
    labels = table(database, "gold.label_store")
    month_rows = performance.filter(pl.col("window") == "month")
    assert month_rows["label_month"].n_unique() == LABEL_MONTHS
    assert (month_rows["label_month"].min(), month_rows["label_month"].max()) == (
        date(2023, 7, 1),
        date(2025, 7, 1),
    )
    assert month_rows["n"].sum() == labels.height == 12_500
    assert month_rows["defaults"].sum() == labels["label"].sum() == 3_602
    per_month = labels.group_by("label_month").len().sort("label_month")
    assert month_rows.sort("label_month")["n"].to_list() == per_month["len"].to_list()
    # Reference windows end validation in 2024-02: labels of 2024-09 on are held out.
    held_out = month_rows.filter(pl.col("held_out"))["label_month"]
    assert held_out.min() == date(2024, 9, 1)
    # The estimate made at T-6 sits beside the realized figure, and both are sane.
    sane = month_rows.filter(pl.col("held_out"))
    assert sane["estimated_roc_auc"].is_not_null().all()
    assert (sane["roc_auc_low"] <= sane["roc_auc"]).all()
    assert (sane["roc_auc"] <= sane["roc_auc_high"]).all()
    rolling = performance.filter(pl.col("window") == "rolling_3m")
    assert rolling["months_pooled"].max() == 3


def test_drift_and_estimates_cover_every_application_month(monitored):
    database, result, _ = monitored
    drift = table(database, "monitoring.drift")
    estimates = table(database, "monitoring.estimated_performance")
    assert drift["month"].n_unique() == estimates["application_month"].n_unique() == 25
    assert estimates["n"].sum() == 12_500
    in_train = drift.filter((pl.col("kind") == "score") & (pl.col("month") == date(2023, 6, 1)))
    assert in_train["psi"][0] < 0.1  # a training month looks like the training population
    names = {e.check_name for e in result.get_asset_check_evaluations()}
    assert {"champion_score_psi", "champion_roc_auc", "champion_brier"} <= names


def test_report_json_and_dashboard_exist(monitored):
    database, _, report = monitored
    [materialization] = [e.materialization for e in report.get_asset_materialization_events()]
    path = Path(materialization.metadata["report"].value)
    actions = json.loads(path.read_text())["actions"]
    assert {a["action"] for a in actions} <= {"MONITOR", "ACTIVE_MONITORING", "RETRAIN"}
    assert {a["model_family"] for a in actions} == {"gradient_boosting"}
    dashboard = Path(materialization.metadata["dashboard"].value)
    assert dashboard.stat().st_size > 100_000 and "plotly" in dashboard.read_text()
    assert 'id="fairness-figure"' in dashboard.read_text()


def test_fairness_has_every_band_of_every_month_on_both_clocks(monitored):
    database, result, _ = monitored
    fairness = table(database, "monitoring.fairness")
    bands = {*FAIRNESS_RULES.band_names}
    estimates = table(database, "monitoring.estimated_performance")
    performance = table(database, "monitoring.model_performance")
    application = fairness.filter(pl.col("clock") == "application")
    label = fairness.filter(pl.col("clock") == "label")
    assert set(application["month"]) == set(estimates["application_month"])
    assert set(label["month"]) == set(performance["label_month"])
    # Every month, version and window holds every band, the empty ones included.
    per_cell = fairness.group_by("month", "clock", "model_version", "window").agg("age_band")
    assert all(set(b) == bands and len(b) == len(bands) for b in per_cell["age_band"])
    months = application.filter(pl.col("window") == "month")
    assert months["n"].sum() == label.filter(pl.col("window") == "month")["n"].sum() == 12_500
    # Ages come from the feature store; a loan without a valid one is 'unknown', never judged.
    assert not fairness.filter(pl.col("age_band") == "unknown")["judged"].any()
    assert label["roc_auc"].is_not_null().any() and application["roc_auc"].is_null().all()
    assert not {"ssn", "name", "customer_id"} & {c.lower() for c in fairness.columns}
    [check] = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "champion_adverse_impact_ratio"
    ]
    judged = application.filter(
        pl.col("is_champion")
        & (pl.col("window") == FAIRNESS_RULES.evaluate_on)
        & (pl.col("month") == application["month"].max())
        & pl.col("judged")
    )
    below = judged.filter(pl.col("adverse_impact_ratio") < FAIRNESS_RULES.min_adverse_impact_ratio)
    assert check.passed is below.is_empty()
    assert check.metadata["judged_bands"].value == judged.height >= 2
    if not check.passed:
        assert check.severity == dg.AssetCheckSeverity.WARN


@pytest.fixture(scope="module")
def monitored_relative(real_warehouse, tmp_path_factory):
    """What `make run` trains: the champion on relative windows (fitted through 2024-10)."""
    return monitor_champion(
        real_warehouse[0], tmp_path_factory.mktemp("monitored_relative"), GradientBoostingConfig()
    )


def test_drift_is_quiet_before_the_gap_and_names_the_missing_clickstream_after(
    monitored_relative,
):
    database, result, report = monitored_relative
    drift = table(database, "monitoring.drift").filter(pl.col("is_champion"))
    features = drift.filter(pl.col("kind") == "feature")
    # Application months 2023-06..2024-06: no input's values drift past the shift threshold.
    before = features.filter(pl.col("month").is_between(date(2023, 6, 1), date(2024, 6, 1)))
    assert before["month"].n_unique() == 13
    assert before["psi"].max() <= 0.25, before.sort("psi").tail(3)
    # From 2024-07 the clickstream is missing: a missingness change, not a value shift. The
    # training window (2023-08..2024-07) holds the 2024-07 cohort, about 9% without it.
    gap = features.filter(
        (pl.col("month") >= date(2024, 7, 1)) & pl.col("feature").str.starts_with("fe_")
    )
    assert gap["missing_share"].min() == 1.0
    assert 0.08 < gap["missing_share_reference"].max() < 0.1
    assert gap["psi"].is_null().all()
    # Months up to 2024-10 fitted or calibrated the champion: shown, never judged.
    assert not drift.filter(pl.col("month") <= date(2024, 10, 1))["held_out"].any()
    assert drift.filter(pl.col("month") > date(2024, 10, 1))["held_out"].all()
    [materialization] = [e.materialization for e in report.get_asset_materialization_events()]
    actions = [
        a
        for a in json.loads(Path(materialization.metadata["report"].value).read_text())["actions"]
        if a["is_champion"]
    ]
    assert {a["action"] for a in actions} == {"MONITOR", "ACTIVE_MONITORING"}
    assert all(a["action"] == "MONITOR" for a in actions if a["month"] <= "2024-10-01")
    judged_drift = [a for a in actions if "2024-11-01" <= a["month"] <= "2025-01-01"]
    assert len(judged_drift) == 3
    for action in judged_drift:
        assert action["action"] == "ACTIVE_MONITORING"
        assert any("missing:clickstream" in reason for reason in action["reasons"])
    # Nothing asks for a retrain: no ERROR among the champion's checks.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["champion_input_missing"].severity == dg.AssetCheckSeverity.WARN
    assert not checks["champion_input_missing"].passed
    errors = [c for c in checks.values() if not c.passed and c.severity.value == "ERROR"]
    assert errors == [], [c.description for c in errors]

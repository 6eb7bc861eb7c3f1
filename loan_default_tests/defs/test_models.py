"""Model assets on the real data: floors on the reference windows, the gate, predictions."""

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from loan_default.defs.models.config import FAMILY_CONFIGS
from loan_default.lib.models import registry
from loan_default_tests.conftest import (
    project_assets,
    project_resources,
    range_tags,
    require_real_data,
)

LogisticRegressionConfig = FAMILY_CONFIGS["logistic_regression"]
GradientBoostingConfig = FAMILY_CONFIGS["gradient_boosting"]
TabTransformerConfig = FAMILY_CONFIGS["tab_transformer"]
ScorecardConfig = FAMILY_CONFIGS["scorecard"]

REFERENCE = {"window_mode": "absolute"}  # the config defaults are the reference windows
LR, GB = (
    dg.AssetKey(["models", "logistic_regression"]),
    dg.AssetKey(["models", "gradient_boosting"]),
)
TT = dg.AssetKey(["models", "tab_transformer"])
SC = dg.AssetKey(["models", "scorecard"])
CHAMPION, PREDICTIONS = dg.AssetKey(["models", "champion"]), dg.AssetKey(["models", "predictions"])


def run(database, selection, run_config=None, months=None) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            project_assets(),
            selection=dg.AssetSelection.assets(*selection),
            instance=instance,
            resources=project_resources(require_real_data(), database),
            run_config=dg.RunConfig(run_config or {}),
            tags=range_tags(months),
        )
    assert result.success
    return result


@pytest.fixture
def warehouse(real_warehouse, tmp_path):
    """A private copy of the real-data warehouse, so model runs do not leak between tests."""
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse[0], database)
    return database


def versions(database) -> list[registry.RegistryRecord]:
    with duckdb.connect(str(database)) as connection:
        return registry.all_versions(connection)


def test_reference_windows_reach_the_floors(warehouse):
    result = run(
        warehouse,
        [LR, GB, TT],
        {
            "models__logistic_regression": LogisticRegressionConfig(**REFERENCE),
            "models__gradient_boosting": GradientBoostingConfig(**REFERENCE),
            "models__tab_transformer": TabTransformerConfig(**REFERENCE),
        },
    )
    by_family = {r.family: r for r in versions(warehouse)}
    floors = {"gradient_boosting": 0.85, "logistic_regression": 0.82, "tab_transformer": 0.83}
    for family, floor in floors.items():
        oot = by_family[family].metrics["oot"]
        assert by_family[family].windows["oot"] == ["2024-05-01", "2024-05-01"]
        assert oot["roc_auc"] >= floor, (family, oot)
        assert oot["brier"] <= 0.14, (family, oot)
        assert abs(oot["predicted_default_rate"] - oot["default_rate"]) <= 0.03, (family, oot)
        assert by_family[family].reason_trained == "initial"
        assert by_family[family].status == "challenger"
    # The TabTransformer's training curves are a plotly file linked from its materialization.
    curves = {
        m.asset_key: m.metadata.get("training_curves")
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }[TT]
    assert "plotly" in Path(curves.value).read_text()


def test_the_scorecard_is_within_0_02_of_the_logistic_regression(warehouse):
    """The committee's model on the reference windows: OOT ROC-AUC at most 0.02 below the
    logistic regression's, bins monotonic as configured, points rising as risk falls, missing
    clickstream a bin of its own, the points table in the UI and as CSV beside the artifact."""
    trends = {"delay_from_due_date": "ascending", "interest_rate": "ascending"}
    result = run(
        warehouse,
        [LR, SC],
        {
            "models__logistic_regression": LogisticRegressionConfig(**REFERENCE),
            "models__scorecard": ScorecardConfig(**REFERENCE, monotonic_trends=trends),
        },
    )
    by_family = {r.family: r for r in versions(warehouse)}
    scorecard, logistic = by_family["scorecard"], by_family["logistic_regression"]
    assert scorecard.windows == logistic.windows and scorecard.windows["oot"][0] == "2024-05-01"
    gap = logistic.metrics["oot"]["roc_auc"] - scorecard.metrics["oot"]["roc_auc"]
    assert gap <= 0.02, (scorecard.metrics["oot"], logistic.metrics["oot"])
    assert scorecard.hyperparameters["monotonic_trends"] == trends

    metadata = {
        m.asset_key: m.metadata
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }[SC]
    csv = Path(metadata["scorecard_csv"].value)
    assert csv.parent == Path(scorecard.artifact_path).parent
    table = pl.read_csv(csv)
    shown = pl.DataFrame([r.data for r in metadata["scorecard"].value.records])
    # The UI shows the CSV's values, floats rounded to four decimals.
    rounded = table.select(shown.columns).with_columns(pl.col(pl.Float64).round(4))
    assert shown.equals(rounded.cast(shown.schema))
    assert table.columns[:3] == ["feature", "bin_id", "bin"]
    assert {"count", "event_rate", "woe", "iv", "points"} <= set(table.columns)
    values = pl.DataFrame([r.data for r in metadata["information_value"].value.records])
    assert values["iv"].is_sorted(descending=True) and values.height == len(scorecard.features)
    assert Path(metadata["information_value_csv"].value).exists()

    regular = table.filter(~pl.col("bin").is_in(["Missing", "Special"])).sort("feature", "bin_id")
    for (feature,), bins in regular.group_by("feature"):
        trend = values.filter(pl.col("feature") == feature)["monotonic_trend"][0]
        steps = np.diff(bins["event_rate"].to_numpy())
        if trend == "ascending":
            assert np.all(steps >= 0), feature
        elif trend == "auto_asc_desc":
            assert np.all(steps >= 0) or np.all(steps <= 0), feature
        assert (bins["coefficient"] < 0).all(), feature  # a safer bin earns more points
    assert set(trends) <= set(regular["feature"])
    clickstream = table.filter(
        pl.col("feature").str.starts_with("fe_") & (pl.col("bin") == "Missing")
    )
    assert clickstream.height >= 1 and (clickstream["count"] > 0).all()


def test_same_seed_same_metrics(warehouse):
    config = {"models__gradient_boosting": GradientBoostingConfig(**REFERENCE)}
    run(warehouse, [GB], config)
    run(warehouse, [GB], config)
    first, second = versions(warehouse)
    assert first.metrics == second.metrics
    assert first.artifact_sha256 == second.artifact_sha256
    assert second.reason_trained == "scheduled"


def test_gate_promotes_a_better_model_and_refuses_a_worse_one(warehouse):
    weak = {"models__logistic_regression": LogisticRegressionConfig(**REFERENCE, C=1e-5)}
    run(warehouse, [LR, CHAMPION], weak)
    run(
        warehouse,
        [GB, CHAMPION],
        {"models__gradient_boosting": GradientBoostingConfig(**REFERENCE)},
    )
    run(warehouse, [LR, CHAMPION], weak)
    status = [(r.family, r.status) for r in versions(warehouse)]
    assert status == [
        ("logistic_regression", "retired"),
        ("gradient_boosting", "champion"),
        ("logistic_regression", "challenger"),
    ]
    with duckdb.connect(str(warehouse)) as connection:
        decisions = registry.decisions(connection)
    assert decisions["promoted"].to_list() == [True, True, False]
    assert "no champion yet" in decisions["reason"][0]
    assert "not above the margin" in decisions["reason"][2]
    assert decisions["lower_bound"][2] <= decisions["margin"][2]
    # Nothing new to judge (no month labelled since): a second gate run decides nothing.
    run(warehouse, [CHAMPION])
    with duckdb.connect(str(warehouse)) as connection:
        assert registry.decisions(connection).height == 3


def test_labels_after_the_as_of_month_do_not_change_the_model(warehouse):
    config = {"models__gradient_boosting": GradientBoostingConfig(as_of_label_month="2024-11-01")}
    run(warehouse, [GB], config)
    with duckdb.connect(str(warehouse)) as connection:
        changed = connection.execute(
            "update gold.label_store set label = 1 - label where label_month > '2024-11-01'"
        ).fetchone()[0]
    assert changed > 1000
    run(warehouse, [GB], config)
    first, second = versions(warehouse)
    assert first.windows["oot"] == ["2024-05-01", "2024-05-01"]
    assert first.metrics == second.metrics
    assert first.artifact_sha256 == second.artifact_sha256


def predictions_of(database) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(
            "select * exclude (scored_at) from models.predictions order by all"
        ).pl()


def test_predictions_change_with_their_month_features_only(warehouse):
    run(
        warehouse,
        [LR, GB, CHAMPION],
        {
            "models__logistic_regression": LogisticRegressionConfig(**REFERENCE),
            "models__gradient_boosting": GradientBoostingConfig(**REFERENCE),
        },
    )
    months = ("2024-05-01", "2024-06-01")
    run(warehouse, [PREDICTIONS], months=months)
    before = predictions_of(warehouse)
    assert before.height == 2 * before["loan_id"].n_unique() > 800
    champions = before.filter(pl.col("is_champion"))["model_family"].unique().to_list()
    assert champions == ["gradient_boosting"]

    run(warehouse, [PREDICTIONS], months=months)
    assert predictions_of(warehouse).equals(before)

    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "update gold.feature_store set interest_rate = 34, credit_mix = 'Bad' "
            "where application_month = '2024-05-01'"
        )
    run(warehouse, [PREDICTIONS], months=months)
    after = predictions_of(warehouse)
    may, june = (pl.col("application_month") == date(2024, m, 1) for m in (5, 6))
    assert not after.filter(may).equals(before.filter(may))
    assert after.filter(june).equals(before.filter(june))


def decisions_of(database) -> pl.DataFrame:
    with duckdb.connect(str(database)) as connection:
        return registry.decisions(connection)


def test_the_gate_compares_only_months_held_out_for_both(warehouse):
    weak = {"models__logistic_regression": LogisticRegressionConfig(**REFERENCE, C=1e-5)}
    relative = {"models__gradient_boosting": GradientBoostingConfig()}  # validation to 2024-10
    run(warehouse, [LR, CHAMPION], weak)  # the first champion, fitted up to 2024-02
    # A champion fitted earlier than the challenger: the challenger's test window (its OOT,
    # 2025-01, is reported, never used to choose).
    run(warehouse, [GB, CHAMPION], relative)
    # A champion fitted later than the challenger: the months after the champion's fit.
    run(warehouse, [LR, CHAMPION], weak)
    decisions = decisions_of(warehouse)
    assert decisions["promoted"].to_list() == [True, True, False]
    earlier, later = decisions.tail(2).iter_rows(named=True)
    assert later["window_months"] == "2024-11-01,2024-12-01,2025-01-01"
    assert earlier["window_months"] == "2024-11-01,2024-12-01"
    assert earlier["n"] == 488 + 515  # the real cohorts of 2024-11 and 2024-12
    for decision in (later, earlier):
        assert decision["window_name"] == "held_out_for_both"
        assert decision["difference_low"] < decision["auc_difference"] < decision["difference_high"]
        assert decision["auc_difference"] == pytest.approx(
            decision["candidate_auc"] - decision["champion_auc"]
        )
        fitted = [
            r.windows["validation"][1]
            for r in versions(warehouse)
            if r.version_id in (decision["candidate_version"], decision["champion_version"])
        ]
        assert all(m > max(fitted) for m in decision["window_months"].split(","))


def test_a_negative_margin_is_refused_before_any_decision(warehouse):
    run(warehouse, [GB, CHAMPION], {"models__gradient_boosting": GradientBoostingConfig()})
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            project_assets(),
            selection=dg.AssetSelection.assets(GB, CHAMPION),
            instance=instance,
            resources=project_resources(require_real_data(), warehouse),
            run_config=dg.RunConfig(
                {
                    "models__gradient_boosting": GradientBoostingConfig(seed=7),
                    "models__champion": {"config": {"margin": -1.0}},
                }
            ),
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "margin must be >= 0" in failure.step_failure_data.error.to_string()
    assert decisions_of(warehouse).height == 1  # only the first champion's


def test_a_refused_challenger_of_the_champions_family_leaves_its_rows_intact(warehouse):
    months = ("2024-11-01", "2025-01-01")
    run(warehouse, [GB, CHAMPION], {"models__gradient_boosting": GradientBoostingConfig()})
    run(warehouse, [PREDICTIONS], months=months)
    before = predictions_of(warehouse)
    [champion] = before["model_version"].unique().to_list()
    weak = GradientBoostingConfig(max_iter=1, learning_rate=0.01)
    run(warehouse, [GB, CHAMPION], {"models__gradient_boosting": weak})
    assert not decisions_of(warehouse)["promoted"][-1]
    run(warehouse, [PREDICTIONS], months=months)
    after = predictions_of(warehouse)
    champion_rows = after.filter(pl.col("is_champion"))
    assert champion_rows.drop("is_champion").equals(before.drop("is_champion"))
    assert champion_rows["model_version"].unique().to_list() == [champion]
    per_application = champion_rows.group_by("loan_id", "application_month").len()
    assert per_application["len"].max() == 1
    assert per_application.height == after["loan_id"].n_unique() == 488 + 515 + 526
    refused = after.filter(~pl.col("is_champion"))
    assert refused["model_family"].unique().to_list() == ["gradient_boosting"]
    assert refused.height == champion_rows.height

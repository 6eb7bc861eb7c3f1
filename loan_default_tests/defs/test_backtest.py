"""The walk-forward backtest on the real data: each as-of month trains on its own relative
windows, with labels observed by then, and is judged on its out-of-time month."""

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from loan_default.defs.models.backtest import BACKTEST, BACKTEST_SUMMARY
from loan_default.lib.models.backtest import evaluate
from loan_default.lib.models.families import FAMILIES
from loan_default.lib.models.model_data import labeled_applications
from loan_default.lib.models.model_windows import Windows
from loan_default.settings import LABEL
from loan_default_tests.conftest import (
    project_assets,
    project_resources,
    range_tags,
    require_real_data,
)


def test_backtest_two_as_of_months_of_every_family_and_its_summary(real_warehouse, tmp_path):
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse[0], database)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            project_assets(),
            selection=dg.AssetSelection.assets(BACKTEST, BACKTEST_SUMMARY),
            instance=instance,
            resources=project_resources(require_real_data(), database),
            tags=range_tags(("2025-06-01", "2025-07-01")),
        )
    assert result.success
    with duckdb.connect(str(database), read_only=True) as connection:
        table = connection.execute(
            "select * from models.backtest order by as_of_month, model_family"
        ).pl()
        features = connection.execute("select * from gold.feature_store").pl()
        labels = connection.execute("select * from gold.label_store").pl()
    # By default every family is compared, the TabTransformer included.
    for as_of in (date(2025, 6, 1), date(2025, 7, 1)):
        month = table.filter(pl.col("as_of_month") == as_of)
        assert month["model_family"].to_list() == sorted(FAMILIES)
    # As of label month T the OOT month is T - 6; its cohort is the real one of that month.
    assert table.select("as_of_month", "oot_month", "n").unique(maintain_order=True).rows() == [
        (date(2025, 6, 1), date(2024, 12, 1), 515),
        (date(2025, 7, 1), date(2025, 1, 1), 526),
    ]
    assert table["train_last"].unique().sort().to_list() == [date(2024, 6, 1), date(2024, 7, 1)]
    assert (table["roc_auc"] > 0.7).all()
    assert (table["roc_auc_low"] < table["roc_auc"]).all()
    assert (table["has_clickstream_share"] == 0.0).all()
    # The months share one preparation of the stores; a month prepared on its own (its labeled
    # applications observed by its as-of month) gives the same row.
    as_of = date(2025, 6, 1)
    alone = evaluate(
        "logistic_regression",
        as_of,
        Windows.relative(as_of, LABEL.mob, (12, 3, 2, 1)),
        labeled_applications(features, labels, LABEL, as_of),
        features,
        {},
        seed=42,
        clickstream_dropout=0.3,
        log=lambda _: None,
    )
    shared = table.filter(
        (pl.col("as_of_month") == date(2025, 6, 1))
        & (pl.col("model_family") == "logistic_regression")
    ).row(0, named=True)
    assert {k: v for k, v in shared.items() if k != "train_seconds"} == {
        k: v for k, v in alone.items() if k != "train_seconds"
    }
    summary = {
        m.asset_key: m.metadata
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }[BACKTEST_SUMMARY]
    assert summary["as_of_months"].value == 2
    assert "tab_transformer | 2 |" in summary["summary"].value
    assert "plotly" in Path(summary["chart"].value).read_text()[:20_000]


def test_the_backtest_refuses_an_unknown_family(real_warehouse, tmp_path):
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse[0], database)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            project_assets(),
            selection=dg.AssetSelection.assets(BACKTEST),
            instance=instance,
            resources=project_resources(require_real_data(), database),
            run_config=dg.RunConfig({"models__backtest": {"config": {"families": ["xgboost"]}}}),
            partition_key="2025-07-01",
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "unknown families ['xgboost']" in str(failure.event_specific_data.error)

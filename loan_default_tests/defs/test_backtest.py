"""The walk-forward backtest on the real data: each as-of month trains on its own relative
windows, with labels observed by then, and is judged on its out-of-time month."""

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from loan_default.defs.models.backtest import BACKTEST, BACKTEST_SUMMARY
from loan_default_tests.conftest import (
    project_assets,
    project_resources,
    range_tags,
    require_real_data,
)


def test_backtest_two_as_of_months_and_its_summary(real_warehouse, tmp_path):
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse[0], database)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            project_assets(),
            selection=dg.AssetSelection.assets(BACKTEST, BACKTEST_SUMMARY),
            instance=instance,
            resources=project_resources(require_real_data(), database),
            run_config=dg.RunConfig(
                {"models__backtest": {"config": {"families": ["gradient_boosting"]}}}
            ),
            tags=range_tags(("2025-06-01", "2025-07-01")),
        )
    assert result.success
    with duckdb.connect(str(database), read_only=True) as connection:
        table = connection.execute("select * from models.backtest order by as_of_month").pl()
    # As of label month T the OOT month is T - 6; its cohort is the real one of that month.
    assert table.select("as_of_month", "oot_month", "n").rows() == [
        (date(2025, 6, 1), date(2024, 12, 1), 515),
        (date(2025, 7, 1), date(2025, 1, 1), 526),
    ]
    assert table["train_last"].to_list() == [date(2024, 6, 1), date(2024, 7, 1)]
    assert (table["roc_auc"] > 0.7).all()
    assert (table["roc_auc_low"] < table["roc_auc"]).all()
    assert table["has_clickstream_share"].to_list() == [0.0, 0.0]
    summary = {
        m.asset_key: m.metadata
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }[BACKTEST_SUMMARY]
    assert summary["as_of_months"].value == 2
    assert "gradient_boosting | 2 |" in summary["summary"].value
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

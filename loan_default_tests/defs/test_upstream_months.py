"""A feature-store month refuses to build from partial clickstream history (issue 14, finding 5)."""

import dagster as dg

from loan_default_tests.conftest import (
    materialize_months,
    project_assets,
    project_resources,
    range_tags,
    require_real_data,
)

SILVER = dg.AssetSelection.groups("bronze", "silver")
CLICKSTREAM = dg.AssetKey(["silver", "feature_clickstream"])
FEATURES = dg.AssetSelection.assets(dg.AssetKey(["gold", "feature_store"]))


def test_feature_month_refuses_when_a_clickstream_month_it_reads_is_missing(tmp_path):
    raw_dir, database = require_real_data(), tmp_path / "w.duckdb"
    without_clickstream = (
        SILVER - dg.AssetSelection.assets(CLICKSTREAM).required_multi_asset_neighbors()
    )
    with dg.instance_for_test() as instance:
        # The loan book has 2023-01..04; silver clickstream misses 2023-03.
        months = ("2023-01-01", "2023-04-01")
        assert materialize_months(raw_dir, database, instance, months, without_clickstream).success
        for part in (("2023-01-01", "2023-02-01"), ("2023-04-01", "2023-04-01")):
            assert materialize_months(raw_dir, database, instance, part, SILVER).success
        result = dg.materialize(
            project_assets(),
            selection=FEATURES,
            instance=instance,
            resources=project_resources(raw_dir, database),
            tags=range_tags(("2023-04-01", "2023-04-01")),
            raise_on_error=False,
        )
    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert "silver/feature_clickstream: 2023-03-01" in message
    assert "no run in progress writes them" in message
    assert "make backfill MONTHS=2023-03-01...2023-04-01" in message
    assert not result.get_asset_materialization_events()

"""The documented command-line entry points, run for real."""

from pathlib import Path

import dagster as dg

from loan_default.lib.storage.warehouse_tables import fingerprints
from loan_default_tests.cli_env import backfill_command, project_env, run_cli
from loan_default_tests.conftest import require_real_data

BACKFILL_ALL = backfill_command()


def test_definitions_validate(tmp_path):
    env = project_env(tmp_path, tmp_path)
    result = run_cli(["dagster", "definitions", "validate", "-w", "workspace.yaml"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr


def test_backfill_all_months_twice_gives_identical_tables(tmp_path, monkeypatch):
    env = project_env(tmp_path, require_real_data())
    first = run_cli(BACKFILL_ALL, env)
    assert first.returncode == 0, first.stderr[-3000:]
    after_first = fingerprints(Path(env["LOAN_DEFAULT_WAREHOUSE"]))
    second = run_cli(BACKFILL_ALL, env)
    assert second.returncode == 0, second.stderr[-3000:]
    after_second = fingerprints(Path(env["LOAN_DEFAULT_WAREHOUSE"]))

    assert after_first == after_second
    assert after_first["gold.label_store"][0] == 12_500
    assert after_first["gold.feature_store"][0] == 12_500
    assert after_first["bronze.feature_clickstream"][0] == 215_376
    # Both runs are in the instance, so they show in the UI.
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2

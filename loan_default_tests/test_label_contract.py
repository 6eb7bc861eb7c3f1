"""One label contract, run for real: a non-default label (60 days past due at month on book 3)
flows through the label store, training, the gate and monitoring, and a process started with
another definition refuses the labels instead of mixing them."""

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from loan_default.lib.months import add_months
from loan_default.lib.synthetic import generate
from loan_default_tests.cli_env import project_env, run_cli

MATERIALIZE = ["dagster", "asset", "materialize", "-m", "loan_default.definitions"]
MONTHS = ["--partition-range", "2023-01-01...2025-11-01"]
MODELS = 'key:"models/gradient_boosting" or key:"models/logistic_regression" or key:models/champion'


def materialize(env: dict, selection: str, *extra: str):
    result = run_cli([*MATERIALIZE, "--select", selection, *extra], env, timeout=900)
    return result


@pytest.fixture(scope="module")
def contract_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("label_contract")
    raw_dir = tmp_path / "raw"
    generate(raw_dir, loans=4_000, seed=3)
    env = project_env(tmp_path, raw_dir) | {
        "LOAN_DEFAULT_LABEL_DPD": "60",
        "LOAN_DEFAULT_LABEL_MOB": "3",
        "LOAN_DEFAULT_ARTIFACTS": str(tmp_path / "artifacts"),
        "LOAN_DEFAULT_REPORTS": str(tmp_path / "reports"),
    }
    for selection, extra in [
        ("group:bronze or group:silver or group:gold", MONTHS),
        (MODELS, []),
        ("group:predictions", MONTHS),
        ("key:monitoring/estimated_performance or key:monitoring/model_performance", MONTHS),
    ]:
        result = materialize(env, selection, *extra)
        assert result.returncode == 0, result.stderr[-3000:]
    return env, Path(env["LOAN_DEFAULT_WAREHOUSE"])


def query(database: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).pl()


def test_the_label_store_training_gate_and_monitoring_share_one_definition(contract_run):
    _, database = contract_run
    labels = query(database, "select * from gold.label_store")
    assert labels["label_def"].unique().to_list() == ["60dpd_3mob"]
    assert labels["mob"].unique().to_list() == [3]
    assert labels["label"].to_list() == (labels["dpd"] >= 60).cast(pl.Int8).to_list()
    newest_label = labels["label_month"].max()
    assert newest_label == date(2025, 4, 1)  # the newest loans start 2025-01, labelled at mob 3

    registry = query(database, "select * from models.registry")
    assert registry["label_def"].unique().to_list() == ["60dpd_3mob"]
    for windows in registry["windows"]:
        # Relative windows end at the newest application month labelled by the as-of month.
        assert json.loads(windows)["oot"] == [add_months(newest_label, -3).isoformat()] * 2

    decisions = query(database, "select * from models.promotion_decisions")
    assert decisions.height == 2
    compared = decisions.filter(pl.col("champion_version").is_not_null())
    for months in compared["window_months"].drop_nulls():
        assert all(date.fromisoformat(m) <= add_months(newest_label, -3) for m in months.split(","))

    performance = query(database, "select * from monitoring.model_performance")
    assert performance.height > 0
    offsets = performance.select(
        (pl.col("label_month") == pl.col("application_month").dt.offset_by("3mo")).all()
    ).item()
    assert offsets
    estimates = query(database, "select * from monitoring.estimated_performance")
    assert (estimates["label_month"] == estimates["application_month"].dt.offset_by("3mo")).all()
    # Realized performance counts every label of the store with a scored application.
    month_rows = performance.filter(pl.col("window") == "month")
    per_month = month_rows.group_by("label_month").agg(pl.col("n").max()).sort("label_month")
    store = labels.group_by("label_month").len().sort("label_month")
    joined = per_month.join(store, on="label_month")
    assert (joined["n"] == joined["len"]).all() and joined.height >= 20


def test_a_process_with_another_definition_refuses_the_labels(contract_run):
    env, _ = contract_run
    default = {k: v for k, v in env.items() if not k.startswith("LOAN_DEFAULT_LABEL_")}
    result = materialize(default, 'key:"models/gradient_boosting"')
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "the label store holds labels ['60dpd_3mob']" in output
    assert "the platform's label is 30dpd_6mob" in output

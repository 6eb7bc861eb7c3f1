"""`python -m loan_default.pipeline run`, for real: the whole pipeline in one process on a small
synthetic set, with a short terminal, every event in the log file and every step a run in the
instance; and a failed step that names itself, its asset, its months and the error."""

import re
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from loan_default.defs.resources import warehouse_resource
from loan_default.lib.synthetic import generate
from loan_default.pipeline import PIPELINE, STEP_TAG
from loan_default_tests.cli_env import project_env, run_cli

LOANS = 300
# 24 months, the fewest the models' relative windows take (12 + 3 + 2 + 1 application months,
# each labeled 6 months on book later): fewer months, a shorter test.
LAST_MONTH = "2024-12-01"
MONTHS_LABEL = "2023-01..2024-12"
RUN = ["python", "-m", "loan_default.pipeline", "run"]
STEP_LINE = re.compile(
    r"^\[(\d)/(\d)\] (\w+) +(\d{4}-\d\d\.\.\d{4}-\d\d)? +([\d.]+ s|\d+ min \d+ s)$"
)
TABLES = {
    "bronze.lms_loan_daily",
    "silver.feature_clickstream",
    "silver.quarantine_lms_loan_daily",
    "gold.label_store",
    "gold.feature_store",
    "models.registry",
    "models.predictions",
    "monitoring.drift",
    "monitoring.estimated_performance",
    "monitoring.model_performance",
    "monitoring.fairness",
}


def pipeline_env(folder: Path, raw_dir: Path) -> dict[str, str]:
    """The project's environment with every output (instance, warehouse, artifacts, reports)
    under `folder`."""
    return {
        **project_env(folder, raw_dir),
        "LOAN_DEFAULT_ARTIFACTS": str(folder / "artifacts"),
        "LOAN_DEFAULT_REPORTS": str(folder / "reports"),
        "LOAN_DEFAULT_LAST_MONTH": LAST_MONTH,
    }


def open_instance(env: dict[str, str]) -> dg.DagsterInstance:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        return dg.DagsterInstance.get()


def log_file(output: str) -> Path:
    found = re.search(r"Dagster's events: (\S+)", output)
    assert found, output
    return Path(found.group(1))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """The whole pipeline, once for the module's tests."""
    folder = tmp_path_factory.mktemp("pipeline")
    generate(folder / "raw", loans=LOANS, seed=11)
    env = pipeline_env(folder, folder / "raw")
    result = run_cli(RUN, env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result, env


def test_terminal_is_short_and_quiet_with_one_line_per_step(pipeline):
    result, _ = pipeline
    output = result.stdout + result.stderr
    assert len(output.splitlines()) <= 100, output
    for noise in ("SupersessionWarning", "BetaWarning", "PreviewWarning", "DEBUG"):
        assert noise not in output
    steps = [STEP_LINE.match(line) for line in result.stdout.splitlines()]
    steps = [found.groups() for found in steps if found]
    assert [name for _, _, name, _, _ in steps] == list(PIPELINE)
    assert [(n, total) for n, total, *_ in steps] == [(str(i), "5") for i in range(1, 6)]
    monthly = {name: months for _, _, name, months, _ in steps}
    assert monthly == {
        "data": MONTHS_LABEL,
        "models": None,
        "predictions": MONTHS_LABEL,
        "monitoring": MONTHS_LABEL,
        "report": None,
    }
    # Off a terminal, progress comes as plain lines, no carriage returns.
    assert "\r" not in output
    assert re.search(r"\[1/5\] data .* \d+/14 assets \(24 months each\)", result.stdout)


def test_log_file_holds_every_event_the_instance_recorded(pipeline):
    result, env = pipeline
    log = log_file(result.stdout)
    assert log.parent == Path(env["DAGSTER_HOME"]) / "pipeline_logs"
    text = log.read_text()
    assert " - DEBUG - " in text and " - STEP_SUCCESS - " in text
    instance = open_instance(env)
    with instance:
        for run in instance.get_runs():
            records = instance.get_records_for_run(run.run_id).records
            assert records
            in_log = sum(f" - {run.run_id} - " in line for line in text.splitlines())
            assert in_log == len(records), run.tags[STEP_TAG]


def test_each_step_is_one_run_in_the_instance(pipeline):
    _, env = pipeline
    instance = open_instance(env)
    with instance:
        runs = list(reversed(instance.get_runs()))
        debug = instance.get_records_for_run(runs[0].run_id).records
    assert [run.tags[STEP_TAG] for run in runs] == list(PIPELINE)
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * len(PIPELINE)
    for run in runs:
        ranged = run.tags[STEP_TAG] in ("data", "predictions", "monitoring")
        assert run.tags.get("dagster/asset_partition_range_start") == (
            "2023-01-01" if ranged else None
        )
        assert run.tags.get("dagster/asset_partition_range_end") == (LAST_MONTH if ranged else None)
        assert run.job_name == "__ASSET_JOB"
    # A quiet console does not mean a thin event log: DEBUG events are recorded too.
    assert any(record.event_log_entry.level == 10 for record in debug)


def test_warehouse_and_reports_hold_the_pipelines_outputs(pipeline):
    _, env = pipeline
    store = warehouse_resource(Path(env["LOAN_DEFAULT_WAREHOUSE"]))
    assert set(store.tables()) >= TABLES
    for table in ("gold.feature_store", "models.predictions", "monitoring.drift"):
        assert store.read(table).height > 0, table
    reports = Path(env["LOAN_DEFAULT_REPORTS"])
    assert (reports / "monitoring" / "monitoring_dashboard.html").exists()


def test_failed_step_names_step_asset_months_and_error_and_stops(tmp_path):
    raw = tmp_path / "raw"
    generate(raw, loans=60, seed=3)
    loan_book = raw / "lms_loan_daily.csv"
    lines = loan_book.read_text().splitlines()
    lines[5] += ",extra"
    loan_book.write_text("\n".join(lines) + "\n")
    env = pipeline_env(tmp_path, raw)
    months = ["--months", "2023-01-01...2023-03-01"]
    result = run_cli([*RUN, "--steps", "data,models", *months], env)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "[1/2] data" in result.stdout and "failed after" in result.stdout
    assert "[2/2]" not in result.stdout
    assert "step data failed" in result.stderr
    assert "asset bronze/lms_loan_daily, partitions 2023-01-01, 2023-02-01, 2023-03-01" in (
        result.stderr
    )
    assert "lms_loan_daily.csv, line 6: row has 12 fields, expected 11" in result.stderr
    assert "not materialized as a result: gold/feature_store" in result.stderr
    assert "DEBUG" not in result.stdout + result.stderr
    assert "STEP_FAILURE" in log_file(result.stderr).read_text()
    instance = open_instance(env)
    with instance:
        [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.FAILURE and run.tags[STEP_TAG] == "data"

"""The replay for real: `python -m loan_default.replay` over two simulated months.

The clock: at simulated month M no step reads a row dated after M. After replaying to M, the
landing folder holds no later row, and no table of the warehouse holds a month after M.
"""

import io
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from loan_default.lib.operations.clock import SIMULATED_MONTH_TAG
from loan_default.lib.storage.warehouse_tables import MONTH_COLUMNS
from loan_default.lib.synthetic import generate

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRST, LAST = date(2024, 6, 1), date(2024, 7, 1)
# Date columns of the raw sources, as silver keeps them.
SOURCE_DATES = ("snapshot_date", "loan_start_date")
# Months a row points to, not rows read: when an estimated cohort's labels are due.
DUE_MONTHS = {("monitoring.estimated_performance", "label_month")}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("replay")
    generate(root / "source", loans=3_000, seed=11, drift_from=date(2024, 8, 1))
    command = [
        sys.executable,
        "-m",
        "loan_default.replay",
        "--source",
        str(root / "source"),
        "--months",
        f"{FIRST}...{LAST}",
        "--families",
        "gradient_boosting",
        "--dir",
        str(root / "replay"),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    lines = [line for line in result.stdout.splitlines() if line[:4].isdigit()]
    assert [line[:7] for line in lines] == ["2024-06", "2024-07"], result.stdout
    return root / "replay"


def test_no_table_holds_a_row_dated_after_the_simulated_month(replayed):
    for path in (replayed / "landing").iterdir():
        rows = pl.read_csv(path, infer_schema=False)
        dates = rows["snapshot_date"].str.to_date("%Y-%m-%d", strict=False)
        assert dates.max() <= date(2024, 7, 31), path.name
    database = replayed / "warehouse" / "loan_default.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema || '.' || table_name, column_name from information_schema.columns"
            " where table_schema not in ('main', 'information_schema')"
        ).fetchall()
        checked = set()
        for table, column in tables:
            due = (table, column) in DUE_MONTHS
            if column in (*MONTH_COLUMNS, *SOURCE_DATES) and column != "as_of_month" and not due:
                newest = connection.execute(
                    f"select max(try_cast({column} as date)) from {table}"
                ).fetchone()[0]
                if newest is not None:
                    assert newest <= LAST.replace(day=28), f"{table}.{column} = {newest}"
                    checked.add(table)
        as_of = connection.execute("select max(as_of_month) from models.registry").fetchone()[0]
    assert as_of <= LAST
    assert {"bronze.lms_loan_daily", "gold.label_store", "models.predictions"} <= checked


def test_every_run_carries_its_simulated_month_and_the_timeline_has_one_row_each(replayed):
    environment = json.loads((replayed / "environment.json").read_text())
    os.environ["DAGSTER_HOME"] = environment["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs()
            cursors = {
                state.instigator_name: state.instigator_data.cursor
                for state in instance.all_instigator_state()
            }
    finally:
        del os.environ["DAGSTER_HOME"]
    months = sorted({r.tags.get(SIMULATED_MONTH_TAG) for r in runs} - {None})
    assert months == [FIRST.isoformat(), LAST.isoformat()]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    # The sensors' cursors stay in the instance, so a daemon started later goes on from them.
    assert json.loads(cursors["retrain_on_alert"])["after"]
    # Each evaluation is in the replay's log, as the daemon's tick history would show it.
    log = "".join(p.read_text() for p in (replayed / "dagster_home").glob("pipeline_logs/*.log"))
    for month in (FIRST, LAST):
        for sensor in ("retrain_on_alert", "challenger_pending"):
            assert f"===== tick {month:%Y-%m} {sensor}: " in log, (month, sensor)
    database = replayed / "warehouse" / "loan_default.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        timeline = connection.execute("select * from operations.timeline order by month").pl()
        served = connection.execute("select * from models.served_decisions").pl()
    assert timeline["month"].to_list() == [FIRST, LAST]
    first_champion = timeline["champion_version"][0]
    assert first_champion.startswith("gradient_boosting-")
    # The applications of each month were decided by the champion serving then.
    assert timeline["served_version"].to_list() == [first_champion, first_champion]
    deciders = served.filter(pl.col("application_month") == LAST)["model_version"].unique()
    assert deciders.to_list() == [first_champion]
    assert (replayed / "reports" / "operations" / "timeline.html").exists()


def test_a_sensors_log_lines_go_to_the_replays_log_not_the_terminal(tmp_path, capfd):
    from loan_default import pipeline
    from loan_default.replay import to_log

    @dg.sensor(target=[])
    def talkative(context: dg.SensorEvaluationContext):
        context.log.info("retraining: a reason")
        return dg.SkipReason("nothing new")

    log = tmp_path / "replay.log"
    with pipeline.Progress(log, out=io.StringIO()) as progress:
        context = dg.build_sensor_context()
        to_log(context.log, progress)
        talkative.evaluate_tick(context)
    captured = capfd.readouterr()
    assert "retraining" not in captured.out + captured.err
    assert "===== dagster INFO: retraining: a reason" in log.read_text()


def test_a_librarys_warning_goes_to_the_replays_log_not_the_terminal(tmp_path, capfd):
    import warnings
    from functools import partial

    from loan_default import pipeline
    from loan_default.replay import warning_to_log

    log = tmp_path / "replay.log"
    shown = warnings.showwarning
    try:
        with pipeline.Progress(log, out=io.StringIO()) as progress:
            warnings.showwarning = partial(warning_to_log, progress)
            warnings.warn("inplace is deprecated", FutureWarning, stacklevel=1)
    finally:
        warnings.showwarning = shown
    captured = capfd.readouterr()
    assert "inplace" not in captured.out + captured.err
    assert "FutureWarning: inplace is deprecated" in log.read_text()

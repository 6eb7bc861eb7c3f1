"""Month runs started together on a new instance: all succeed, none builds gold from partial
history (issue 14, finding 5). Real CLI processes on one DAGSTER_HOME and one warehouse."""

import subprocess
from pathlib import Path

import polars as pl

from loan_default.lib.storage.warehouse_tables import fingerprints, read_table
from loan_default_tests.cli_env import BIN, REPO_ROOT, project_env, run_cli
from loan_default_tests.conftest import require_real_data

MONTHS = ["2023-01-01", "2023-02-01", "2023-03-01", "2023-04-01"]
DATA = ["dagster", "asset", "materialize", "-m", "loan_default.definitions"]
SELECT = ["--select", "group:bronze or group:silver or group:gold"]
# The Makefile's wrapper of every run (creates the instance under a lock; Ctrl-C stops the run).
WRAPPER = [str(BIN / "python"), "-m", "loan_default.recovery", "run", "--"]
RUN_TIMEOUT = 900


def months_seen(database: Path) -> dict[str, int]:
    """Most clickstream months any loan of each application month saw (the long window)."""
    features = read_table(database, "gold.feature_store")
    per_month = features.group_by("application_month").agg(
        pl.col("clickstream_months_seen_long").max()
    )
    return {str(m): n for m, n in per_month.sort("application_month").iter_rows()}


def fresh_env(folder: Path, raw_dir: Path) -> dict[str, str]:
    folder.mkdir()
    return project_env(folder, raw_dir)


def test_month_runs_started_together_wait_for_the_months_they_read(tmp_path):
    raw_dir = require_real_data()
    clean_env = fresh_env(tmp_path / "clean", raw_dir)
    clean = run_cli([*DATA, *SELECT, "--partition-range", f"{MONTHS[0]}...{MONTHS[-1]}"], clean_env)
    assert clean.returncode == 0, clean.stderr[-3000:]
    clean_tables = fingerprints(Path(clean_env["LOAN_DEFAULT_WAREHOUSE"]))

    env = fresh_env(tmp_path / "together", raw_dir)
    # As four `make backfill` started at once run them, on a new instance.
    logs = {month: tmp_path / f"{month}.log" for month in MONTHS}
    runs = {}
    for month in MONTHS:
        with logs[month].open("w") as out:
            runs[month] = subprocess.Popen(
                [*WRAPPER, str(BIN / DATA[0]), *DATA[1:], *SELECT, "--partition", month],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    try:
        codes = {month: run.wait(timeout=RUN_TIMEOUT) for month, run in runs.items()}
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()
    assert codes == dict.fromkeys(MONTHS, 0), {m: logs[m].read_text()[-3000:] for m in MONTHS}

    database = Path(env["LOAN_DEFAULT_WAREHOUSE"])
    # The clickstream history each month saw, then every table, equal to one clean run's.
    assert months_seen(database) == months_seen(Path(clean_env["LOAN_DEFAULT_WAREHOUSE"]))
    assert fingerprints(database) == clean_tables

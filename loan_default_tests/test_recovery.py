"""A killed backfill never blocks later runs: real CLI processes, kill -9 mid-step."""

import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from loan_default.lib.storage.warehouse_tables import fingerprints
from loan_default_tests.cli_env import BIN, REPO_ROOT, backfill_command, project_env, run_cli
from loan_default_tests.conftest import require_real_data

MONTHS = "2023-01-01...2023-03-01"
BACKFILL = backfill_command(MONTHS)
RECOVER = ["python", "-m", "loan_default.recovery"]
# The step the backfill is killed in: it holds the duckdb pool's only slot.
KILLED_STEP = "silver_feature_clickstream"
# A run on three months takes well under this; a wedged one never ends.
NEW_RUN_TIMEOUT = 240


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for_line(process: subprocess.Popen, log: Path, text: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert process.poll() is None, f"ended before {text!r}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {text!r} within {timeout} s"
        time.sleep(0.1)


def holds_instance_lock(pid: int, home: Path) -> bool:
    """Whether `pid` holds a lock on one of the instance's SQLite files (from /proc/locks)."""
    inodes = {path.stat().st_ino for path in home.rglob("*.db")}
    for line in Path("/proc/locks").read_text().splitlines():
        fields = [f for f in line.split() if f != "->"]
        if int(fields[4]) == pid and int(fields[5].split(":")[2]) in inodes:
            return True
    return False


def pause_outside_instance_writes(process: subprocess.Popen, home: Path) -> None:
    """SIGSTOP at a moment the process holds no SQLite lock of the instance: paused inside
    one, it would block every other process's use of the instance, which no real holder of a
    pool slot does."""
    for _ in range(500):
        process.send_signal(signal.SIGSTOP)
        while Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            time.sleep(0.001)
        if not holds_instance_lock(process.pid, home):
            return
        process.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the holder kept an instance lock through 500 tries")


def instance_state(env: dict[str, str]) -> tuple[list[dg.DagsterRunStatus], int]:
    """Run statuses, oldest first, and the number of duckdb slots held."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        instance = dg.DagsterInstance.get()
    with instance:
        statuses = [run.status for run in reversed(instance.get_runs())]
        held = len(instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots)
    return statuses, held


def fresh_env(folder: Path, raw_dir: Path) -> dict[str, str]:
    folder.mkdir()
    return project_env(folder, raw_dir)


def test_backfill_killed_mid_step_does_not_block_the_next_run(tmp_path):
    raw_dir = require_real_data()
    clean_env = fresh_env(tmp_path / "clean", raw_dir)
    clean = run_cli(BACKFILL, clean_env)
    assert clean.returncode == 0, clean.stderr[-3000:]
    clean_tables = fingerprints(Path(clean_env["LOAN_DEFAULT_WAREHOUSE"]))

    env = fresh_env(tmp_path / "crashed", raw_dir)
    log = tmp_path / "killed.log"
    killed = start_cli(BACKFILL, env, log)
    wait_for_line(killed, log, f"{KILLED_STEP} - STEP_START")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    # The state the issue reports: the run still STARTED and holding the pool's only slot.
    assert instance_state(env) == ([dg.DagsterRunStatus.STARTED], 1)

    # The next run as `make backfill` starts it: the recovery command, then the backfill.
    started = time.monotonic()
    recovered = run_cli(RECOVER, env, timeout=60)
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    assert "its process is gone; marked failed, pool slots freed" in recovered.stdout
    rerun = run_cli(BACKFILL, env, timeout=NEW_RUN_TIMEOUT)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert time.monotonic() - started < NEW_RUN_TIMEOUT

    assert instance_state(env) == ([dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS], 0)
    assert fingerprints(Path(env["LOAN_DEFAULT_WAREHOUSE"])) == clean_tables


def test_a_run_blocked_on_the_pool_stops_on_ctrl_c(tmp_path):
    """The wrapper the Makefile runs every run in: SIGINT stops a run waiting for the pool."""
    raw_dir = require_real_data()
    env = fresh_env(tmp_path / "home", raw_dir)
    holder_log, blocked_log = tmp_path / "holder.log", tmp_path / "blocked.log"
    holder = start_cli(BACKFILL, env, holder_log)
    blocked = None
    try:
        wait_for_line(holder, holder_log, f"{KILLED_STEP} - STEP_START")
        # Paused mid-step, the holder keeps the pool's only slot (a slot is held per step).
        pause_outside_instance_writes(holder, Path(env["DAGSTER_HOME"]))
        # With the fault handler on, SIGABRT makes the wrapper print where it is stuck.
        blocked = start_cli(
            [*RECOVER, "run", "--", str(BIN / "dagster"), *BACKFILL[1:]],
            {**env, "PYTHONFAULTHANDLER": "1"},
            blocked_log,
        )
        wait_for_line(blocked, blocked_log, "blocked by limit for pool duckdb")

        interrupted = time.monotonic()
        blocked.send_signal(signal.SIGINT)
        try:
            code = blocked.wait(timeout=60)
        except subprocess.TimeoutExpired:
            blocked.send_signal(signal.SIGABRT)
            blocked.wait(timeout=30)
            pytest.fail(f"running 60 s after SIGINT:\n{blocked_log.read_text()[-6000:]}")
        assert code == 130, blocked_log.read_text()[-3000:]
        assert time.monotonic() - interrupted < 30
        assert "stopped; marked failed, pool slots freed" in blocked_log.read_text()

        holder.send_signal(signal.SIGCONT)
        assert holder.wait(timeout=NEW_RUN_TIMEOUT) == 0, holder_log.read_text()[-3000:]
    finally:
        for process in (holder, blocked):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()
    assert instance_state(env) == ([dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE], 0)


def test_processes_started_together_on_a_new_instance_all_open_it(tmp_path):
    """Without the creation lock, most of them crash in the SQLite schema's creation."""
    for attempt in range(3):
        (tmp_path / f"attempt{attempt}").mkdir()
        env = project_env(tmp_path / f"attempt{attempt}", Path("unused"))
        together = [
            subprocess.Popen(
                [str(BIN / "python"), "-m", "loan_default.recovery"],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [process.communicate(timeout=120)[0] for process in together]
        assert [process.returncode for process in together] == [0] * 4, outputs
        assert instance_state(env) == ([], 0)

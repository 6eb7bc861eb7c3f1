"""Instance housekeeping before a run: create the instance once, fail runs whose process died.

Why this exists: a run started from the CLI (`dagster asset materialize`) executes inside that
command's process, not through a run launcher. When the process is killed (`kill -9`, OOM, a
closed laptop), the run stays STARTED and keeps its `duckdb` pool slot, so every later run waits
for that slot forever. Dagster's run monitoring (dagster.yaml, in the daemon) frees the slots of
runs that have *ended*, but it cannot tell that a CLI run's process died: the default run
launcher does not support worker health checks. This module does that part: a run in progress
whose worker process no longer exists on this machine is marked failed and its slots are freed.

Usage (the Makefile runs the first before every run):

    python -m loan_default.recovery            # create/migrate the instance, fail dead runs
    python -m loan_default.recovery --wait     # ... then wait (Ctrl-C stops it) while a live
                                               #     run holds a pool slot
    python -m loan_default.recovery stop RUN   # stop a run, even one blocked on a pool
    python -m loan_default.recovery [--wait] run -- dagster asset materialize ...
                                               # a CLI run that Ctrl-C always stops
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from loan_default import settings

IN_PROGRESS = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dataclass(frozen=True)
class Recovered:
    """What one recovery pass did."""

    failed_runs: list[str]
    freed_runs: list[str]


@contextmanager
def instance_creation_lock(home: str) -> Iterator[None]:
    """Held while the instance is opened: processes started together on a new DAGSTER_HOME
    would otherwise each create the SQLite schema, and all but one crash (a broken instance
    can even be left behind, with two schema versions)."""
    Path(home).mkdir(parents=True, exist_ok=True)
    with (Path(home) / ".instance.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_instance() -> dg.DagsterInstance:
    """The instance of DAGSTER_HOME, its storage created by one process at a time."""
    with instance_creation_lock(settings.DAGSTER_HOME):
        return dg.DagsterInstance.get()


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process that executes the run: every event of a run carries its process id."""
    records = instance.get_records_for_run(run_id, limit=1, ascending=False).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid is not None:
            return event.pid
    return None


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live Python process on this machine (a zombie or a reused id is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # no procfs: the signal check is all there is
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"} and (b"python" in command or b"dagster" in command)


def dead_runs(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, int]]:
    """Runs in progress whose worker process is gone, with the process id they ran under."""
    dead = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        pid = worker_pid(instance, run.run_id)
        if pid is not None and not process_alive(pid):
            dead.append((run, pid))
    return dead


def free_finished_runs_slots(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> list[str]:
    """Frees pool slots and pending claims still held by runs that have ended."""
    storage = instance.event_log_storage
    holders = set(run_ids) & set(storage.get_concurrency_run_ids())
    if not holders:
        return []
    ended = instance.get_run_records(dg.RunsFilter(run_ids=sorted(holders), statuses=FINISHED))
    freed = [record.dagster_run.run_id for record in ended]
    for run_id in freed:
        storage.free_concurrency_slots_for_run(run_id)
    return freed


def recover(instance: dg.DagsterInstance) -> Recovered:
    """Marks runs whose process died as failed and frees every slot held by an ended run."""
    failed = []
    for run, pid in dead_runs(instance):
        instance.report_run_failed(
            run,
            f"The process of this run (pid {pid}) is gone: it was killed or crashed. Marked "
            "failed by `python -m loan_default.recovery`, which frees its pool slots.",
        )
        failed.append(run.run_id)
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return Recovered(failed_runs=failed, freed_runs=[])
    holders = storage.get_concurrency_run_ids()
    return Recovered(failed_runs=failed, freed_runs=free_finished_runs_slots(instance, holders))


def slot_holders(instance: dg.DagsterInstance, pool: str) -> list[str]:
    """Runs holding a slot of `pool` now."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    return sorted({slot.run_id for slot in info.claimed_slots})


def wait_for_pool(instance: dg.DagsterInstance, pool: str, poll_seconds: float = 2.0) -> None:
    """Waits, interruptibly, while a live run holds a slot of `pool`; dead holders are recovered."""
    announced: set[str] = set()
    while True:
        recover(instance)
        holders = slot_holders(instance, pool)
        if not holders:
            return
        for run_id in set(holders) - announced:
            print(f"waiting for run {run_id}, which holds pool {pool!r} (Ctrl-C stops waiting)")
        announced |= set(holders)
        time.sleep(poll_seconds)


def stop(instance: dg.DagsterInstance, run_id: str, grace_seconds: float = 10.0) -> str:
    """Stops a run's process: SIGINT first, SIGKILL when it does not end within the grace time.

    A run blocked on a pool ignores SIGINT and SIGTERM (Dagster's in-process executor captures
    them and checks for them only between steps), so the SIGKILL is what stops it; it holds no
    slot and has written nothing, and recover() then marks it failed and frees its claims.
    """
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise SystemExit(f"no run {run_id} in the instance at {instance.root_directory}")
    pid = worker_pid(instance, run_id)
    if run.is_finished or pid is None or not process_alive(pid):
        recover(instance)
        return f"run {run_id} is not running ({run.status.value}); its slots are freed"
    stop_process(pid, grace_seconds)
    recover(instance)
    status = instance.get_run_by_id(run_id).status.value  # type: ignore[union-attr]
    return f"run {run_id} (pid {pid}) stopped: {status}"


def stop_process(pid: int, grace_seconds: float) -> None:
    """SIGINT, then SIGKILL when the process has not ended within the grace time."""
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.2)
    if process_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while process_alive(pid):
            time.sleep(0.1)


def interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_interruptibly(
    command: list[str], grace_seconds: float = 10.0, env: dict[str, str] | None = None
) -> int:
    """Runs a CLI run as a child that Ctrl-C (or SIGTERM) always stops.

    Dagster's in-process executor looks at a captured interrupt only between steps, so a run
    blocked on a pool would never see one. Here the interrupt reaches this process, which passes
    it on and kills the child if it has not ended within the grace time; the recovery pass then
    marks its run failed and frees its claims. Killing is safe: the warehouse replaces months in
    one transaction, so a re-run gives a clean run's tables.
    """
    # Handlers of its own, whatever this process inherited (a background job starts with
    # SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    child = subprocess.Popen(command, env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        stop_process(child.pid, grace_seconds)
        child.wait()
        with open_instance() as instance:
            for run_id in recover(instance).failed_runs:
                print(f"run {run_id}: stopped; marked failed, pool slots freed", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loan_default.recovery",
        description="Create the Dagster instance once and fail runs whose process died.",
    )
    parser.add_argument("--wait", action="store_true", help="then wait while a run holds a pool")
    parser.add_argument("--pool", default="duckdb")
    sub = parser.add_subparsers(dest="command")
    stop_parser = sub.add_parser("stop", help="stop a run, even one blocked on a pool")
    stop_parser.add_argument("run_id")
    run_parser = sub.add_parser("run", help="run a command (after --) that Ctrl-C always stops")
    run_parser.add_argument("child", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if not settings.DAGSTER_HOME:
        raise SystemExit("DAGSTER_HOME is not set: point it at the instance folder")
    # Opening the instance creates and migrates its SQLite storage, once, before any run does.
    with open_instance() as instance:
        if args.command == "stop":
            print(stop(instance, args.run_id))
            return 0
        done = recover(instance)
        for run_id in done.failed_runs:
            print(f"run {run_id}: its process is gone; marked failed, pool slots freed")
        for run_id in sorted(set(done.freed_runs) - set(done.failed_runs)):
            print(f"run {run_id}: ended; its pool slots freed")
        if args.wait:
            try:
                wait_for_pool(instance, args.pool)
            except KeyboardInterrupt:
                print("stopped waiting")
                return 130
    if args.command == "run":
        child = args.child[1:] if args.child[:1] == ["--"] else args.child
        if not child:
            raise SystemExit("run: give the command after --")
        return run_interruptibly(child)
    return 0


if __name__ == "__main__":
    sys.exit(main())

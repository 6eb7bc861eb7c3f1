"""`python -m loan_default.production`: the production profile on one machine.

    run [--months A...B]           services up, the daemon, then the whole pipeline
    backfill JOB [--months A...B]  one backfill of a month-partitioned job (defs/backfills.py)
    materialize SELECTION          one run of unpartitioned assets (the models, the report)
    ui [--port N]                  the Dagster UI (and its daemon) on the production instance
    serve                          the scoring API on the production warehouse and object store

Every month-partitioned step is a Dagster backfill: the daemon splits it into runs of
BACKFILL_MONTHS_PER_RUN months and the queued run coordinator starts at most
MAX_CONCURRENT_RUNS of them at once, each writing its months of the DuckLake warehouse. A failed
month fails and retries alone. On a cluster the same backfills launch run pods instead of
processes (deploy/kubernetes); nothing here changes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loan_default import settings
from loan_default.services import postgres, s3_server

INSTANCE_CONFIG = settings.PROJECT_ROOT / "deploy" / "production" / "dagster.yaml"
WORKSPACE = settings.PROJECT_ROOT / "workspace.yaml"
BIN = Path(sys.executable).parent
POLL_SECONDS = 2.0
# The monitoring report summarises every month: one run after the monthly monitoring.
STEPS = (
    ("backfill", "data_layers"),
    ("materialize", "group:models"),
    ("backfill", "monthly_predictions"),
    ("backfill", "monthly_monitoring"),
    ("materialize", "key:monitoring/monitoring_report"),
)


class StepFailed(RuntimeError):
    """A backfill or run of the pipeline did not succeed."""


def prepare_instance() -> Path:
    """$DAGSTER_HOME holding a link to the production instance's configuration."""
    if not settings.DAGSTER_HOME:
        raise SystemExit("DAGSTER_HOME is not set: run this through `make run-production`")
    home = Path(settings.DAGSTER_HOME)
    home.mkdir(parents=True, exist_ok=True)
    link = home / "dagster.yaml"
    if not link.exists():
        link.symlink_to(INSTANCE_CONFIG)
    settings.export_production_environment()
    return home


@contextmanager
def running_daemon() -> Iterator[subprocess.Popen]:
    """The Dagster daemon (backfills, run queue, run monitoring) for the duration of a block."""
    log = open(Path(settings.DAGSTER_HOME) / "daemon.log", "ab")  # noqa: SIM115
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield daemon
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()


def backfill(job: str, first: str, last: str) -> str:
    """Submits a backfill of `job` over months [first, last] and waits for its runs; returns
    the backfill's id. Raises StepFailed naming the runs that failed."""
    launched = subprocess.run(
        [
            str(BIN / "dagster"),
            *("job", "backfill", "-w", str(WORKSPACE), "-j", job),
            *("--from", first, "--to", last, "--noprompt"),
        ],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Launched backfill job `(\w+)`", launched.stdout)
    if launched.returncode or not found:
        raise StepFailed(f"backfill of {job} not launched:\n{launched.stdout}{launched.stderr}")
    backfill_id = found.group(1)
    print(f"{job}: backfill {backfill_id} over {first}..{last}", flush=True)
    wait_for_backfill(backfill_id)
    return backfill_id


def wait_for_backfill(backfill_id: str) -> None:
    """Returns once the daemon has submitted every run of the backfill and each has ended."""
    import dagster as dg

    runs_of = dg.RunsFilter(tags={"dagster/backfill": backfill_id})
    with dg.DagsterInstance.get() as instance:
        while True:
            status = instance.get_backfill(backfill_id).status.value
            runs = instance.get_runs(filters=runs_of)
            submitted = status not in ("REQUESTED", "CANCELING", "FAILING")
            if submitted and all(run.is_finished for run in runs):
                break
            time.sleep(POLL_SECONDS)
    failed = [r.run_id for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
    print(f"  {len(runs)} runs, {len(failed)} failed; backfill {status}", flush=True)
    if failed or status not in ("COMPLETED", "COMPLETED_SUCCESS"):
        raise StepFailed(f"backfill {backfill_id} ended {status}; failed runs: {failed}")


def materialize(selection: str) -> None:
    command = [
        str(BIN / "dagster"),
        *("asset", "materialize", "-w", str(WORKSPACE), "--select", selection),
    ]
    if subprocess.run(command).returncode:
        raise StepFailed(f"materializing {selection} failed")


def run(first: str, last: str) -> None:
    """The whole pipeline, as `make run` does it, on the production profile."""
    postgres.up()
    postgres.wait_ready()
    s3_server.up()
    s3_server.wait_ready()
    with running_daemon():
        for kind, target in STEPS:
            if kind == "backfill":
                backfill(target, first, last)
            else:
                materialize(target)


def _months(text: str) -> tuple[str, str]:
    first, _, last = text.partition("...")
    return first, last or first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loan_default.production")
    commands = parser.add_subparsers(dest="command", required=True)
    months = f"{settings.FIRST_MONTH}...{settings.LAST_MONTH}"
    for name in ("run", "backfill"):
        command = commands.add_parser(name)
        if name == "backfill":
            command.add_argument("job")
        command.add_argument("--months", default=months, help="FIRST...LAST, inclusive")
    commands.add_parser("materialize").add_argument("selection")
    commands.add_parser("ui").add_argument("--port", default="3000")
    commands.add_parser("serve")
    arguments = parser.parse_args(argv)
    prepare_instance()
    if arguments.command == "ui":
        ui = [str(BIN / "dagster"), "dev", "-w", str(WORKSPACE), "-h", "127.0.0.1"]
        os.execv(ui[0], [*ui, "-p", arguments.port])
    if arguments.command == "serve":
        os.execv(sys.executable, [sys.executable, "-m", "loan_default.serving"])
    try:
        if arguments.command == "run":
            run(*_months(arguments.months))
        elif arguments.command == "backfill":
            with running_daemon():
                backfill(arguments.job, *_months(arguments.months))
        else:
            materialize(arguments.selection)
    except StepFailed as error:
        print(f"python -m loan_default.production {arguments.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

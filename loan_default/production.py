"""`python -m loan_default.production`: the production profile on one machine.

    run [--months A...B]           services up, then the whole pipeline as `make run` runs it
    backfill STEP... [--months A...B]  backfills of the steps in defs/backfills.py, in turn
                                   (`data_layers` is month_layers then feature_layer)
    materialize SELECTION          one run of unpartitioned assets (the models, the report)
    ui [--port N]                  the Dagster UI (and its daemon) on the production instance
    serve                          the scoring API on the production warehouse and object store

`run` is the embedded driver (pipeline.py) on the production instance and warehouse: one
process loads the code location once and runs each step as one Dagster run over the months,
recorded in PostgreSQL, writing the DuckLake warehouse, with `make run`'s progress lines. On one
machine that is what is fast: a run the daemon launches is a new process that pays Python's and
Dagster's start-up and the code location's import, and the daemon notices queued and finished
runs only at its next poll.

`backfill` is for scale-out: every month-partitioned step is a Dagster backfill, the daemon
splits it into runs of BACKFILL_MONTHS_PER_RUN months and the queued run coordinator starts at
most MAX_CONCURRENT_RUNS of them at once, each writing its months of the DuckLake warehouse. A
failed month fails and retries alone. On a cluster the same backfills launch run pods instead of
processes (deploy/kubernetes); nothing here changes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import NoReturn

from loan_default import profile, settings
from loan_default.services import postgres, s3_server

INSTANCE_CONFIG = settings.PROJECT_ROOT / "deploy" / "production" / "dagster.yaml"
WORKSPACE = settings.PROJECT_ROOT / "workspace.yaml"
BIN = Path(sys.executable).parent
POLL_SECONDS = 2.0
DATA_LAYERS = ("month_layers", "feature_layer")


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


LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def step_assets(step: str) -> list[list[str]]:
    """The asset keys of a backfill step (defs/backfills.py), as GraphQL asset paths."""
    from loan_default.definitions import defs
    from loan_default.defs.backfills import BACKFILL_STEPS

    if step not in BACKFILL_STEPS:
        raise StepFailed(f"no backfill step {step!r}: one of {', '.join(BACKFILL_STEPS)}")
    keys = BACKFILL_STEPS[step][1].resolve(defs().resolve_asset_graph())
    return [list(key.path) for key in sorted(keys)]


def months_between(first: str, last: str) -> list[str]:
    from loan_default.defs.partitions import monthly_partitions

    keys = monthly_partitions.get_partition_keys()
    if first not in keys or last not in keys:
        raise StepFailed(f"months {first}..{last} are not partitions ({keys[0]}..{keys[-1]})")
    return keys[keys.index(first) : keys.index(last) + 1]


def launch_backfill(step: str, first: str, last: str) -> str:
    """Launches an asset backfill of `step` over months [first, last] through Dagster's GraphQL
    API (the daemon splits it into runs by the assets' backfill policy); returns its id."""
    params = {
        "assetSelection": [{"path": path} for path in step_assets(step)],
        "partitionNames": months_between(first, last),
        "fromFailure": False,
        "tags": [{"key": "loan_default/step", "value": step}],
    }
    launched = subprocess.run(
        [str(BIN / "dagster-graphql"), "-w", str(WORKSPACE), "-t", LAUNCH_BACKFILL]
        + ["-v", json.dumps({"params": params})],
        capture_output=True,
        text=True,
    )
    found = re.search(r'"backfillId": "(\w+)"', launched.stdout)
    if launched.returncode or not found:
        raise StepFailed(f"backfill of {step} not launched:\n{launched.stdout}{launched.stderr}")
    backfill_id = found.group(1)
    print(f"{step}: backfill {backfill_id} over {first}..{last}", flush=True)
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
    if failed or status != "COMPLETED_SUCCESS":
        raise StepFailed(f"backfill {backfill_id} ended {status}; failed runs: {failed}")


def materialize(selection: str) -> None:
    """One run of unpartitioned assets, in this process's child, recorded on the instance."""
    command = [
        str(BIN / "dagster"),
        *("asset", "materialize", "-m", "loan_default.definitions", "--select", selection),
    ]
    if subprocess.run(command, cwd=settings.PROJECT_ROOT).returncode:
        raise StepFailed(f"materializing {selection} failed")


def execute(steps: list[tuple[str, str]], first: str, last: str) -> None:
    """Each step in turn: a backfill over [first, last] waited for, or one run. The daemon
    starts once the first backfill is registered, so the raw-month sensor's first tick sees it
    and leaves those months to it."""
    with ExitStack() as stack:
        daemon = None
        for kind, target in steps:
            if kind == "backfill":
                backfill_id = launch_backfill(target, first, last)
                daemon = daemon or stack.enter_context(running_daemon())
                wait_for_backfill(backfill_id)
            else:
                materialize(target)


def start_services() -> None:
    """PostgreSQL and the S3 server on loopback, started unless they run (idempotent)."""
    postgres.up()
    postgres.wait_ready()
    s3_server.up()
    s3_server.wait_ready()


def months_of(first: str, last: str) -> tuple[date, date]:
    """The months of `run` as pipeline.py takes them; exits naming a malformed one."""
    from loan_default import pipeline

    try:
        return pipeline.parse_months(f"{first}...{last}")
    except ValueError as error:
        raise SystemExit(f"--months {first}...{last}: {error}") from error


def run(first: str, last: str) -> int:
    """The whole pipeline, as `make run` runs it, on the production profile: the services,
    then pipeline.py's driver in a child that Ctrl-C always stops (`run --supervised`)."""
    from loan_default import pipeline

    months_of(first, last)  # before anything starts
    start_services()
    # Each step one run over the whole range, as in the embedded profile: the child loads the
    # assets with a single-run backfill policy (backfills keep theirs).
    single_runs = settings.environment_with({"LOAN_DEFAULT_BACKFILL_MONTHS_PER_RUN": "0"})
    child = [sys.executable, "-m", "loan_default.production", "run", "--supervised"]
    code = pipeline.supervise([*child, "--months", f"{first}...{last}"], env=single_runs)
    if code == 0:
        print(
            f"Warehouse: DuckLake, catalog {settings.POSTGRES_CATALOG_DB} on "
            f"{settings.POSTGRES_HOST}:{settings.POSTGRES_PORT}, files under "
            f"{profile.LAKE_DATA_PATH}\nModel artifacts: {profile.ARTIFACT_DIR}\n"
            f"Reports: {profile.REPORT_DIR}\nRuns and asset history: {settings.DAGSTER_HOME} "
            "(see them with 'make ui-production'); the API: 'make serve-production'; stop the "
            "services: 'make services-down'"
        )
    return code


def run_pipeline(first: str, last: str) -> NoReturn:
    """The supervised child of `run`: each step of pipeline.PIPELINE in turn, in this process."""
    from loan_default import pipeline

    for category in pipeline.QUIET_WARNINGS:
        warnings.filterwarnings("ignore", category=category)
    try:
        code = pipeline.run_steps(pipeline.PIPELINE, months_of(first, last))
    except KeyboardInterrupt:
        code = 130
    pipeline.end_child(code)


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
            command.add_argument("steps", nargs="+", metavar="STEP")
        command.add_argument("--months", default=months, help="FIRST...LAST, inclusive")
        if name == "run":  # set by `run` for its child, which runs the steps
            command.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
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
            first, last = _months(arguments.months)
            return run_pipeline(first, last) if arguments.supervised else run(first, last)
        if arguments.command == "backfill":
            steps = [
                step
                for name in arguments.steps
                for step in (DATA_LAYERS if name == "data_layers" else (name,))
            ]
            execute([("backfill", step) for step in steps], *_months(arguments.months))
        else:
            materialize(arguments.selection)
    except StepFailed as error:
        print(f"python -m loan_default.production {arguments.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m loan_default.replay`: the platform operated month by month on an as-of clock.

    python -m loan_default.replay --source DIR --months 2024-01-01...2025-07-01 [--dir D]
    python -m loan_default.replay --scenario drift --months 2024-06-01...2025-07-01

At each simulated month M the landing folder holds each source's rows dated up to M (the
monthly drop), and the platform does what it does in production that month, through its own
Dagster definitions and one instance: the monthly refresh of M (data layers, predictions,
monitoring of application month M and label month M, with their checks), then the real
sensors evaluated on the instance as the daemon would: `retrain_on_alert` and any retrain run
it requests (the families, the gate, and what follows a gate decision), `challenger_pending`
and any gate run it requests. The first month also backfills the months before it and trains
the first champion as of M. Every run is tagged with its simulated month, so `make ui-replay`
shows the history as it happened, and the `operations/timeline` asset reads it from there.

The replay keeps everything in its own folder (`--dir`, default data/replay/<name>): landing
files, warehouse, artifacts, reports and the Dagster instance. This module re-runs itself with
that folder's settings in the environment, so the code location reads them like any run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import subprocess
import sys
import time
import warnings
from datetime import date
from functools import partial
from pathlib import Path

import dagster as dg

from loan_default import pipeline, settings
from loan_default.lib.models.families import FAMILIES
from loan_default.lib.months import add_months, month_range
from loan_default.lib.operations.clock import FRESHNESS_CHECK, SIMULATED_MONTH_TAG

DEFAULT_DIR = settings.PROJECT_ROOT / "data" / "replay"
ENVIRONMENT_FILE = "environment.json"
DATA_LAYERS = dg.AssetSelection.groups("bronze", "silver", "gold")
# Synthetic scenarios: the generator's arguments and the first simulated month. Loans start
# until 2025-07 (six cohorts more than the real data) so that cohorts after a retrain have their
# labels before the data ends; 15,500 loans keep about 500 a month.
SCENARIO_DATA = {"loans": 15_500, "last_start": date(2025, 7, 1)}
SCENARIOS = {
    "drift": ({**SCENARIO_DATA, "drift_from": date(2024, 8, 1)}, date(2024, 6, 1)),
    "stable": (SCENARIO_DATA, date(2024, 6, 1)),
}


def parse_months(text: str) -> tuple[date, date | None]:
    first, _, last = text.partition("...")
    return date.fromisoformat(first), date.fromisoformat(last) if last else None


def replay_environment(folder: Path, source: Path, months: list[date]) -> dict[str, str]:
    """The settings of the replay's own folder: the landing folder is the raw folder, and the
    partitions cover the source's months."""
    folder = folder.resolve()
    return {
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "LOAN_DEFAULT_RAW_DIR": str(folder / "landing"),
        "LOAN_DEFAULT_WAREHOUSE": str(folder / "warehouse" / "loan_default.duckdb"),
        "LOAN_DEFAULT_ARTIFACTS": str(folder / "artifacts"),
        "LOAN_DEFAULT_REPORTS": str(folder / "reports"),
        "LOAN_DEFAULT_FIRST_MONTH": months[0].isoformat(),
        "LOAN_DEFAULT_LAST_MONTH": months[-1].isoformat(),
        "LOAN_DEFAULT_REPLAY_SOURCE": str(source.resolve()),
    }


def prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    """A fresh replay folder and the source data it replays (generated for a scenario)."""
    name = args.scenario or "replay"
    folder = Path(args.dir or DEFAULT_DIR / name)
    if folder.exists():
        if any(folder.iterdir()) and not (folder / ENVIRONMENT_FILE).exists():
            raise SystemExit(f"{folder} holds files but no replay: choose another --dir")
        shutil.rmtree(folder)  # a replay starts from nothing, so a re-run gives the same history
    (folder / "dagster_home").mkdir(parents=True)
    (folder / ENVIRONMENT_FILE).write_text("{}")  # marks the folder as a replay's from the start
    (folder / "dagster_home" / "dagster.yaml").symlink_to(settings.PROJECT_ROOT / "dagster.yaml")
    if args.scenario:
        from loan_default.lib.synthetic import generate

        source = folder / "source"
        generate(source, seed=args.seed, **SCENARIOS[args.scenario][0])
    else:
        source = Path(args.source)
    return folder, source


def _execute(
    definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    target: str | dg.AssetSelection,
    months: tuple[date, date] | None,
    run_config: dict | None = None,
    tags: dict[str, str] | None = None,
    only: set[dg.AssetKey] | None = None,
    progress: pipeline.Progress | None = None,
) -> dg.ExecuteInProcessResult:
    """One run on the instance (pipeline.execute): a job of the code location by name (only the
    assets `only` of it, when given), or a selection of its assets, over months [first, last]."""
    if isinstance(target, str):
        selection = dg.AssetSelection.assets(*only) if only else None
        name, job_name = target, target
    else:
        selection, name, job_name = target, "assets", None
    try:
        return pipeline.execute(
            definitions,
            instance,
            name,
            selection=selection,
            job_name=job_name,
            months=months,
            run_config=run_config,
            tags=tags,
            progress=progress,
        )
    except pipeline.StepFailed as error:
        where = progress.log_path if progress else "the instance"
        raise SystemExit(f"{error}\nDagster's events: {where}") from error


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    """The run's failed checks, but for freshness (see lib/operations/clock.py)."""
    return [
        f"{e.check_name} ({e.severity.value})"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.check_name != FRESHNESS_CHECK
    ]


def _retrain_assets(retrain: dg.JobDefinition, families: list[str] | None) -> set[dg.AssetKey]:
    """The retrain job's assets, without the model families left out of the replay."""
    keys = set(retrain.asset_layer.selected_asset_keys)
    if not families:
        return keys
    return {
        k
        for k in keys
        if k.path[0] != "models" or k.path[1] not in FAMILIES or k.path[1] in families
    }


def _only_families(run_config: dict, families: list[str] | None) -> dict:
    if not families:
        return run_config
    ops = {
        k: v for k, v in run_config.get("ops", {}).items() if k.removeprefix("models__") in families
    }
    return {**run_config, "ops": ops}


def operate(first: date, last: date, families: list[str] | None) -> int:
    """The month-by-month loop, in the replay folder's settings (see `replay_environment`)."""
    from loan_default.definitions import defs
    from loan_default.defs.monitoring.automation import (
        challenger_pending,
        champion_gate,
        monthly_refresh,
        retrain,
        retrain_on_alert,
    )
    from loan_default.defs.operations.timeline import TIMELINE
    from loan_default.lib.operations.landing import deliver, read_histories

    definitions = defs()
    retraining = _retrain_assets(definitions.resolve_job_def(retrain.name), families)
    histories = read_histories(Path(settings.REPLAY_SOURCE), settings.RAW_DATE_FORMAT)
    history = (settings.FIRST_MONTH, first)
    cursors: dict[str, str | None] = {}
    log = pipeline.log_path(str(settings.DAGSTER_HOME))
    # One line per month on the terminal; each run's events and step lines go to the log.
    with (
        pipeline.Progress(log, out=io.StringIO()) as progress,
        dg.DagsterInstance.get() as instance,
    ):
        run = partial(_execute, definitions, instance, progress=progress)
        warnings.showwarning = partial(warning_to_log, progress)
        for month in month_range(first, add_months(last, 1)):
            started = time.monotonic()
            delivered = deliver(histories, settings.RAW_DIR, month, first_drop=month == first)
            tags = {SIMULATED_MONTH_TAG: month.isoformat()}
            if month == first:  # the months before, then the first champion as of M
                run(DATA_LAYERS, history, tags=tags)
                refresh = run(retrain.name, history, tags=tags, only=retraining)
            else:
                refresh = run(monthly_refresh.name, (month, month), tags=tags)
            notes = _failed_checks(refresh)
            # The real sensors, evaluated on the instance as the daemon would at its next ticks:
            # a retrain for a new alarm, then the gate again for challengers with new labels.
            for sensor, job in ((retrain_on_alert, retrain), (challenger_pending, champion_gate)):
                context = dg.build_sensor_context(
                    instance=instance, cursor=cursors.get(sensor.name), definitions=definitions
                )
                to_log(context.log, progress)
                tick = sensor.evaluate_tick(context)
                cursors[sensor.name] = tick.cursor
                progress.log(tick_line(month, sensor.name, tick.run_requests, tick.skip_message))
                for request in tick.run_requests:
                    months = tuple(
                        date.fromisoformat(request.tags[f"dagster/asset_partition_range_{end}"])
                        for end in ("start", "end")
                    )
                    sensor_tags = {
                        **request.tags,
                        **tags,
                        "dagster/sensor_name": sensor.name,
                        "dagster/run_key": request.run_key or "",
                    }
                    config = _only_families(request.run_config, families)
                    only = retraining if job is retrain else None
                    run(job.name, months, config, sensor_tags, only)
                    notes.append("RETRAIN" if job is retrain else "GATE")
            print(
                f"{month:%Y-%m}  {delivered['lms_loan_daily']:>8,} loan-book rows  "
                f"{time.monotonic() - started:6.1f} s  {'; '.join(notes) or 'all checks pass'}",
                flush=True,
            )
        run(dg.AssetSelection.assets(TIMELINE), None)
    keep_cursors(cursors)
    print(f"Timeline: {settings.REPORT_DIR / 'operations' / 'timeline.html'}", flush=True)
    print(f"Dagster's events: {log}", flush=True)
    return 0


class _ProgressLogHandler(logging.Handler):
    def __init__(self, progress: pipeline.Progress) -> None:
        super().__init__()
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.log(f"===== {record.name} {record.levelname}: {record.getMessage()}")


def warning_to_log(
    progress: pipeline.Progress,
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Libraries' warnings (a dependency's deprecations, say) go to the replay's log."""
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
    progress.log(f"===== warning: {text}")


def to_log(log: logging.Logger, progress: pipeline.Progress) -> None:
    """A sensor's own log lines go to the replay's log, not the terminal (one line a month)."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
    log.addHandler(_ProgressLogHandler(progress))


def tick_line(
    month: date, sensor: str, requests: list[dg.RunRequest] | None, skip_message: str | None
) -> str:
    """What a sensor's evaluation at month M decided, as the daemon's tick history shows it:
    the runs it asked for by run key, or why it skipped."""
    asked = [request.run_key or "run" for request in requests or []]
    outcome = f"requested {', '.join(asked)}" if asked else f"skipped: {skip_message or '-'}"
    return f"===== tick {month:%Y-%m} {sensor}: {outcome}"


def keep_cursors(cursors: dict[str, str | None]) -> None:
    """Stores each sensor's cursor in the replay's instance, through Dagster's own CLI, as the
    daemon stores it after a tick: a daemon started later over the replay's instance goes on
    from where the replay stopped instead of acting again on alarms already acted on."""
    dagster = str(Path(sys.executable).parent / "dagster")
    workspace = str(settings.PROJECT_ROOT / "workspace.yaml")
    for name, cursor in cursors.items():
        if cursor is not None:
            command = [dagster, "sensor", "cursor", name, "--set", cursor, "-w", workspace]
            subprocess.run(command, check=True, capture_output=True)


def show(folder: Path, port: int) -> int:
    """The Dagster UI over a replay's folder, in the settings it ran with: the webserver alone,
    no daemon, so the sensors (running by default) do not act on a finished replay's history."""
    saved = folder / ENVIRONMENT_FILE
    if not saved.exists():
        raise SystemExit(f"no replay in {folder}: run `make replay` first")
    environment = settings.environment_with(json.loads(saved.read_text()))
    workspace = str(settings.PROJECT_ROOT / "workspace.yaml")
    webserver = str(Path(sys.executable).parent / "dagster-webserver")
    command = [webserver, "-w", workspace, "-h", "127.0.0.1", "-p", str(port)]
    return subprocess.call(command, env=environment)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loan_default.replay", description=__doc__)
    parser.add_argument("--source", default=str(settings.RAW_DIR), help="the raw files replayed")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="synthetic data instead")
    parser.add_argument("--months", help="first...last simulated month (last: the data's end)")
    parser.add_argument("--dir", help="the replay's folder (default data/replay/<scenario>)")
    parser.add_argument("--seed", type=int, default=42, help="synthetic seed (scenario)")
    parser.add_argument("--operate", nargs=2, type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument(
        "--families", type=lambda text: text.split(","), help="model families (default: all)"
    )
    parser.add_argument("--ui", action="store_true", help="the Dagster UI over a replay's --dir")
    parser.add_argument("--port", type=int, default=3000, help="the UI's port")
    args = parser.parse_args(argv)
    if args.operate:
        for category in pipeline.QUIET_WARNINGS:
            warnings.filterwarnings("ignore", category=category)
        return operate(*args.operate, args.families)
    if args.ui:
        return show(
            Path(args.dir or settings.PROJECT_ROOT / "data" / "replay" / "replay"), args.port
        )
    folder, source = prepare(args)
    default = SCENARIOS[args.scenario][1] if args.scenario else date(2024, 1, 1)
    first, last = parse_months(args.months or f"{default}...")
    from loan_default.lib.operations.landing import read_histories

    histories = read_histories(source, settings.RAW_DATE_FORMAT)
    data_months = sorted({m for h in histories.values() for m in h.months()})
    last = last or data_months[-1]
    if not data_months[0] <= first <= last <= data_months[-1]:
        raise SystemExit(
            f"simulated months {first}..{last} must lie within the data's months "
            f"{data_months[0]}..{data_months[-1]}"
        )
    environment = replay_environment(
        folder, source, month_range(data_months[0], add_months(last, 1))
    )
    (folder / ENVIRONMENT_FILE).write_text(json.dumps(environment, indent=2))
    print(f"Replaying {first:%Y-%m}..{last:%Y-%m} of {source} in {folder}", flush=True)
    inner = [sys.executable, "-m", "loan_default.replay", "--operate", str(first), str(last)]
    if args.families:
        inner += ["--families", ",".join(args.families)]
    return subprocess.call(inner, env=settings.environment_with(environment))


if __name__ == "__main__":
    sys.exit(main())

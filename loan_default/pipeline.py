"""`python -m loan_default.pipeline run`: the pipeline of `make run`, in one process.

    run [--months A...B] [--steps data,models,...]

Why: five `dagster asset materialize` commands each started Python and Dagster, imported the
code location and printed every DEBUG event. Here the code location loads once and each step is
still one Dagster run recorded in the instance ($DAGSTER_HOME, so `make ui` shows it), with the
CLI's selection and its single-run backfill tags over the months. The terminal gets one line per
step and a progress line while a step runs; Dagster's events, DEBUG and all, go to a log file
under $DAGSTER_HOME/pipeline_logs/.

Steps (STEPS): data, models, predictions, monitoring, report (the pipeline, in that order) and
backtest, backtest_summary (`make backtest`). A step over months is one run over the range.

Ctrl-C: Dagster's in-process executor only looks at an interrupt between steps, and a run
blocked on a pool never gets there. So `run` recovers the instance (recovery.py: create and
migrate it under its lock, fail runs whose process died, wait while a live run holds the pool),
then runs itself as a child that Ctrl-C always stops (recovery.run_interruptibly).

Other drivers (a month-by-month replay) call `execute()` for each run, with one `Progress`;
`python -m loan_default.production run` is this driver (`supervise`, then `run_steps` in its
child) on the production profile's instance and warehouse.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn, TextIO

import dagster as dg

from loan_default import recovery, settings
from loan_default.defs.backfills import REPORT

POOL = "duckdb"
STEP_TAG = "loan_default/step"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Dagster's own console logger prints every event at DEBUG; with a Progress its events go to
# the log file instead, and failures are reported by execute() itself.
QUIET_CONSOLE = {"console": {"config": {"log_level": "CRITICAL"}}}
# Dagster's API-lifecycle warnings say nothing about this project's data or runs.
QUIET_WARNINGS = (dg.SupersessionWarning, dg.BetaWarning, dg.PreviewWarning)
# How often the running run's new events are read (each read briefly takes the storage's lock).
POLL_SECONDS = 1.0
# Off a terminal, a progress line at every tenth of the assets done, and at least this often.
HEARTBEAT_SECONDS = 60.0


@dataclass(frozen=True)
class Step:
    """A named selection, run once over the months (`monthly`) or once without partitions."""

    selection: dg.AssetSelection
    monthly: bool
    description: str


STEPS: dict[str, Step] = {
    "data": Step(
        dg.AssetSelection.groups("bronze", "silver", "gold"),
        True,
        "every data asset over the months (make backfill)",
    ),
    "models": Step(
        dg.AssetSelection.groups("models"),
        False,
        "each model family, the champion gate, the model documents (make train)",
    ),
    "predictions": Step(
        dg.AssetSelection.groups("predictions"), True, "scores of every month (make predict)"
    ),
    "monitoring": Step(
        dg.AssetSelection.groups("monitoring") - dg.AssetSelection.assets(REPORT),
        True,
        "drift, estimated and realized performance, fairness (make monitor)",
    ),
    "report": Step(dg.AssetSelection.assets(REPORT), False, "the monitoring report and dashboard"),
    "backtest": Step(
        dg.AssetSelection.assets(["models", "backtest"]),
        True,
        "the walk-forward backtest per as-of month (make backtest)",
    ),
    "backtest_summary": Step(
        dg.AssetSelection.assets(["models", "backtest_summary"]), False, "its summary"
    ),
}
PIPELINE = ("data", "models", "predictions", "monitoring", "report")


class StepFailed(RuntimeError):
    """A step's run did not succeed; the message names the step, assets, months and error."""


def months_label(months: tuple[date, date] | None) -> str:
    return f"{months[0]:%Y-%m}..{months[1]:%Y-%m}" if months else ""


def seconds_label(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


def log_line(entry: dg.EventLogEntry) -> str:
    """One event as Dagster's console logger would print it, plus any error in full."""
    event = entry.dagster_event
    stamp = datetime.fromtimestamp(entry.timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    parts = [stamp, logging.getLevelName(entry.level), entry.job_name or "", entry.run_id]
    parts += [entry.step_key or "", event.event_type.name if event else "", entry.message]
    line = " - ".join(parts)
    if event is not None and event.partition:
        line += f" [partition {event.partition}]"
    error = getattr(event.event_specific_data, "error", None) if event else entry.error_info
    return f"{line}\n{error.to_string()}" if error else line


@dataclass
class _StepState:
    name: str
    months: tuple[date, date] | None
    started: float
    assets: int
    expected_seconds: float | None
    planned: set[dg.AssetKey] = field(default_factory=set)
    done: set[dg.AssetKey] = field(default_factory=set)
    shown_tenths: int = 0
    shown_at: float = 0.0


class Progress:
    """What a person sees of a sequence of runs.

    One line per step with its duration; while a step runs, a progress line (assets done of
    the step's, with an estimate of the time left): rewritten in place on a terminal, a plain
    line every tenth (or minute) otherwise. Every event of every run goes to the log file, so
    the terminal can stay short without losing anything. Use it as a context manager.
    """

    def __init__(
        self, log_path: Path, steps: Sequence[str] = (), out: TextIO | None = None
    ) -> None:
        """`steps`: the names of the steps to come, when known, for "[2/5]" and aligned lines."""
        self.log_path = log_path
        self.steps = len(steps)
        self.out = out or sys.stdout
        self.live = self.out.isatty()
        self._step_number = 0
        self._width = max((len(name) for name in steps), default=0)
        self._state: _StepState | None = None
        self._lock = threading.Lock()
        self._log: TextIO | None = None

    def __enter__(self) -> Progress:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._log:
            self._log.close()

    def log(self, text: str) -> None:
        if self._log:
            self._log.write(text + "\n")
            self._log.flush()

    def step_started(
        self,
        name: str,
        months: tuple[date, date] | None,
        run_id: str,
        assets: int,
        expected_seconds: float | None,
    ) -> None:
        self._step_number += 1
        with self._lock:
            self._state = _StepState(name, months, time.monotonic(), assets, expected_seconds)
        self.log(f"===== {self._prefix()} {name} {months_label(months)} run {run_id}".rstrip())
        self.tick()

    def event(self, entry: dg.EventLogEntry) -> None:
        """An event of the current run: to the log file, and counted towards progress."""
        self.log(log_line(entry))
        event = entry.dagster_event
        if event is None or event.asset_key is None or self._state is None:
            return
        with self._lock:
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
                self._state.planned.add(event.asset_key)
            elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                self._state.done.add(event.asset_key)

    def tick(self) -> None:
        """Shows the current step's progress: in place on a terminal, else every tenth of
        the assets done or every HEARTBEAT_SECONDS."""
        with self._lock:
            state = self._state
            if state is None:
                return
            total = max(len(state.planned), state.assets, 1)
            done = min(len(state.done), total)
            elapsed = time.monotonic() - state.started
            tenths = done * 10 // total
            quiet_for = elapsed - state.shown_at
            if not self.live and done == total:
                return
            if not self.live and tenths <= state.shown_tenths and quiet_for < HEARTBEAT_SECONDS:
                return
            state.shown_tenths, state.shown_at = tenths, elapsed
        text = f"{self._head(state)}  {done}/{total} assets"
        if state.months:
            text += f" ({len(month_keys(state.months))} months each)"
        text += f"  {elapsed:.0f} s{self._left(state, done, total, elapsed)}"
        if self.live:
            self.out.write(f"\r{text}\x1b[K")
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def step_ended(self, seconds: float, success: bool) -> None:
        with self._lock:
            state, self._state = self._state, None
        if state is None:
            return
        outcome = seconds_label(seconds) if success else f"failed after {seconds_label(seconds)}"
        self.out.write(("\r" if self.live else "") + f"{self._head(state)}  {outcome}")
        self.out.write("\x1b[K\n" if self.live else "\n")
        self.out.flush()
        self.log(f"===== {state.name}: {outcome}")

    def _prefix(self) -> str:
        return f"[{self._step_number}/{self.steps}]" if self.steps else f"[{self._step_number}]"

    def _head(self, state: _StepState) -> str:
        months = months_label(state.months).ljust(16)
        return f"{self._prefix()} {state.name.ljust(self._width)}  {months}"

    @staticmethod
    def _left(state: _StepState, done: int, total: int, elapsed: float) -> str:
        if state.expected_seconds and elapsed < state.expected_seconds:
            return f", about {state.expected_seconds - elapsed:.0f} s left"
        if 0 < done < total:
            return f", about {elapsed * (total - done) / done:.0f} s left"
        return ""


def month_keys(months: tuple[date, date]) -> list[str]:
    first, last = months
    keys = []
    month = first.replace(day=1)
    while month <= last:
        keys.append(month.isoformat())
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return keys


def expected_seconds(
    instance: dg.DagsterInstance, step: str, months: tuple[date, date] | None
) -> float | None:
    """The step's last successful run's duration, scaled to these months: a better estimate
    of the time left than assets done, as assets differ widely in cost."""
    records = instance.get_run_records(
        dg.RunsFilter(tags={STEP_TAG: step}, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    if not records or not records[0].end_time:
        return None
    record = records[0]
    # From its creation: a range run's planned events come before it starts.
    seconds = record.end_time - record.create_timestamp.timestamp()
    tags = record.dagster_run.tags
    before = None
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        span = (date.fromisoformat(tags[RANGE_START_TAG]), date.fromisoformat(tags[RANGE_END_TAG]))
        before = len(month_keys(span))
    elif "dagster/partition" in tags:
        before = 1
    if months and before:
        seconds *= len(month_keys(months)) / before
    return seconds


def _follow(
    instance: dg.DagsterInstance, run_id: str, progress: Progress, stop: threading.Event
) -> None:
    """Reads the run's new events from the instance every POLL_SECONDS until stopped, then
    once more: the log file gets exactly what the instance recorded."""
    cursor, created = None, False
    while True:
        stopping = stop.wait(POLL_SECONDS)
        try:
            created = created or instance.get_run_by_id(run_id) is not None
            while created:
                page = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
                for record in page.records:
                    progress.event(record.event_log_entry)
                cursor = page.cursor
                if not page.has_more:
                    break
        except Exception as error:  # a failed read must not end the log: the next one resumes
            progress.log(f"(reading the run's events failed, will retry: {error!r})")
        if stopping:
            return
        progress.tick()


def _span(partitions: Sequence[str]) -> str:
    keys = sorted(partitions)
    if len(keys) <= 3:
        return ", ".join(keys)
    return f"{keys[0]}...{keys[-1]} ({len(keys)} months)"


def _indented(text: str) -> str:
    return "\n".join(f"  {line}".rstrip() for line in text.split("\n"))


def error_text(error: object) -> str:
    """The error as a person needs it: past Dagster's wrapper, the message in full, where it
    was raised, and each cause's message (the full trace is in the log file)."""
    while getattr(error, "cls_name", "") == "DagsterExecutionStepExecutionError" and getattr(
        error, "cause", None
    ):
        error = error.cause  # type: ignore[attr-defined]
    if getattr(error, "cls_name", "") == "DagsterExecutionInterruptedError":
        return "interrupted (Ctrl-C or a stop signal)"
    lines = [error.message.rstrip()]  # type: ignore[attr-defined]
    stack = getattr(error, "stack", None)
    if stack:
        lines.append("raised at " + stack[-1].strip().splitlines()[0])
    cause = getattr(error, "cause", None)
    while cause is not None:
        lines.append("caused by " + cause.message.rstrip())
        cause = cause.cause
    return "\n".join(lines)


def failure_report(instance: dg.DagsterInstance, step: str, run_id: str) -> str:
    """The step, each failed asset with the partitions its run covered and its error, and
    the assets left unmaterialized. The assets of a failed step are read from its planned
    events: Dagster records no per-asset failure event for these runs."""
    kinds = dg.DagsterEventType
    wanted = {
        kinds.STEP_FAILURE,
        kinds.RUN_FAILURE,
        kinds.ASSET_MATERIALIZATION_PLANNED,
        kinds.ASSET_MATERIALIZATION,
    }
    records = instance.get_records_for_run(run_id, of_type=wanted).records
    events = [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]
    planned = [e for e in events if e.event_type == kinds.ASSET_MATERIALIZATION_PLANNED]
    materialized = {e.asset_key for e in events if e.event_type == kinds.ASSET_MATERIALIZATION}
    failed_steps = [e for e in events if e.event_type == kinds.STEP_FAILURE]
    lines = [f"step {step} failed (run {run_id}; 'make ui' shows it)"]
    for failure in failed_steps:
        own = [e for e in planned if e.step_key == failure.step_key]
        assets = sorted({e.asset_key.to_user_string() for e in own if e.asset_key})
        partitions = sorted({e.partition for e in own if e.partition})
        where = f"asset {', '.join(assets)}" if assets else f"step {failure.step_key}"
        lines.append(where + (f", partitions {_span(partitions)}" if partitions else ""))
        lines.append(_indented(error_text(failure.step_failure_data.error)))
    failed = {e.step_key for e in failed_steps}
    left = sorted(
        {
            e.asset_key.to_user_string()
            for e in planned
            if e.asset_key and e.asset_key not in materialized and e.step_key not in failed
        }
    )
    if left:
        lines.append(f"not materialized as a result: {', '.join(left)}")
    if not failed_steps:
        for event in events:
            if event.event_type == kinds.RUN_FAILURE:
                lines.append(event.message or "the run failed")
                error = getattr(event.event_specific_data, "error", None)
                if error:
                    lines.append(_indented(error_text(error)))
    return "\n".join(lines)


def execute(
    definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    step: str,
    selection: dg.AssetSelection | None = None,
    job_name: str | None = None,
    months: tuple[date, date] | None = None,
    run_config: dict | None = None,
    tags: dict | None = None,
    progress: Progress | None = None,
) -> dg.ExecuteInProcessResult:
    """One Dagster run in this process, recorded in `instance`, as the CLI would start it.

    `step` names the run (tag loan_default/step, the terminal line); without `selection` or
    `job_name` it picks STEPS[step]'s selection. The run is the code location's implicit asset
    job (or `job_name`'s job, whole without `selection`) subset to the selection's assets; with
    `months` (first, last: inclusive) it covers them in one run (the CLI's range tags; one
    month: that partition), and partitioned assets need them. It first waits while a live run
    holds the `duckdb` pool, so it does not start only to block where Ctrl-C cannot reach it.
    With `progress`, Dagster's console logger is quiet (unless `run_config` sets loggers) and
    the run's events go to the progress's log file.

    Raises StepFailed naming the step, the failed assets and partitions and the error in full.
    """
    if selection is None and job_name is None:
        if step not in STEPS:
            raise StepFailed(f"no step {step!r} ({', '.join(STEPS)}): give a selection or a job")
        selection = STEPS[step].selection
    job = (
        definitions.resolve_job_def(job_name)
        if job_name
        else definitions.resolve_implicit_global_asset_job_def()
    )
    keys = sorted(selection.resolve(definitions.resolve_asset_graph())) if selection else None
    if keys is not None and not keys:
        raise StepFailed(f"step {step}: the selection holds no assets")
    if months is None:
        monthly = [k for k in keys or [] if definitions.resolve_assets_def(k).partitions_def]
        if monthly or (keys is None and job.partitions_def is not None):
            what = monthly[0].to_user_string() if monthly else f"job {job_name}"
            raise StepFailed(f"step {step}: {what} is partitioned by month: give the months")
    partition_key, run_tags = None, {STEP_TAG: step}
    if months:
        keys_of_months = month_keys(months)
        if job.partitions_def is None:
            raise StepFailed(f"step {step}: months given, but its job has no partitions")
        known = set(job.partitions_def.get_partition_keys(dynamic_partitions_store=instance))
        unknown = [key for key in keys_of_months if key not in known]
        if not keys_of_months or unknown:
            raise StepFailed(f"step {step}: months {months_label(months)} are not all partitions")
        if len(keys_of_months) == 1:
            partition_key = keys_of_months[0]
        else:
            _require_single_run(definitions, step, keys)
            run_tags |= {RANGE_START_TAG: keys_of_months[0], RANGE_END_TAG: keys_of_months[-1]}
    run_tags |= tags or {}
    config = dict(run_config or {})
    if progress is not None:
        config["loggers"] = config.get("loggers") or QUIET_CONSOLE  # a RunConfig gives {}

    recovery.wait_for_pool(instance, POOL)
    run_id = str(uuid.uuid4())
    stop = threading.Event()
    follower = None
    if progress is not None:
        estimate = expected_seconds(instance, step, months)
        progress.step_started(step, months, run_id, len(keys or []), estimate)
        follower = threading.Thread(
            target=_follow, args=(instance, run_id, progress, stop), daemon=True
        )
        follower.start()
    started, result = time.monotonic(), None
    try:
        result = job.execute_in_process(
            run_config=config,
            instance=instance,
            partition_key=partition_key,
            raise_on_error=False,
            asset_selection=keys,
            run_id=run_id,
            tags=run_tags,
        )
    except dg.DagsterError as error:
        raise StepFailed(f"step {step} could not start: {error}") from error
    finally:
        stop.set()
        if follower is not None:
            follower.join()
        if progress is not None:
            progress.step_ended(time.monotonic() - started, result is not None and result.success)
    if not result.success:
        raise StepFailed(failure_report(instance, step, run_id))
    return result


def _require_single_run(
    definitions: dg.Definitions, step: str, keys: Sequence[dg.AssetKey] | None
) -> None:
    """As the CLI: a range in one run needs every partitioned asset to take a range in one
    call (an unpartitioned one, such as the gate in a retrain, runs once)."""
    for key in keys or []:
        assets_def = definitions.resolve_assets_def(key)
        if assets_def.partitions_def is None:
            continue
        policy = assets_def.backfill_policy
        if policy is None or policy.max_partitions_per_run is not None:
            raise StepFailed(
                f"step {step}: {key.to_user_string()} cannot run a range of months in one run "
                "(its backfill policy is not single-run)"
            )


def log_path(home: str) -> Path:
    """A new log file for this invocation, under the instance whose runs it describes."""
    folder = Path(home) / "pipeline_logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = folder / f"run-{stamp}.log", 1
    while path.exists():
        n += 1
        path = folder / f"run-{stamp}-{n}.log"
    path.touch()
    return path


def run_steps(steps: Sequence[str], months: tuple[date, date]) -> int:
    """Loads the code location once and runs each step in turn; stops at the first failure."""
    from loan_default.definitions import defs

    path = log_path(str(settings.DAGSTER_HOME))
    started = time.monotonic()
    with Progress(path, steps=steps) as progress, recovery.open_instance() as instance:
        definitions = defs()
        try:
            for step in steps:
                execute(
                    definitions,
                    instance,
                    step,
                    months=months if STEPS[step].monthly else None,
                    progress=progress,
                )
        except StepFailed as error:
            progress.log(str(error))
            print(f"{error}\nDagster's events: {path}", file=sys.stderr, flush=True)
            return 1
    runs = "1 run" if len(steps) == 1 else f"{len(steps)} runs"
    print(f"{runs} in {seconds_label(time.monotonic() - started)}; Dagster's events: {path}")
    return 0


def parse_months(text: str) -> tuple[date, date]:
    first, _, last = text.partition("...")
    return date.fromisoformat(first), date.fromisoformat(last or first)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m loan_default.pipeline",
        description="The pipeline's steps as Dagster runs in one process, with a short terminal.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run steps in order (default: the whole pipeline)")
    run.add_argument(
        "--months",
        default=f"{settings.FIRST_MONTH}...{settings.LAST_MONTH}",
        help="FIRST...LAST, inclusive, for the steps over months",
    )
    run.add_argument(
        "--steps",
        default=",".join(PIPELINE),
        help="comma-separated, in order: "
        + "; ".join(f"{name}: {s.description}" for name, s in STEPS.items()),
    )
    # Set by the supervising parent: the instance is recovered and Ctrl-C is handled there.
    run.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    for category in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", category=category)
    if not settings.DAGSTER_HOME:
        raise SystemExit("DAGSTER_HOME is not set: point it at the instance folder")
    if settings.PRODUCTION:
        raise SystemExit("the production profile runs through `python -m loan_default.production`")
    steps = [name.strip() for name in arguments.steps.split(",") if name.strip()]
    unknown = [name for name in steps if name not in STEPS]
    if unknown or not steps:
        given = ", ".join(unknown) or "none given"
        raise SystemExit(f"--steps: {given}; each one of {', '.join(STEPS)}")
    try:
        months = parse_months(arguments.months)
    except ValueError as error:
        raise SystemExit(f"--months {arguments.months}: {error}") from error
    if arguments.supervised:
        try:
            code = run_steps(steps, months)
        except KeyboardInterrupt:
            code = 130
        end_child(code)
    return supervise([sys.executable, "-m", "loan_default.pipeline", *argv, "--supervised"])


def end_child(code: int) -> NoReturn:
    """Ends a supervised child whose runs are over. Every run, file and connection is closed
    by then; the interpreter's teardown of torch, scikit-learn and Dagster would only add
    seconds to the end of each command."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def supervise(child: list[str], env: dict[str, str] | None = None) -> int:
    """Recovers the instance, waits for the pool, then runs `child` (a driver that calls
    run_steps; in environment `env` when given) as a process that Ctrl-C always stops;
    returns its exit code."""
    try:
        with recovery.open_instance() as instance:
            done = recovery.recover(instance)
            for run_id in done.failed_runs:
                print(f"run {run_id}: its process is gone; marked failed, pool slots freed")
            recovery.wait_for_pool(instance, POOL)
    except KeyboardInterrupt:
        return 130
    return recovery.run_interruptibly(child, env=env)


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: the embedded single-run backfill against the production profile's backfill
with 1, 2 and 4 concurrent runs, measured in one bench run.

Each production case starts its own services (PostgreSQL and the S3 server) in a fresh folder on
free ports, then runs `python -m loan_default.production backfill data_layers` over every month:
the daemon splits it into runs of `--months-per-run` months and starts at most N at once. Peak
memory is the machine's memory in use above what it was when the case started, sampled every
0.2 s (runs, daemon, PostgreSQL and the S3 server's in-memory objects together); the embedded
case reports the same figure beside its own process's peak RSS. Cases alternate embedded and
production per data set, so the machine's drift touches both alike.

`--whole-pipeline` compares instead `make run` (`python -m loan_default.pipeline run`) with
`make run-production` (`python -m loan_default.production run`, its services started fresh on
free ports), alternating them for `--rounds` rounds; the target is production <= 2x embedded.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from loan_default_tests.benchmarks.data_layers import (
    REAL_RAW_DIR,
    measure,
    synthetic_raw_dir,
)
from loan_default_tests.cli_env import REPO_ROOT, project_env
from loan_default_tests.production_services import free_ports, running_services, services_folder


def memory_in_use_gb() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kib = int(fields["MemTotal"].split()[0]) - int(fields["MemAvailable"].split()[0])
    return kib / 1024 / 1024


class PeakMemory:
    """Samples the machine's memory in use while a block runs; `peak` is above the start."""

    def __init__(self) -> None:
        self.start = memory_in_use_gb()
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, memory_in_use_gb() - self.start)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Result:
    case: str
    wall_seconds: float
    peak_gb: float
    runs: str
    ok: bool
    steps: dict[str, float] | None = None


# A step's closing line: "[2/5] models  ...  36.6 s" or "... 3 min 8 s" (a progress line ends
# in "left", a failed step's in "failed after 1.1 s").
STEP_LINE = re.compile(r"^\[\d+/\d+\] (\S+) .*?  (?:(\d+) min )?(\d+(?:\.\d+)?) s$")


def pipeline_steps(stdout: str) -> dict[str, float]:
    """Each step's wall seconds, from the pipeline's terminal lines."""
    steps = {}
    for line in stdout.splitlines():
        if match := STEP_LINE.match(line.strip()):
            name, minutes, seconds = match.groups()
            steps[name] = 60 * int(minutes or 0) + float(seconds)
    return steps


def embedded(raw_dir: Path) -> Result:
    with PeakMemory() as memory:
        m = measure("embedded", 0, raw_dir)
    return Result("embedded, 1 run", m.wall_seconds, memory.peak, "1", m.ok)


def production(raw_dir: Path, concurrent: int, months_per_run: int) -> Result:
    with (
        tempfile.TemporaryDirectory() as scratch,
        services_folder() as folder,
        running_services(folder, *free_ports(2)) as services,
    ):
        env = {
            **os.environ,
            **services.environment(),
            "DAGSTER_HOME": str(Path(scratch) / "dagster_home"),
            "LOAN_DEFAULT_RAW_DIR": str(raw_dir),
            "LOAN_DEFAULT_MAX_CONCURRENT_RUNS": str(concurrent),
            "LOAN_DEFAULT_BACKFILL_MONTHS_PER_RUN": str(months_per_run),
        }
        done, wall, peak = timed(["loan_default.production", "backfill", "data_layers"], env)
        runs = str(
            sum(int(line.split()[0]) for line in done.stdout.splitlines() if " runs, " in line)
        )
    return Result(f"production, {concurrent} at once", wall, peak, runs, done.returncode == 0)


def whole_embedded(raw_dir: Path) -> Result:
    """`make run` on a fresh instance and warehouse."""
    with tempfile.TemporaryDirectory() as scratch:
        env = project_env(Path(scratch), raw_dir)
        env["LOAN_DEFAULT_ARTIFACTS"] = str(Path(scratch) / "artifacts")
        env["LOAN_DEFAULT_REPORTS"] = str(Path(scratch) / "reports")
        return _timed_run("embedded make run", "loan_default.pipeline", env)


def timed(
    module_args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float, float]:
    """`python -m <module_args>` in `env`: the finished process (its output printed when it
    failed), its wall time and the machine's peak memory meanwhile."""
    with PeakMemory() as memory:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", *module_args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
    return done, wall, memory.peak


def _timed_run(case: str, module: str, env: dict[str, str]) -> Result:
    """`python -m <module> run` in `env`, as a bench row."""
    done, wall, peak = timed([module, "run"], env)
    steps = pipeline_steps(done.stdout)
    return Result(case, wall, peak, str(len(steps)), done.returncode == 0, steps)


def whole_production(raw_dir: Path) -> Result:
    """`make run-production` on fresh services, instance and warehouse; the services' start
    counts, as `make run-production` starts them."""
    with tempfile.TemporaryDirectory() as scratch, services_folder() as folder:
        ports = free_ports(2)
        env = {
            **os.environ,
            "LOAN_DEFAULT_PROFILE": "production",
            "LOAN_DEFAULT_SERVICES_DIR": str(folder),
            "LOAN_DEFAULT_PG_PORT": str(ports[0]),
            "LOAN_DEFAULT_S3_ENDPOINT": f"http://127.0.0.1:{ports[1]}",
            "DAGSTER_HOME": str(Path(scratch) / "dagster_home"),
            "LOAN_DEFAULT_RAW_DIR": str(raw_dir),
        }
        try:
            return _timed_run("production make run", "loan_default.production", env)
        finally:
            subprocess.run(
                [sys.executable, "-m", "loan_default.services", "down"],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs="*", default=[10])
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--concurrent", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--months-per-run", type=int, default=3)
    parser.add_argument("--whole-pipeline", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    data = []
    if not args.skip_real and (REAL_RAW_DIR / "lms_loan_daily.csv").exists():
        data.append(("real data", REAL_RAW_DIR))
    data += [(f"synthetic x{s}", synthetic_raw_dir(s)) for s in args.scales]
    if args.whole_pipeline:
        print(f"whole pipeline, {args.rounds} rounds", flush=True)
    else:
        print(f"production backfills: runs of {args.months_per_run} months", flush=True)
    print(f"{'data':<14} {'case':<22} {'runs':>5} {'wall s':>8} {'peak GB':>8}  status")
    for name, raw_dir in data:
        if args.whole_pipeline:
            cases = [
                lambda raw=raw_dir, case=case: case(raw)
                for _ in range(args.rounds)
                for case in (whole_embedded, whole_production)
            ]
        else:
            cases = [lambda raw=raw_dir: embedded(raw)] + [
                lambda raw=raw_dir, n=n: production(raw, n, args.months_per_run)
                for n in args.concurrent
            ]
        for case in cases:
            r = case()
            print(
                f"{name:<14} {r.case:<22} {r.runs:>5} {r.wall_seconds:>8.1f} {r.peak_gb:>8.2f}  "
                f"{'ok' if r.ok else 'FAILED'}",
                flush=True,
            )
            if r.steps:
                print(" " * 16 + ", ".join(f"{k} {v:.1f}" for k, v in r.steps.items()), flush=True)


if __name__ == "__main__":
    main()

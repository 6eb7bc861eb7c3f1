"""`make bench` (monitoring): the monitoring layer for every month on the real data.

Sets up a fresh warehouse with the documented CLI (data backfill, boosting and logistic
models, predictions for every month), then times the monitoring backfill (drift, estimated
and realized performance and fairness over all months, in one run, each asset's step shown
under it) and the report with its dashboard.
Target: the monitoring layer <= 10 s on the real data.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loan_default_tests.benchmarks.data_layers import REAL_RAW_DIR, step_seconds
from loan_default_tests.cli_env import BIN, REPO_ROOT, project_env

MONTHS = ["--partition-range", "2023-01-01...2025-11-01"]
MATERIALIZE = ["dagster", "asset", "materialize", "-m", "loan_default.definitions", "--select"]
SETUP = [
    ["group:bronze or group:silver or group:gold", *MONTHS],
    ["key:models/gradient_boosting or key:models/logistic_regression or key:models/champion"],
    ["group:predictions", *MONTHS],
]
MEASURED = {
    "monitoring, all months": [
        "group:monitoring and not key:monitoring/monitoring_report",
        *MONTHS,
    ],
    "report and dashboard": ["key:monitoring/monitoring_report"],
}


STEP_DONE = re.compile(r'Finished execution of step "([^"]+)" in (?:(\d+)m)?([\d.]+)(ms|s)\.')


def seconds_by_step(log: str) -> dict[str, float]:
    """Each step's logged seconds, so one slow asset (fairness, drift) shows on its own."""
    steps: dict[str, float] = {}
    for name, minutes, value, unit in STEP_DONE.findall(log):
        seconds = 60 * int(minutes or 0) + float(value) / (1000 if unit == "ms" else 1)
        steps[name] = steps.get(name, 0.0) + seconds
    return steps


def run(args: list[str], env: dict[str, str], log) -> tuple[float, float, bool]:
    """Wall seconds, peak RSS (GB) and success of one CLI materialization."""
    log.seek(0, os.SEEK_END)
    started = time.perf_counter()
    child = subprocess.Popen(
        [str(BIN / MATERIALIZE[0]), *MATERIALIZE[1:], *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    _, status, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024 / 1024, status == 0


def main() -> None:
    if not (REAL_RAW_DIR / "lms_loan_daily.csv").exists():
        sys.exit(f"real data not found at {REAL_RAW_DIR}")
    with tempfile.TemporaryDirectory() as scratch, open(Path(scratch) / "log", "w+") as log:
        env = project_env(Path(scratch), REAL_RAW_DIR)
        env["LOAN_DEFAULT_ARTIFACTS"] = str(Path(scratch) / "artifacts")
        env["LOAN_DEFAULT_REPORTS"] = str(Path(scratch) / "reports")
        for args in SETUP:
            if not run(args, env, log)[2]:
                log.seek(0)
                sys.exit(log.read()[-3000:])
        header = f"{'monitoring step':<24} {'wall s':>8} {'steps s':>8} {'peak GB':>8}  status"
        print(header, flush=True)
        for name, args in MEASURED.items():
            start = log.seek(0, os.SEEK_END)
            wall, peak, ok = run(args, env, log)
            log.seek(start)
            text = log.read()
            steps = step_seconds(text)
            status = "ok" if ok else "FAILED"
            print(f"{name:<24} {wall:>8.1f} {steps:>8.1f} {peak:>8.2f}  {status}", flush=True)
            by_step = seconds_by_step(text)
            if len(by_step) > 1:
                for step, seconds in sorted(by_step.items(), key=lambda item: -item[1]):
                    print(
                        f"  {step.removeprefix('monitoring__'):<22} {'':>8} {seconds:>8.1f}",
                        flush=True,
                    )
            if not ok:
                log.seek(0)
                print(log.read()[-3000:], file=sys.stderr)


if __name__ == "__main__":
    main()

"""`make bench` (replay): the replay's time per simulated month, with and without a retrain.

Replays the synthetic drift scenario (python -m loan_default.replay --scenario drift) with the
families given (default: gradient boosting, the others cost their own fit on every retrain),
then reads the replay's instance: per simulated month its wall time, the runs it launched and
each run's duration. A month without a retrain or gate run is one monthly refresh of that
month: its replay time should be that run's time plus the sensor's evaluation.
Detail goes to a log file named at the end.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg

from loan_default.lib.operations.clock import SIMULATED_MONTH_TAG
from loan_default_tests.cli_env import REPO_ROOT


def month_seconds(stdout: str) -> dict[str, float]:
    """The replay's own line per month: `YYYY-MM  <rows> loan-book rows  <seconds> s  ...`."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) > 4 and line[:4].isdigit() and parts[4] == "s":
            found[parts[0]] = float(parts[3])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--months", default="2024-06-01...2025-09-01")
    parser.add_argument("--families", default="gradient_boosting")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    log = folder / "replay.log"
    command = [
        sys.executable,
        "-m",
        "loan_default.replay",
        "--scenario",
        "drift",
        "--months",
        args.months,
        "--families",
        args.families,
        "--dir",
        str(folder / "replay"),
    ]
    print(f"replay bench: {' '.join(command[2:])}", flush=True)
    with open(log, "w") as handle:
        result = subprocess.run(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=handle, text=True
        )
    with open(log, "a") as handle:
        handle.write(result.stdout)
    if result.returncode:
        raise SystemExit(f"replay failed: see {log}")
    seconds = month_seconds(result.stdout)
    environment = json.loads((folder / "replay" / "environment.json").read_text())
    os.environ["DAGSTER_HOME"] = environment["DAGSTER_HOME"]
    instance = dg.DagsterInstance.get()
    runs: dict[str, list[tuple[str, float]]] = {}
    for run in instance.get_runs():
        month = run.tags.get(SIMULATED_MONTH_TAG)
        stats = instance.get_run_stats(run.run_id)
        if month and stats.end_time and stats.start_time:
            runs.setdefault(month[:7], []).append((run.job_name, stats.end_time - stats.start_time))
    print(f"{'month':8} {'replay s':>9}  runs (job: seconds)")
    quiet, acting = [], []
    for month, wall in sorted(seconds.items()):
        jobs = sorted(runs.get(month, []))
        shown = ", ".join(f"{job}: {s:.1f}" for job, s in jobs)
        print(f"{month:8} {wall:9.1f}  {shown}")
        if month == min(seconds):
            continue  # the first month backfills history and trains the first champion
        (quiet if [job for job, _ in jobs] == ["monthly_refresh"] else acting).append(
            (wall, sum(s for job, s in jobs if job == "monthly_refresh"))
        )
    for name, months in (("without a retrain or gate", quiet), ("with a retrain or gate", acting)):
        if months:
            mean = sum(w for w, _ in months) / len(months)
            refresh = sum(r for _, r in months) / len(months)
            print(
                f"months {name}: {len(months)}, mean {mean:.1f} s per month "
                f"(of which the monthly refresh run {refresh:.1f} s)"
            )
    print(f"detail in {log}")


if __name__ == "__main__":
    main()

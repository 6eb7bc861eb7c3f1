"""`make bench`: wall time and peak memory of the full data-layer backfill in one run.

Each case runs the documented CLI backfill in a child process against a fresh warehouse and
instance, then prints the wall time, the time spent inside the run's steps, the child's CPU time
and peak RSS, and the machine's load when the case started (the figures are only comparable at
similar load). Wall minus steps is Dagster's own start-up and run creation. Cases: the real data
(when ../shared/data/raw exists) and synthetic data at 10x and 100x loans.
Targets: real data <= 20 s; 100x <= 180 s and <= 8 GB, growing linearly.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from loan_default.lib import synthetic
from loan_default_tests.cli_env import BIN, REPO_ROOT, backfill_command, project_env

REAL_RAW_DIR = REPO_ROOT.parent / "shared" / "data" / "raw"
SYNTHETIC_ROOT = REPO_ROOT / "data" / "synthetic"
BASE_LOANS = 12_500
BACKFILL = backfill_command()


STEP_DONE = re.compile(r'Finished execution of step "[^"]+" in (?:(\d+)m)?([\d.]+)(ms|s)\.')


@dataclass
class Measurement:
    case: str
    loans: int
    wall_seconds: float
    step_seconds: float
    cpu_seconds: float
    peak_rss_gb: float
    load: float
    ok: bool


def step_seconds(log: str) -> float:
    """Sum of the step durations Dagster logs (`in 400ms.`, `in 3.54s.`, `in 1m14s.`)."""
    return sum(
        60 * int(m or 0) + float(value) / (1000 if unit == "ms" else 1)
        for m, value, unit in STEP_DONE.findall(log)
    )


def synthetic_raw_dir(scale: int) -> Path:
    """Synthetic raw files for `scale` x the real loan count, generated once and kept.

    The generator runs in a child process: a backfill's peak RSS, read with wait4, counts the
    memory its parent held when it was forked, so generating here would inflate every case.
    """
    target = SYNTHETIC_ROOT / f"x{scale}"
    if not (target / "lms_loan_daily.csv").exists():
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", synthetic.__name__, "--out", str(target)]
            + ["--loans", str(BASE_LOANS * scale), "--seed", "42"],
            cwd=REPO_ROOT,
            check=True,
        )
        print(f"  generated {target} in {time.perf_counter() - started:.1f} s", flush=True)
    return target


def measure(case: str, loans: int, raw_dir: Path) -> Measurement:
    """One backfill in a child process; its own peak RSS comes from wait4."""
    with tempfile.TemporaryDirectory() as scratch, open(Path(scratch) / "log", "w+") as log:
        env = project_env(Path(scratch), raw_dir)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        child = subprocess.Popen(
            [str(BIN / BACKFILL[0]), *BACKFILL[1:]],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        ok = os.waitstatus_to_exitcode(status) == 0
        log.seek(0)
        text = log.read()
        if not ok:
            print(text[-3000:], file=sys.stderr)
    return Measurement(
        case,
        loans,
        wall,
        step_seconds(text),
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024 / 1024,
        load,
        ok,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--skip-real", action="store_true", help="only the synthetic scales")
    args = parser.parse_args()
    cases: list[tuple[str, int, Path]] = []
    if not args.skip_real and (REAL_RAW_DIR / "lms_loan_daily.csv").exists():
        cases.append(("real data", BASE_LOANS, REAL_RAW_DIR))
    for scale in args.scales:
        cases.append((f"synthetic x{scale}", BASE_LOANS * scale, synthetic_raw_dir(scale)))

    print(
        f"{'case':<16} {'loans':>10} {'wall s':>8} {'steps s':>8} {'cpu s':>8} {'peak GB':>8} "
        f"{'load':>5}  status",
        flush=True,
    )
    for case, loans, raw_dir in cases:
        m = measure(case, loans, raw_dir)
        print(
            f"{m.case:<16} {m.loans:>10,} {m.wall_seconds:>8.1f} {m.step_seconds:>8.1f} "
            f"{m.cpu_seconds:>8.1f} {m.peak_rss_gb:>8.2f} {m.load:>5.1f}  "
            f"{'ok' if m.ok else 'FAILED'}",
            flush=True,
        )


if __name__ == "__main__":
    main()

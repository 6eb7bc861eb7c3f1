"""`make bench`: wall time and peak memory of the full data-layer backfill in one run.

Each case runs the documented CLI backfill in a child process against a fresh warehouse and
instance, then prints the wall time, the run's own duration and the child's peak RSS. Cases:
the real data (when ../shared/data/raw exists) and synthetic data at 10x and 100x loans.
Targets: real data <= 20 s; 100x <= 180 s and <= 8 GB, growing linearly.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from loan_default.lib import synthetic
from loan_default_tests.cli_env import BIN, REPO_ROOT, project_env

REAL_RAW_DIR = REPO_ROOT.parent / "shared" / "data" / "raw"
SYNTHETIC_ROOT = REPO_ROOT / "data" / "synthetic"
BASE_LOANS = 12_500
BACKFILL = [
    "dagster",
    "asset",
    "materialize",
    "-m",
    "loan_default.definitions",
    "--select",
    "group:bronze or group:silver or group:gold",
    "--partition-range",
    "2023-01-01...2025-11-01",
]


@dataclass
class Measurement:
    case: str
    loans: int
    wall_seconds: float
    peak_rss_gb: float
    ok: bool


def synthetic_raw_dir(scale: int) -> Path:
    """Synthetic raw files for `scale` x the real loan count, generated once and kept."""
    target = SYNTHETIC_ROOT / f"x{scale}"
    if not (target / "lms_loan_daily.csv").exists():
        started = time.perf_counter()
        synthetic.generate(target, loans=BASE_LOANS * scale, seed=42)
        print(f"  generated {target} in {time.perf_counter() - started:.1f} s", flush=True)
    return target


def measure(case: str, loans: int, raw_dir: Path) -> Measurement:
    """One backfill in a child process; its own peak RSS comes from wait4."""
    with tempfile.TemporaryDirectory() as scratch, open(Path(scratch) / "log", "w+") as log:
        env = project_env(Path(scratch), raw_dir)
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
        if not ok:
            log.seek(0)
            print(log.read()[-3000:], file=sys.stderr)
    return Measurement(case, loans, wall, usage.ru_maxrss / 1024 / 1024, ok)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs="*", default=[10, 100])
    args = parser.parse_args()
    cases: list[tuple[str, int, Path]] = []
    if (REAL_RAW_DIR / "lms_loan_daily.csv").exists():
        cases.append(("real data", BASE_LOANS, REAL_RAW_DIR))
    for scale in args.scales:
        cases.append((f"synthetic x{scale}", BASE_LOANS * scale, synthetic_raw_dir(scale)))

    print(f"{'case':<16} {'loans':>10} {'wall s':>8} {'peak GB':>8}  status", flush=True)
    for case, loans, raw_dir in cases:
        m = measure(case, loans, raw_dir)
        print(
            f"{m.case:<16} {m.loans:>10,} {m.wall_seconds:>8.1f} {m.peak_rss_gb:>8.2f}  "
            f"{'ok' if m.ok else 'FAILED'}",
            flush=True,
        )


if __name__ == "__main__":
    main()

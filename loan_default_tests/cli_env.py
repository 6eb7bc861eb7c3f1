"""Environment for running the project's real command-line tools against temporary state."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ALL_MONTHS = "2023-01-01...2025-11-01"


def backfill_command(months: str = ALL_MONTHS) -> list[str]:
    """The README's single-run backfill of the data layers over `months`."""
    return [
        "dagster",
        "asset",
        "materialize",
        "-m",
        "loan_default.definitions",
        "--select",
        "group:bronze or group:silver or group:gold",
        "--partition-range",
        months,
    ]


def project_env(tmp_path: Path, raw_dir: Path) -> dict[str, str]:
    """A DAGSTER_HOME with the project's dagster.yaml and a warehouse, both under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LOAN_DEFAULT_RAW_DIR": str(raw_dir),
        "LOAN_DEFAULT_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
    }


def run_cli(
    args: list[str], env: dict[str, str], timeout: int = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )

"""`python -m loan_default.services up|down|status`: both local services of the production
profile at once, with the folders, ports and credentials of `loan_default.settings`.

Exit codes: 0 on success (for `status`: both run), 1 when a service cannot start or stop (the
message names the setting to change), 3 when `status` finds one or both stopped.
"""

from __future__ import annotations

import argparse
import sys

from loan_default import settings
from loan_default.services import ServiceError, postgres, s3_server

NOT_RUNNING = 3


def up() -> int:
    """Starts what is not running and returns once both accept connections."""
    database = postgres.up()
    postgres.wait_ready()
    storage = s3_server.up()
    s3_server.wait_ready()
    print(describe(database, storage))
    return 0


def down() -> int:
    """Stops both, the second even when the first fails."""
    failures = []
    for name, stop in (("PostgreSQL", postgres.down), ("S3 server", s3_server.down)):
        try:
            print(f"{name}: {'stopped' if stop() else 'was not running'}")
        except ServiceError as error:
            failures.append(str(error))
    if failures:
        raise ServiceError("\n".join(failures))
    return 0


def status() -> int:
    database = postgres.status()
    storage = s3_server.status()
    print(describe(database, storage))
    return 0 if database.running and storage.running else NOT_RUNNING


def describe(database: postgres.PostgresStatus, storage: s3_server.S3Status) -> str:
    """The connection settings a user (or dagster.yaml, or DuckLake) needs, and the state."""

    def state(running: bool, pid: int | None) -> str:
        return f"running (pid {pid})" if running else "not running"

    return "\n".join(
        [
            f"PostgreSQL: {state(database.running, database.pid)}, cluster in "
            f"{postgres.DEFAULT_FOLDER}",
            f"  host {settings.POSTGRES_HOST} port {settings.POSTGRES_PORT} "
            f"user {settings.POSTGRES_USER} (password: LOAN_DEFAULT_PG_PASSWORD)",
            f"  databases {settings.POSTGRES_DAGSTER_DB} (Dagster), "
            f"{settings.POSTGRES_CATALOG_DB} (warehouse catalog)",
            f"S3 (moto): {state(storage.running, storage.pid)}, log in {s3_server.DEFAULT_FOLDER}",
            f"  endpoint {settings.S3_ENDPOINT} bucket {settings.S3_BUCKET} "
            f"region {settings.S3_REGION} access key {settings.S3_ACCESS_KEY_ID}",
            "  objects live in memory only: stopping the server loses them",
        ]
    )


COMMANDS = {"up": up, "down": down, "status": status}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loan_default.services",
        description="The production profile's local PostgreSQL and S3 server, on loopback.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    command = parser.parse_args(argv).command
    try:
        return COMMANDS[command]()
    except ServiceError as error:
        print(f"python -m loan_default.services {command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The production profile's local services, started by the project itself on loopback.

Why: the production profile keeps Dagster's instance and the DuckLake catalog in PostgreSQL
and the warehouse's data files on S3-compatible object storage. On one machine (and in CI) the
project runs both itself, from what is installed, instead of needing system services:

    python -m loan_default.services up       # start both (idempotent), print the settings
    python -m loan_default.services status   # exit 0 when both run, 3 otherwise
    python -m loan_default.services down     # stop both

`postgres` is a throwaway cluster initialised into `settings.SERVICES_DIR / "postgres"`;
`s3_server` is moto's S3 server, which keeps objects in memory only. A real cluster points the
settings at its own services and never runs these.
"""

from __future__ import annotations

import fcntl
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServiceError(RuntimeError):
    """A service cannot start or stop; the message says which setting or step to change."""


def port_in_use(host: str, port: int) -> bool:
    """Whether another socket already holds host:port, checked by binding it ourselves (the
    reuse flag keeps connections of a server that just stopped from counting as in use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Held while a service in `folder` starts or stops: two `up`s at once (parallel make
    targets, test processes) would otherwise both run initdb or both start a server."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f".{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

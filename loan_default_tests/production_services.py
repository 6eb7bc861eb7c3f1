"""The production profile's services for tests: a real PostgreSQL cluster and a real moto S3
server on free loopback ports, in a folder of the test's own, stopped at exit.

    with services_folder() as folder, running_services(folder, *free_ports(2)) as services:
        services.connect(services.dagster_db)         # psycopg2, as the project's role
        services.s3_client().put_object(Bucket=services.s3_bucket, Key="k", Body=b"v")
        subprocess.run(..., env={**base_env, **services.environment()})
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from botocore.client import BaseClient

from loan_default import settings
from loan_default.lib.storage.lake_tables import LakeTables
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.profile import postgres_dsn
from loan_default.services import postgres, s3_server


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports free right now (all probes held open together, so no two
    are the same)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


@contextmanager
def services_folder() -> Iterator[Path]:
    """A temporary folder the server's OS user can enter. pytest's own tmp_path is not one
    under root: /tmp/pytest-of-root is mode 0700, and the cluster runs as `postgres` there."""
    with tempfile.TemporaryDirectory(prefix="loan_default_services_") as name:
        folder = Path(name)
        folder.chmod(0o755)
        yield folder


@dataclass(frozen=True)
class ProductionServices:
    """Where a test's services listen and how to log in: the settings' names, test values."""

    folder: Path
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    dagster_db: str
    catalog_db: str
    s3_endpoint: str
    s3_bucket: str
    s3_region: str
    s3_access_key_id: str
    s3_secret_access_key: str

    @property
    def postgres_folder(self) -> Path:
        return self.folder / "postgres"

    @property
    def s3_folder(self) -> Path:
        return self.folder / "s3"

    def connect(self, database: str) -> psycopg2.extensions.connection:
        """A TCP connection as the project's role, with its password."""
        return postgres.connect(
            database,
            host=self.pg_host,
            port=self.pg_port,
            user=self.pg_user,
            password=self.pg_password,
        )

    def s3_client(self) -> BaseClient:
        return s3_server.client(
            self.s3_endpoint,
            region=self.s3_region,
            access_key_id=self.s3_access_key_id,
            secret_access_key=self.s3_secret_access_key,
        )

    def warehouse(self) -> LakeTables:
        """The DuckLake warehouse on these services, as the production profile configures it."""
        s3 = S3Endpoint(
            self.s3_endpoint, self.s3_region, self.s3_access_key_id, self.s3_secret_access_key
        )
        catalog = "postgres:" + postgres_dsn(
            self.catalog_db, self.pg_host, self.pg_port, self.pg_user, self.pg_password
        )
        return LakeTables(catalog, f"s3://{self.s3_bucket}/warehouse/", s3)

    def environment(self) -> dict[str, str]:
        """The variables that point a child process's settings at these services, in the
        production profile."""
        return {
            "LOAN_DEFAULT_PROFILE": "production",
            "LOAN_DEFAULT_SERVICES_DIR": str(self.folder),
            "LOAN_DEFAULT_PG_HOST": self.pg_host,
            "LOAN_DEFAULT_PG_PORT": str(self.pg_port),
            "LOAN_DEFAULT_PG_USER": self.pg_user,
            "LOAN_DEFAULT_PG_PASSWORD": self.pg_password,
            "LOAN_DEFAULT_PG_DAGSTER_DB": self.dagster_db,
            "LOAN_DEFAULT_PG_CATALOG_DB": self.catalog_db,
            "LOAN_DEFAULT_S3_ENDPOINT": self.s3_endpoint,
            "LOAN_DEFAULT_S3_BUCKET": self.s3_bucket,
            "LOAN_DEFAULT_S3_REGION": self.s3_region,
            "LOAN_DEFAULT_S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "LOAN_DEFAULT_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
        }


def services_settings(folder: Path, pg_port: int, s3_port: int) -> ProductionServices:
    """The settings' values, with the test's folder and ports."""
    return ProductionServices(
        folder=Path(folder),
        pg_host="127.0.0.1",
        pg_port=pg_port,
        pg_user=settings.POSTGRES_USER,
        pg_password=settings.POSTGRES_PASSWORD,
        dagster_db=settings.POSTGRES_DAGSTER_DB,
        catalog_db=settings.POSTGRES_CATALOG_DB,
        s3_endpoint=f"http://127.0.0.1:{s3_port}",
        s3_bucket=settings.S3_BUCKET,
        s3_region=settings.S3_REGION,
        s3_access_key_id=settings.S3_ACCESS_KEY_ID,
        s3_secret_access_key=settings.S3_SECRET_ACCESS_KEY,
    )


def start(services: ProductionServices) -> None:
    """Both services up (idempotent, as `python -m loan_default.services up`)."""
    start_postgres(services)
    start_s3(services)


def start_postgres(services: ProductionServices) -> None:
    """The cluster up, and returns once the role logs in to both databases."""
    postgres.up(
        services.postgres_folder,
        host=services.pg_host,
        port=services.pg_port,
        user=services.pg_user,
        password=services.pg_password,
        databases=(services.dagster_db, services.catalog_db),
    )
    postgres.wait_ready(
        host=services.pg_host,
        port=services.pg_port,
        user=services.pg_user,
        password=services.pg_password,
        databases=(services.dagster_db, services.catalog_db),
    )


def start_s3(services: ProductionServices) -> None:
    """The S3 server up, and returns once the bucket exists."""
    s3_server.up(
        services.s3_folder,
        endpoint=services.s3_endpoint,
        bucket=services.s3_bucket,
        region=services.s3_region,
        access_key_id=services.s3_access_key_id,
        secret_access_key=services.s3_secret_access_key,
    )


def stop(services: ProductionServices) -> None:
    """Both services down; a service that is not running is left alone."""
    try:
        postgres.down(services.postgres_folder)
    finally:
        s3_server.down(services.s3_folder)


@contextmanager
def running_services(folder: Path, pg_port: int, s3_port: int) -> Iterator[ProductionServices]:
    """Both services running in `folder` (one the server's OS user can enter, see
    services_folder) on the given loopback ports; both stopped at exit, even on failure."""
    services = services_settings(folder, pg_port, s3_port)
    try:
        start(services)
        yield services
    finally:
        stop(services)

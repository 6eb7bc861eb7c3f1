"""The production profile's local services: a real PostgreSQL cluster and a real moto S3 server,
started by the project on free loopback ports in a folder of the test's own (as root here and
in CI, where the cluster runs as its own OS user)."""

import os
import pwd
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest

from loan_default import settings
from loan_default.services import ServiceError, postgres, s3_server
from loan_default_tests.cli_env import REPO_ROOT
from loan_default_tests.production_services import (
    ProductionServices,
    free_ports,
    running_services,
    services_folder,
    services_settings,
    start,
    start_postgres,
    start_s3,
    stop,
)


@pytest.fixture(scope="module")
def services():
    """One pair of servers for the tests that only use them (each start costs seconds)."""
    with services_folder() as folder, running_services(folder, *free_ports(2)) as running:
        yield running


def query(services: ProductionServices, database: str, statement: str) -> list[tuple]:
    """One statement in its own TCP connection as the project's role, committed."""
    connection = services.connect(database)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_role_owns_both_databases_and_keeps_a_table_in_each(services):
    for database in (services.dagster_db, services.catalog_db):
        query(services, database, "CREATE TABLE probe (id int, what text)")
        query(services, database, f"INSERT INTO probe VALUES (1, '{database}')")
        assert query(services, database, "SELECT id, what FROM probe") == [(1, database)]
        owner = query(
            services,
            database,
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()",
        )
        assert owner == [(services.pg_user,)]


def test_logins_over_tcp_need_the_password(services):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(
            host=services.pg_host,
            port=services.pg_port,
            user=services.pg_user,
            password="not-the-password",
            dbname=services.dagster_db,
        )


def test_the_bucket_keeps_objects(services):
    s3 = services.s3_client()
    s3.put_object(Bucket=services.s3_bucket, Key="months/2024-01.parquet", Body=b"rows")
    stored = s3.get_object(Bucket=services.s3_bucket, Key="months/2024-01.parquet")
    assert stored["Body"].read() == b"rows"


def test_up_again_leaves_the_running_servers_alone(services):
    before = (
        postgres.status(services.postgres_folder).pid,
        s3_server.status(services.s3_folder).pid,
    )
    s3 = services.s3_client()
    s3.put_object(Bucket=services.s3_bucket, Key="kept", Body=b"in memory")
    start(services)
    after = (
        postgres.status(services.postgres_folder).pid,
        s3_server.status(services.s3_folder).pid,
    )
    assert after == before and None not in after
    # A restarted moto would have lost the object: it keeps them in memory only.
    assert s3.get_object(Bucket=services.s3_bucket, Key="kept")["Body"].read() == b"in memory"


def test_the_cluster_runs_as_its_os_user_on_loopback_tuned_as_a_throwaway(services):
    pid = postgres.status(services.postgres_folder).pid
    status = Path(f"/proc/{pid}/status").read_text()
    (uid_line,) = (line for line in status.splitlines() if line.startswith("Uid:"))
    expected = pwd.getpwnam(settings.POSTGRES_OS_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
    assert int(uid_line.split()[1]) == expected  # root runs it as POSTGRES_OS_USER
    for name, value in [("listen_addresses", "127.0.0.1"), ("fsync", "off")]:
        assert query(services, services.dagster_db, f"SHOW {name}") == [(value,)]
    assert query(services, services.dagster_db, "SHOW max_connections") == [("200",)]
    assert (services.postgres_folder / f".s.PGSQL.{services.pg_port}").is_socket()
    assert (services.postgres_folder / postgres.LOG_NAME).is_file()
    assert (services.s3_folder / s3_server.LOG_NAME).is_file()


def test_down_stops_both_and_up_restarts_the_cluster_with_its_data():
    with services_folder() as folder:
        pg_port, s3_port = free_ports(2)
        with running_services(folder, pg_port, s3_port) as services:
            query(services, services.catalog_db, "CREATE TABLE kept AS SELECT 42 AS answer")
        assert refused(pg_port) and refused(s3_port)
        assert not postgres.status(services.postgres_folder).running
        assert not s3_server.status(services.s3_folder).running
        assert not postgres.down(services.postgres_folder)  # nothing left to stop
        assert not s3_server.down(services.s3_folder)
        with running_services(folder, pg_port, s3_port):
            assert query(services, services.catalog_db, "SELECT answer FROM kept") == [(42,)]


def test_two_ups_at_once_start_one_of_each():
    """Parallel make targets or test processes: one initdb, one server each, both callers ok."""
    with services_folder() as folder:
        services = services_settings(folder, *free_ports(2))
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                starts = [start_postgres, start_postgres, start_s3, start_s3]
                for started in [pool.submit(one, services) for one in starts]:
                    started.result()
            assert query(services, services.dagster_db, "SELECT 1") == [(1,)]
            services.s3_client().head_bucket(Bucket=services.s3_bucket)
        finally:
            stop(services)


def test_the_command_line_starts_reports_and_stops_both():
    with services_folder() as folder:
        services = services_settings(folder, *free_ports(2))
        env = {**os.environ, **services.environment()}

        def cli(command: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "loan_default.services", command],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )

        try:
            started = cli("up")
            assert started.returncode == 0, started.stderr
            assert f"port {services.pg_port}" in started.stdout
            assert services.s3_endpoint in started.stdout
            assert query(services, services.dagster_db, "SELECT 1") == [(1,)]
            assert cli("status").returncode == 0
            assert cli("down").returncode == 0
            stopped = cli("status")
            assert stopped.returncode == 3 and "not running" in stopped.stdout
        finally:
            stop(services)


def test_a_port_in_use_names_its_setting(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with pytest.raises(ServiceError, match=r"in use .*\(LOAN_DEFAULT_PG_PORT\)"):
            postgres.up(tmp_path / "postgres", port=busy)
        with pytest.raises(ServiceError, match=r"in use .*\(LOAN_DEFAULT_S3_ENDPOINT\)"):
            s3_server.up(tmp_path / "s3", endpoint=f"http://127.0.0.1:{busy}")


def test_missing_binaries_name_the_setting(tmp_path):
    (port,) = free_ports(1)
    with pytest.raises(ServiceError, match="LOAN_DEFAULT_POSTGRES_BIN"):
        postgres.up(tmp_path / "postgres", port=port, bin_dir=tmp_path / "no-postgres")


def test_a_folder_the_server_user_cannot_enter_is_named():
    with services_folder() as base:
        private = base / "private"
        private.mkdir(mode=0o700)
        (port,) = free_ports(1)
        if os.geteuid() == 0:
            with pytest.raises(ServiceError, match=f"cannot enter {private}: .*chmod o\\+x"):
                postgres.up(private / "postgres", port=port)
        else:  # the server runs as the caller, who owns the folder
            try:
                assert postgres.up(private / "postgres", port=port).running
            finally:
                postgres.down(private / "postgres")

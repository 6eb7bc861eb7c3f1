"""A throwaway PostgreSQL cluster on loopback, from the machine's own PostgreSQL binaries.

Why: the production profile keeps Dagster's instance (`POSTGRES_DAGSTER_DB`) and the DuckLake
catalog (`POSTGRES_CATALOG_DB`) in PostgreSQL, and a laptop or CI machine has the binaries but
no server for us. `up` initialises a cluster into a folder once (`initdb`), starts it with
`pg_ctl` listening only on `POSTGRES_HOST`, its unix socket and log in the folder, and makes
the login role and both databases. It is tuned as a throwaway: `fsync=off` (a machine crash can
corrupt it; `down` then `up` keeps the data), and `max_connections=200` for Dagster's
concurrent runs plus the catalog's connections.

Root: initdb and postgres refuse to run as root, so a root caller (containers, CI) runs the
server binaries as `POSTGRES_OS_USER` through `runuser`, with the folder owned by that user;
every folder above it must let that user through, which `up` checks first.

Authentication: over TCP the role logs in with its password (scram-sha-256); the unix socket
trusts its caller, but it sits in the cluster folder (mode 0700), so only the server's own OS
user (and root) can reach it. That is how `up` creates the role, as the bootstrap superuser.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from loan_default import settings
from loan_default.services import ServiceError, folder_lock, port_in_use

DEFAULT_FOLDER = settings.SERVICES_DIR / "postgres"
DATABASES = (settings.POSTGRES_DAGSTER_DB, settings.POSTGRES_CATALOG_DB)
LOG_NAME = "postgres.log"
# The superuser initdb creates; it has no password, so it only logs in over the folder's socket.
SUPERUSER = "postgres"
BINARIES = ("initdb", "pg_ctl", "postgres")
# A throwaway on one machine: durability traded for speed, room for concurrent runs.
TUNING = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
# Longest unix socket path the kernel accepts (sun_path is 108 bytes with its terminator).
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class PostgresStatus:
    """Whether the cluster in a folder runs, and if so its server's pid and port."""

    running: bool
    pid: int | None = None
    port: int | None = None


def status(
    folder: Path = DEFAULT_FOLDER,
    *,
    bin_dir: Path = settings.POSTGRES_BIN_DIR,
    os_user: str = settings.POSTGRES_OS_USER,
) -> PostgresStatus:
    """Asks pg_ctl, which also tells a live server from a stale pid file left by a crash."""
    folder = Path(folder)
    if not (folder / "PG_VERSION").exists():
        return PostgresStatus(running=False)
    _check_binaries(bin_dir)
    check = _run([_binary(bin_dir, "pg_ctl"), "-D", str(folder), "status"], folder, os_user)
    if check.returncode != 0:
        return PostgresStatus(running=False)
    lines = (folder / "postmaster.pid").read_text().splitlines()
    return PostgresStatus(running=True, pid=int(lines[0]), port=int(lines[3]))


def up(
    folder: Path = DEFAULT_FOLDER,
    *,
    host: str = settings.POSTGRES_HOST,
    port: int = settings.POSTGRES_PORT,
    user: str = settings.POSTGRES_USER,
    password: str = settings.POSTGRES_PASSWORD,
    databases: Sequence[str] = DATABASES,
    bin_dir: Path = settings.POSTGRES_BIN_DIR,
    os_user: str = settings.POSTGRES_OS_USER,
    timeout: float = 60,
) -> PostgresStatus:
    """Initialises the cluster if the folder has none, starts it unless it runs, then makes sure
    the role (with this password) and its databases exist. A running server is never restarted;
    the role and databases are checked every time, so an interrupted first `up` heals."""
    folder = Path(folder).absolute()
    _check_binaries(bin_dir)
    _check_host(host)
    with folder_lock(folder):
        current = status(folder, bin_dir=bin_dir, os_user=os_user)
        if current.running and current.port != port:
            raise ServiceError(
                f"the cluster in {folder} already runs on port {current.port}, not {port}: "
                "stop it first (python -m loan_default.services down) or use its port "
                "(LOAN_DEFAULT_PG_PORT)"
            )
        if not current.running:
            if port_in_use(host, port):
                raise ServiceError(
                    f"{host}:{port} is in use by another process: stop it or choose another port "
                    "for PostgreSQL (LOAN_DEFAULT_PG_PORT)"
                )
            socket_path = folder / f".s.PGSQL.{port}"
            if len(str(socket_path)) > MAX_SOCKET_PATH:
                raise ServiceError(
                    f"the unix socket path {socket_path} is longer than {MAX_SOCKET_PATH} bytes: "
                    "put the services in a shorter folder (LOAN_DEFAULT_SERVICES_DIR)"
                )
            _prepare_folder(folder, os_user)
            if not (folder / "PG_VERSION").exists():
                _initdb(folder, bin_dir, os_user)
            _write_hba(folder, host, os_user)
            _start(folder, host, port, bin_dir, os_user, timeout)
            current = status(folder, bin_dir=bin_dir, os_user=os_user)
        _ensure_role_and_databases(folder, port, user, password, databases)
        return current


def down(
    folder: Path = DEFAULT_FOLDER,
    *,
    bin_dir: Path = settings.POSTGRES_BIN_DIR,
    os_user: str = settings.POSTGRES_OS_USER,
    timeout: float = 60,
) -> bool:
    """Stops the server with a fast shutdown (open sessions are ended, data is flushed);
    returns whether it was running."""
    folder = Path(folder).absolute()
    with folder_lock(folder):
        if not status(folder, bin_dir=bin_dir, os_user=os_user).running:
            return False
        stop = _run(
            [_binary(bin_dir, "pg_ctl"), "-D", str(folder), "-m", "fast", "-w"]
            + ["-t", str(int(timeout)), "stop"],
            folder,
            os_user,
        )
        if stop.returncode != 0:
            raise ServiceError(f"pg_ctl stop failed for {folder}:\n{stop.stdout}{stop.stderr}")
        return True


def connect(
    database: str,
    *,
    host: str = settings.POSTGRES_HOST,
    port: int = settings.POSTGRES_PORT,
    user: str = settings.POSTGRES_USER,
    password: str = settings.POSTGRES_PASSWORD,
    connect_timeout: int = 5,
) -> psycopg2.extensions.connection:
    """A connection as the project's role over TCP, the way Dagster and DuckLake connect."""
    return psycopg2.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        dbname=database,
        connect_timeout=connect_timeout,
    )


def wait_ready(
    *,
    host: str = settings.POSTGRES_HOST,
    port: int = settings.POSTGRES_PORT,
    user: str = settings.POSTGRES_USER,
    password: str = settings.POSTGRES_PASSWORD,
    databases: Sequence[str] = DATABASES,
    timeout: float = 60,
) -> None:
    """Returns once the role can log in to every database over TCP; raises after `timeout`."""
    deadline = time.monotonic() + timeout
    for database in databases:
        while True:
            try:
                connect(database, host=host, port=port, user=user, password=password).close()
                break
            except psycopg2.OperationalError as error:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"PostgreSQL on {host}:{port} did not accept {user!r} on database "
                        f"{database!r} within {timeout:.0f} s: {error}"
                    ) from error
                time.sleep(0.2)


def _binary(bin_dir: Path, name: str) -> str:
    return str(Path(bin_dir) / name)


def _check_binaries(bin_dir: Path) -> None:
    missing = [name for name in BINARIES if not os.access(Path(bin_dir) / name, os.X_OK)]
    if missing:
        raise ServiceError(
            f"PostgreSQL binaries {', '.join(missing)} not found in {bin_dir}: install "
            "PostgreSQL's server package (e.g. apt-get install postgresql) or set "
            "LOAN_DEFAULT_POSTGRES_BIN to the folder holding initdb, pg_ctl and postgres"
        )


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError as error:
        raise ServiceError(
            f"PostgreSQL's host {host!r} is not an IP address: set LOAN_DEFAULT_PG_HOST to one, "
            "e.g. 127.0.0.1"
        ) from error


def _as_root() -> bool:
    """Root cannot run the server binaries, so it runs them as the server's OS user."""
    return os.geteuid() == 0


def _server_account(os_user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(os_user)
    except KeyError as error:
        raise ServiceError(
            f"running as root, PostgreSQL must run as another system user, and {os_user!r} "
            "does not exist: create it (useradd --system postgres) or name an existing one "
            "(LOAN_DEFAULT_POSTGRES_OS_USER)"
        ) from error


def _command(args: list[str], os_user: str) -> list[str]:
    if not _as_root():
        return args
    if shutil.which("runuser"):
        return ["runuser", "-u", os_user, "--", *args]
    account = _server_account(os_user)
    return [
        "setpriv",
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--init-groups",
        "--",
        *args,
    ]


def _run(args: list[str], folder: Path, os_user: str) -> subprocess.CompletedProcess:
    """Runs a server binary (as the server's OS user under root) inside the cluster folder, a
    working directory that user can always enter."""
    cwd = folder if folder.is_dir() else None
    return subprocess.run(
        _command(args, os_user), cwd=cwd, capture_output=True, text=True, check=False
    )


def _ancestors(folder: Path) -> Iterator[Path]:
    yield from reversed(folder.parents)


def _prepare_folder(folder: Path, os_user: str) -> None:
    """Creates the folder, owned by the server's OS user under root, and fails clearly when a
    folder above it does not let that user through (e.g. a 0700 home or temp folder)."""
    if folder.exists() and not (folder / "PG_VERSION").exists() and any(folder.iterdir()):
        raise ServiceError(
            f"{folder} exists and is not a PostgreSQL cluster: remove it or choose another "
            "folder (LOAN_DEFAULT_SERVICES_DIR)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if not _as_root():
        return
    account = _server_account(os_user)
    os.chown(folder, account.pw_uid, account.pw_gid)
    folder.chmod(0o700)
    # One process tries each folder from / down, as the server's user, and names the first
    # it cannot enter (this also honours ACLs, which mode bits alone would miss).
    probe = 'for d do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done'
    blocked = subprocess.run(
        _command(["sh", "-c", probe, "sh", *map(str, _ancestors(folder))], os_user),
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    if blocked.returncode != 0:
        where = blocked.stdout.strip() or blocked.stderr.strip()
        raise ServiceError(
            f"running as root, PostgreSQL runs as {os_user!r} (initdb and postgres refuse "
            f"root), who cannot enter {where}: let it through (chmod o+x {where}) or put the "
            "services under a folder it can reach (LOAN_DEFAULT_SERVICES_DIR)"
        )


def _initdb(folder: Path, bin_dir: Path, os_user: str) -> None:
    init = _run(
        [
            _binary(bin_dir, "initdb"),
            "-D",
            str(folder),
            f"--username={SUPERUSER}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ],
        folder,
        os_user,
    )
    if init.returncode != 0:
        raise ServiceError(f"initdb failed in {folder}:\n{init.stdout}{init.stderr}")
    tuning = "".join(f"{name} = {value}\n" for name, value in TUNING.items())
    with (folder / "postgresql.conf").open("a") as conf:
        conf.write(f"\n# A throwaway cluster (loan_default/services/postgres.py)\n{tuning}")


def _write_hba(folder: Path, host: str, os_user: str) -> None:
    """Only two ways in: the folder's socket (its owner) and the host's address by password."""
    address = ipaddress.ip_address(host)
    network = f"{address}/{address.max_prefixlen}"
    hba = folder / "pg_hba.conf"
    hba.write_text(
        "# Written by loan_default/services/postgres.py at every start.\n"
        "local all all trust\n"
        f"host all all {network} scram-sha-256\n"
    )
    if _as_root():
        account = _server_account(os_user)
        os.chown(hba, account.pw_uid, account.pw_gid)


def _start(folder: Path, host: str, port: int, bin_dir: Path, os_user: str, timeout: float) -> None:
    """pg_ctl hands -o to a shell, hence the quoting; -w waits until connections are accepted."""
    options = shlex.join(["-h", host, "-p", str(port), "-k", str(folder)])
    log = folder / LOG_NAME
    start = _run(
        [_binary(bin_dir, "pg_ctl"), "-D", str(folder), "-l", str(log), "-o", options]
        + ["-w", "-t", str(int(timeout)), "start"],
        folder,
        os_user,
    )
    if start.returncode != 0:
        tail = log.read_text()[-3000:] if log.exists() else ""
        raise ServiceError(
            f"PostgreSQL did not start from {folder} on {host}:{port}:\n"
            f"{start.stdout}{start.stderr}{tail}"
        )


def _ensure_role_and_databases(
    folder: Path, port: int, user: str, password: str, databases: Sequence[str]
) -> None:
    """Over the folder's socket as the superuser: the login role with the current password,
    and each database owned by it."""
    admin = psycopg2.connect(host=str(folder), port=port, user=SUPERUSER, dbname="postgres")
    admin.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
    try:
        with admin.cursor() as cursor:
            role = sql.Identifier(user)
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
            verb = sql.SQL("ALTER" if cursor.fetchone() else "CREATE")
            cursor.execute(
                sql.SQL("{} ROLE {} WITH LOGIN PASSWORD %s").format(verb, role), (password,)
            )
            for database in databases:
                name = sql.Identifier(database)
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cursor.fetchone():
                    cursor.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(name, role))
                else:
                    cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, role))
    finally:
        admin.close()

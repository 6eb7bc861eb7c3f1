"""An S3-compatible server on loopback: moto's server, run as a detached background process.

Why: the production profile writes the warehouse's data files to object storage, and no MinIO
server package exists in the registries here; moto (a dependency) serves the S3 API. `up`
starts `python -m moto.server` on the host and port of `S3_ENDPOINT`, its pid file and log in
`SERVICES_DIR / "s3"`, and creates `S3_BUCKET`.

Throwaway: moto keeps every object in memory, so stopping the server (or a reboot) loses them;
fine for local use, and why `up` never restarts a server that already runs. Moto accepts any
credentials; the project's own (`S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY`) are used throughout
so the same code works against a real store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from loan_default import settings
from loan_default.services import ServiceError, folder_lock, port_in_use

DEFAULT_FOLDER = settings.SERVICES_DIR / "s3"
PID_NAME = "moto.pid"
LOG_NAME = "moto.log"
MODULE = "moto.server"
# Connect and read timeout of one readiness request (a local server answers in milliseconds).
PROBE_SECONDS = 5
# Servers this interpreter started, kept so that `down` reaps them (no zombie in a long-lived
# process such as a test session); a command-line `up` exits and leaves its server to init.
_started: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class S3Status:
    """Whether the folder's server runs, and if so its pid and port."""

    running: bool
    pid: int | None = None
    port: int | None = None


def endpoint_address(endpoint: str = settings.S3_ENDPOINT) -> tuple[str, int]:
    """The host and port the server listens on, from the endpoint URL clients use."""
    parts = urlsplit(endpoint)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ServiceError(
            f"the S3 endpoint {endpoint!r} is not http://host:port: set LOAN_DEFAULT_S3_ENDPOINT "
            "to one, e.g. http://127.0.0.1:55433"
        )
    return parts.hostname, parts.port


def client(
    endpoint: str = settings.S3_ENDPOINT,
    *,
    region: str = settings.S3_REGION,
    access_key_id: str = settings.S3_ACCESS_KEY_ID,
    secret_access_key: str = settings.S3_SECRET_ACCESS_KEY,
    timeout: float = 60,
) -> BaseClient:
    """A boto3 S3 client for the endpoint, with the project's credentials and path-style URLs
    (a loopback address has no bucket subdomains). `timeout` bounds connecting and each read:
    readiness probes use a short one, so a port held by a silent process cannot stall them."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=timeout,
            read_timeout=timeout,
        ),
    )


def status(folder: Path = DEFAULT_FOLDER) -> S3Status:
    """From the pid file, trusted only while that pid is a live moto server (not a recycled pid
    or a zombie)."""
    pid_file = Path(folder) / PID_NAME
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return S3Status(running=False)
    arguments = _moto_arguments(pid)
    if arguments is None:
        return S3Status(running=False)
    port = arguments[arguments.index("-p") + 1] if "-p" in arguments else None
    return S3Status(running=True, pid=pid, port=int(port) if port else None)


def up(
    folder: Path = DEFAULT_FOLDER,
    *,
    endpoint: str = settings.S3_ENDPOINT,
    bucket: str = settings.S3_BUCKET,
    region: str = settings.S3_REGION,
    access_key_id: str = settings.S3_ACCESS_KEY_ID,
    secret_access_key: str = settings.S3_SECRET_ACCESS_KEY,
    timeout: float = 60,
) -> S3Status:
    """Starts the server unless the folder's one runs (a restart would lose every object),
    waits until it answers, and creates the bucket if missing."""
    folder = Path(folder).absolute()
    host, port = endpoint_address(endpoint)
    with folder_lock(folder):
        current = status(folder)
        if current.running and current.port != port:
            raise ServiceError(
                f"the S3 server of {folder} already runs on port {current.port}, not {port}: stop "
                "it first (python -m loan_default.services down) or use its port "
                "(LOAN_DEFAULT_S3_ENDPOINT)"
            )
        process = None
        if not current.running:
            if port_in_use(host, port):
                raise ServiceError(
                    f"{host}:{port} is in use by another process: stop it or choose another port "
                    "for the S3 server (LOAN_DEFAULT_S3_ENDPOINT)"
                )
            process = _start(folder, host, port)
        s3 = client(
            endpoint,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            timeout=PROBE_SECONDS,
        )
        deadline = time.monotonic() + timeout
        while True:
            if process is not None and process.poll() is not None:
                (folder / PID_NAME).unlink(missing_ok=True)
                raise ServiceError(
                    f"the S3 server exited (code {process.returncode}):\n{_log_tail(folder)}"
                )
            try:
                _ensure_bucket(s3, bucket, region)
                break
            except (BotoCoreError, ClientError) as error:
                if time.monotonic() > deadline:
                    if process is not None:  # ours and useless: leave no half-started server
                        _stop(folder, timeout)
                    raise ServiceError(
                        f"the S3 server on {endpoint} did not answer within {timeout:.0f} s: "
                        f"{error}\n{_log_tail(folder)}"
                    ) from error
                time.sleep(0.2)
        return status(folder)


def wait_ready(
    endpoint: str = settings.S3_ENDPOINT,
    *,
    bucket: str = settings.S3_BUCKET,
    region: str = settings.S3_REGION,
    access_key_id: str = settings.S3_ACCESS_KEY_ID,
    secret_access_key: str = settings.S3_SECRET_ACCESS_KEY,
    timeout: float = 60,
) -> None:
    """Returns once the bucket answers a head request; raises after `timeout`."""
    s3 = client(
        endpoint,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        timeout=PROBE_SECONDS,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.head_bucket(Bucket=bucket)
            return
        except (BotoCoreError, ClientError) as error:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"bucket {bucket!r} on {endpoint} did not answer within {timeout:.0f} s: "
                    f"{error}"
                ) from error
            time.sleep(0.2)


def down(folder: Path = DEFAULT_FOLDER, *, timeout: float = 30) -> bool:
    """Stops the server (SIGTERM, SIGKILL after `timeout`); returns whether it was running.
    Its objects are gone with it."""
    folder = Path(folder).absolute()
    with folder_lock(folder):
        return _stop(folder, timeout)


def _stop(folder: Path, timeout: float) -> bool:
    current = status(folder)
    if current.running and current.pid is not None:
        os.kill(current.pid, signal.SIGTERM)
        if not _wait_gone(current.pid, timeout):
            os.kill(current.pid, signal.SIGKILL)
            _wait_gone(current.pid, timeout)
    (folder / PID_NAME).unlink(missing_ok=True)
    return current.running


def _start(folder: Path, host: str, port: int) -> subprocess.Popen:
    """Its own session, so the server outlives the command that started it and a Ctrl-C there
    does not reach it."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOG_NAME).open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", MODULE, "-H", host, "-p", str(port)],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _started[process.pid] = process
    (folder / PID_NAME).write_text(f"{process.pid}\n")
    return process


def _ensure_bucket(s3: BaseClient, bucket: str, region: str) -> None:
    names = {entry["Name"] for entry in s3.list_buckets().get("Buckets", [])}
    if bucket in names:
        return
    if region == "us-east-1":  # the one region that refuses an explicit location
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def _moto_arguments(pid: int) -> list[str] | None:
    """The command line of a live (not zombie) moto server with this pid, else None."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if state == "Z" or MODULE not in arguments:
        return None
    return arguments


def _wait_gone(pid: int, timeout: float) -> bool:
    started = _started.pop(pid, None)
    if started is not None:
        try:
            started.wait(timeout)
        except subprocess.TimeoutExpired:
            _started[pid] = started
            return False
        return True
    deadline = time.monotonic() + timeout
    while _moto_arguments(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _log_tail(folder: Path) -> str:
    log = folder / LOG_NAME
    return log.read_text()[-3000:] if log.exists() else ""

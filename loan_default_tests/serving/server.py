"""A real scoring server process on loopback, started as `make serve` starts it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from loan_default_tests.cli_env import REPO_ROOT

STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A real `python -m loan_default.serving` process on loopback."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def rss_mb(self) -> float:
        """The server process's resident memory (VmRSS), in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        (line,) = (line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(
    warehouse: Path,
    log_path: Path,
    refresh_seconds: float = 0.2,
    ready_status: int = 200,
    settings: dict[str, str] | None = None,
) -> Server:
    """Starts the server the way `make serve` does and waits until /health answers.

    `settings` are further LOAN_DEFAULT_* environment variables for the server.
    """
    port = free_port()
    env = {
        **os.environ,
        "LOAN_DEFAULT_WAREHOUSE": str(warehouse),
        "LOAN_DEFAULT_API_PORT": str(port),
        "LOAN_DEFAULT_API_REFRESH_SECONDS": str(refresh_seconds),
        **(settings or {}),
    }
    log = open(log_path, "w")  # noqa: SIM115 (the child writes to it until stop())
    process = subprocess.Popen(
        [sys.executable, "-m", "loan_default.serving"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == ready_status:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server not ready within {STARTUP_SECONDS} s:\n{server.log()}")

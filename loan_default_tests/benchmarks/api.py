"""`make bench` (API): the scoring server on loopback, single-application latency and batch
throughput, bounded in requests and seconds.

The server is the real `python -m loan_default.serving` process. Its warehouse is
`LOAN_DEFAULT_WAREHOUSE` when that one has a gradient-boosting champion (after `make run`),
otherwise one built in a temporary folder from the real data with the documented CLI (backfill,
then boosting on the reference windows and the gate). Requests are real applications in the
raw schema: of 2024-05/06 with 24 months of clickstream each, and of 2024-12/2025-01, after the
clickstream gap, with none. Target: single-application p99 <= 20 ms for boosting.

Then the server's memory: on a fresh server, its resident set (VmRSS) when ready, after 1,000
distinct applications one by one, and after 20 distinct 10 MB requests (refused or not).
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import httpx
import numpy as np

from loan_default import settings
from loan_default.lib.models import registry
from loan_default_tests.benchmarks.data_layers import BACKFILL, REAL_RAW_DIR
from loan_default_tests.cli_env import project_env, run_cli
from loan_default_tests.serving.raw_requests import applications_of_month, null_refused
from loan_default_tests.serving.server import Server, start_server

TARGET_P99_MS = 20.0
BATCH_SIZE = 1000
MEMORY_APPLICATIONS = 1000
LARGE_REQUESTS, LARGE_BYTES = 20, 10_000_000
JSON = {"content-type": "application/json"}
PRE_GAP, POST_GAP = (date(2024, 5, 1), date(2024, 6, 1)), (date(2024, 12, 1), date(2025, 1, 1))
# The backfill's own command up to --select, then boosting and the gate on the reference windows.
TRAIN_BOOSTING = [
    *BACKFILL[: BACKFILL.index("--select") + 1],
    'key:"models/gradient_boosting" or key:"models/champion"',
    "--config-json",
    '{"ops": {"models__gradient_boosting": {"config": {"window_mode": "absolute"}}}}',
]


def champion_family(database: Path) -> str | None:
    if not database.exists():
        return None
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            record = registry.champion_read_only(connection)
    except duckdb.Error:
        return None
    return record.family if record else None


def build_warehouse(scratch: Path) -> Path:
    """Real data backfilled and boosting trained and promoted, in `scratch`."""
    env = project_env(scratch, REAL_RAW_DIR)
    env["LOAN_DEFAULT_ARTIFACTS"] = str(scratch / "artifacts")
    env["LOAN_DEFAULT_REPORTS"] = str(scratch / "reports")
    for command in (BACKFILL, TRAIN_BOOSTING):
        started = time.perf_counter()
        done = run_cli(command, env, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stderr[-3000:]}")
        print(f"  {' '.join(command[3:7])}: {time.perf_counter() - started:.0f} s", flush=True)
    return Path(env["LOAN_DEFAULT_WAREHOUSE"])


def accepted_applications(http: httpx.Client, months: tuple[date, ...]) -> list[dict]:
    """Real applications, with the values the API refuses as out of range set to null."""
    applications = []
    for month in months:
        found = applications_of_month(REAL_RAW_DIR, month)
        assert found, f"no applications in {month}"
        refused = http.post("/predict", json={"applications": found})
        if refused.status_code == 422:
            null_refused(found, refused.json()["detail"])
        applications += found
    return applications


def single_latency(url: str, applications: list[dict], count: int, seconds: float):
    """Milliseconds per request, one application each, one request after another.

    Each application is sent once (the server memoizes repeated one-row inputs), after a
    warm-up on others. Sent with the standard library's client on one kept-alive connection,
    as a load tool would: httpx spends about 1 ms per request of its own here (p50 and p99,
    measured interleaved), which would otherwise be counted as the server's.
    """
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)

    def post(body: bytes) -> float:
        started = time.perf_counter()
        connection.request("POST", "/predict", body=body, headers=JSON)
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"/predict answered {response.status}")
        return elapsed * 1000

    warm_up, measured = applications[-50:], applications[:-50][:count]
    for application in warm_up:
        post(json.dumps(application).encode())
    # Bodies encoded beforehand: the timing is of the server, not of the client's encoder.
    bodies = [json.dumps(application).encode() for application in measured]
    latencies = []
    deadline = time.monotonic() + seconds
    try:
        for body in bodies:
            if time.monotonic() > deadline:
                break
            latencies.append(post(body))
    finally:
        connection.close()
    return np.array(latencies)


def batch_throughput(http: httpx.Client, applications: list[dict], count: int, seconds: float):
    """(applications per second, seconds per request) for requests of BATCH_SIZE each."""
    batch = {"applications": (applications * (BATCH_SIZE // len(applications) + 1))[:BATCH_SIZE]}
    http.post("/predict", json=batch).raise_for_status()  # warm-up
    durations = []
    deadline = time.monotonic() + seconds
    while len(durations) < count and time.monotonic() < deadline:
        started = time.perf_counter()
        response = http.post("/predict", json=batch)
        durations.append(time.perf_counter() - started)
        response.raise_for_status()
        assert len(response.json()["predictions"]) == BATCH_SIZE
    return BATCH_SIZE * len(durations) / sum(durations), np.array(durations)


def _post_status(url: str, body: bytes) -> int | None:
    """The status of one POST /predict on a new connection; None when the server cut it off
    while the body was still being sent (a refusal before the body is read)."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    try:
        connection.request("POST", "/predict", body=body, headers=JSON)
        response = connection.getresponse()
        response.read()
        return response.status
    except ConnectionError:
        return None
    finally:
        connection.close()


def memory_figures(server: Server, applications: list[dict]) -> list[tuple[str, float]]:
    """Server RSS in MB when ready, after distinct applications, after distinct 10 MB requests.

    A 10 MB request is a real application with 10 MB of text in one field, a different text
    each time, so no request repeats an earlier one.
    """
    figures = [("ready", server.rss_mb())]
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    sent = applications[:MEMORY_APPLICATIONS]
    try:
        for application in sent:
            connection.request("POST", "/predict", body=json.dumps(application), headers=JSON)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"/predict answered {response.status}")
    finally:
        connection.close()
    figures.append((f"after {len(sent):,} distinct applications", server.rss_mb()))
    statuses = []
    for index in range(LARGE_REQUESTS):
        application = json.loads(json.dumps(applications[index]))
        application["attributes"]["Occupation"] = f"{index}:" + "x" * LARGE_BYTES
        statuses.append(_post_status(server.url, json.dumps(application).encode()))
    scored = statuses.count(200)
    figures.append(
        (
            f"after {LARGE_REQUESTS} distinct 10 MB requests ({scored} scored, "
            f"{LARGE_REQUESTS - scored} refused)",
            server.rss_mb(),
        )
    )
    return figures


def cpu_reference_seconds() -> float:
    """Seconds of a fixed pure-Python loop: on a shared VM whose speed drifts (by up to 2x over
    an hour on the development VM), latencies are comparable only beside this figure."""
    started = time.perf_counter()
    sum(range(10_000_000))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="single requests at most")
    parser.add_argument("--batches", type=int, default=10, help="batch requests at most")
    parser.add_argument("--seconds", type=float, default=60, help="time limit per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        warehouse = Path(settings.WAREHOUSE_PATH)
        if champion_family(warehouse) != "gradient_boosting":
            print(f"No boosting champion in {warehouse}: building one from the real data")
            warehouse = build_warehouse(Path(scratch))
        server = start_server(warehouse, Path(scratch) / "server.log", refresh_seconds=5)
        try:
            with httpx.Client(base_url=server.url, timeout=120) as http:
                version = http.get("/health").json()["model_version"]
                # 24 months of clickstream each, and the cohorts since the gap, with none.
                with_clickstream = accepted_applications(http, PRE_GAP)
                without = accepted_applications(http, POST_GAP)
                singles = {
                    "with clickstream": single_latency(
                        server.url, with_clickstream, args.requests, args.seconds
                    ),
                    "without clickstream": single_latency(
                        server.url, without, args.requests, args.seconds
                    ),
                }
                rate, batches = batch_throughput(http, with_clickstream, args.batches, args.seconds)
        finally:
            server.stop()
        # A fresh server, so that none of the applications above is remembered by it.
        server = start_server(warehouse, Path(scratch) / "server_memory.log", refresh_seconds=5)
        try:
            memory = memory_figures(server, with_clickstream + without)
        finally:
            server.stop()
    reference = min(cpu_reference_seconds() for _ in range(3))
    print(f"API on loopback, champion {version} (CPU reference loop: {reference:.3f} s)")
    for name, latencies in singles.items():
        p50, p99 = np.percentile(latencies, [50, 99])
        verdict = "met" if p99 <= TARGET_P99_MS else "NOT met"
        print(
            f"  single application, {name}: {len(latencies)} requests, p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms (target p99 <= {TARGET_P99_MS:.0f} ms: {verdict})"
        )
    print(
        f"  batch of {BATCH_SIZE} (with clickstream): {len(batches)} requests, "
        f"{np.median(batches):.2f} s each (median), {rate:,.0f} applications/s"
    )
    print("  server memory (RSS): " + ", ".join(f"{mb:,.0f} MB {when}" for when, mb in memory))


if __name__ == "__main__":
    main()

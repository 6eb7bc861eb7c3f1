"""The Dagster UI's server on loopback serves the asset graph: groups, partitions, checks."""

import socket
import subprocess
import time

import pytest
import requests

from loan_default_tests.cli_env import BIN, REPO_ROOT, project_env

ASSET_GRAPH_QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    isPartitioned
    partitionKeysByDimension { partitionKeys }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def webserver(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "dagster-webserver"),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=project_env(tmp_path, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("webserver did not start within 120 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_asset_graph_through_graphql(webserver):
    response = requests.post(f"{webserver}/graphql", json={"query": ASSET_GRAPH_QUERY}, timeout=60)
    nodes = {"/".join(n["assetKey"]["path"]): n for n in response.json()["data"]["assetNodes"]}
    groups = {n["groupName"] for n in nodes.values()}
    assert groups == {
        "raw",
        "bronze",
        "silver",
        "gold",
        "models",
        "predictions",
        "monitoring",
        "backtest",
        "operations",
    }

    feature_store = nodes["gold/feature_store"]
    assert feature_store["isPartitioned"]
    keys = feature_store["partitionKeysByDimension"][0]["partitionKeys"]
    assert (keys[0], keys[-1], len(keys)) == ("2023-01-01", "2025-11-01", 35)
    checks = {c["name"]: c["blocking"] for c in feature_store["assetChecksOrError"]["checks"]}
    assert checks["point_in_time"] is True
    assert checks["value_ranges"] is False
    silver_checks = nodes["silver/lms_loan_daily"]["assetChecksOrError"]["checks"]
    assert "rows_conserved" in {c["name"] for c in silver_checks}
    assert not nodes["raw/lms_loan_daily"]["isPartitioned"]
    drift_checks = nodes["monitoring/drift"]["assetChecksOrError"]["checks"]
    assert {"champion_score_psi", "champion_feature_csi", "champion_input_missing"} <= {
        c["name"] for c in drift_checks
    }
    fairness = nodes["monitoring/fairness"]
    assert fairness["isPartitioned"] and fairness["groupName"] == "monitoring"
    assert {c["name"]: c["blocking"] for c in fairness["assetChecksOrError"]["checks"]} == {
        "champion_adverse_impact_ratio": False,
        "freshness_check": False,
    }
    backtest = nodes["models/backtest"]
    assert backtest["isPartitioned"]

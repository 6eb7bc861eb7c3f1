"""The deployment examples under deploy/ are real Dagster configuration and stay in step.

Each instance file is loaded the way a pod loads it (`DagsterInstance.get()` from $DAGSTER_HOME),
so Dagster itself validates it against its instance schema and builds its storage, run
coordinator and run launcher. Nothing is contacted: the PostgreSQL storage is built with
`should_autocreate_tables: false` (it then opens no connection until used) and points at port 1,
and the K8s launcher reads a throwaway kubeconfig for https://127.0.0.1:1 instead of the
in-cluster one. The Helm values are compared with the Kubernetes instance file, and every
LOAN_DEFAULT_* name they use must be one loan_default/settings.py reads.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster_k8s import K8sRunLauncher
from dagster_postgres import PostgresRunStorage

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_YAML = REPO_ROOT / "deploy" / "production" / "dagster.yaml"
KUBERNETES_YAML = REPO_ROOT / "deploy" / "kubernetes" / "dagster.yaml"
VALUES_YAML = REPO_ROOT / "deploy" / "kubernetes" / "values.yaml"
SETTINGS_PY = REPO_ROOT / "loan_default" / "settings.py"

# What a test process exports for the instance's `env:` references. Port 1: a connection
# attempt would fail at once instead of reaching a server.
INSTANCE_ENV = {
    "LOAN_DEFAULT_PG_USER": "deploy_test",
    "LOAN_DEFAULT_PG_PASSWORD": "not-a-password",
    "LOAN_DEFAULT_PG_HOST": "127.0.0.1",
    "LOAN_DEFAULT_PG_PORT": "1",
    "LOAN_DEFAULT_PG_DAGSTER_DB": "dagster_deploy_test",
    "LOAN_DEFAULT_MAX_CONCURRENT_RUNS": "7",
}
EXPECTED_PG_URL = "postgresql+psycopg2://deploy_test:not-a-password@127.0.0.1:1/dagster_deploy_test"

# The keys of the Secrets named in env_secrets (README): what each one puts in a run's env.
SECRET_KEYS = {
    "loan-default-postgres": {"LOAN_DEFAULT_PG_PASSWORD"},
    "loan-default-s3": {"LOAN_DEFAULT_S3_ACCESS_KEY_ID", "LOAN_DEFAULT_S3_SECRET_ACCESS_KEY"},
}

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
  - name: nowhere
    cluster:
      server: https://127.0.0.1:1
users:
  - name: nobody
    user:
      token: not-a-token
contexts:
  - name: nowhere
    context:
      cluster: nowhere
      user: nobody
current-context: nowhere
"""

# The dagster/dagster chart's values keys this project uses, transcribed from the chart's own
# schema (helm/dagster/schema in dagster-io/dagster: DagsterHelmValues and its subschemas).
# A dict lists the allowed keys below it, [spec] is a list of such items, None takes any value.
_IMAGE = {"repository": None, "tag": None, "pullPolicy": None}
_SECRET_REFS = [{"name": None, "optional": None}]
CHART_KEYS: dict[str, Any] = {
    "global": {
        "postgresqlSecretName": None,
        "dagsterHome": None,
        "serviceAccountName": None,
        "celeryConfigSecretName": None,
        "dagsterInstanceConfigMap": None,
    },
    "serviceAccount": {"create": None, "name": None, "annotations": None},
    "telemetry": {"enabled": None},
    "postgresql": {
        "enabled": None,
        "image": None,
        "postgresqlHost": None,
        "postgresqlUsername": None,
        "postgresqlPassword": None,
        "postgresqlDatabase": None,
        "postgresqlParams": None,
        "postgresqlScheme": None,
        "service": {"port": None},
    },
    "generatePostgresqlPasswordSecret": None,
    "dagster-user-deployments": {
        "enabled": None,
        "enableSubchart": None,
        "imagePullSecrets": None,
        "deployments": [
            {
                "name": None,
                "image": _IMAGE,
                "dagsterApiGrpcArgs": None,
                "codeServerArgs": None,
                "includeConfigInLaunchedRuns": {"enabled": None},
                "port": None,
                "replicaCount": None,
                "env": None,
                "envConfigMaps": None,
                "envSecrets": _SECRET_REFS,
                "annotations": None,
                "nodeSelector": None,
                "affinity": None,
                "tolerations": None,
                "podSecurityContext": None,
                "securityContext": None,
                "resources": None,
                "livenessProbe": None,
                "readinessProbe": None,
                "startupProbe": None,
                "labels": None,
                "volumeMounts": None,
                "volumes": None,
                "schedulerName": None,
            }
        ],
    },
    "runLauncher": {
        "type": None,
        "config": {
            "k8sRunLauncher": {
                "image": _IMAGE,
                "imagePullPolicy": None,
                "jobNamespace": None,
                "loadInclusterConfig": None,
                "kubeconfigFile": None,
                "envConfigMaps": None,
                "envSecrets": _SECRET_REFS,
                "envVars": None,
                "volumeMounts": None,
                "volumes": None,
                "labels": None,
                "failPodOnRunFailure": None,
                "resources": None,
                "schedulerName": None,
                "securityContext": None,
                "runK8sConfig": None,
            }
        },
    },
    "dagsterDaemon": {
        "enabled": None,
        "runCoordinator": {
            "enabled": None,
            "type": None,
            "config": {
                "queuedRunCoordinator": {
                    "maxConcurrentRuns": None,
                    "tagConcurrencyLimits": None,
                    "dequeueIntervalSeconds": None,
                    "dequeueNumWorkers": None,
                    "dequeueUseThreads": None,
                    "blockOpConcurrencyLimitedRuns": None,
                }
            },
        },
        # The chart's schema takes any map here; these are the keys its instance template renders.
        "runMonitoring": {
            "enabled": None,
            "startTimeoutSeconds": None,
            "pollIntervalSeconds": None,
            "maxResumeRunAttempts": None,
        },
        "env": None,
        "envSecrets": _SECRET_REFS,
        "resources": None,
    },
    "concurrency": {"enabled": None, "pools": None, "runs": None},
}


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return yaml.safe_load(f)


def env_references(node: Any) -> set[str]:
    """The variable names a Dagster config tree reads through `{env: NAME}`."""
    if isinstance(node, dict):
        if set(node) == {"env"} and isinstance(node["env"], str):
            return {node["env"]}
        return set().union(*(env_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(env_references(value) for value in node))
    return set()


def env_pairs(entries: list[str]) -> dict[str, str]:
    """K8sRunLauncher's env_vars (`KEY=VALUE`) as a mapping; every entry must carry a value."""
    pairs = dict(entry.split("=", 1) for entry in entries if "=" in entry)
    assert len(pairs) == len(entries), f"env_vars without a value or repeated: {entries}"
    return pairs


def unknown_keys(values: Any, spec: Any, path: str = "") -> list[str]:
    """The key paths in `values` that `spec` (see CHART_KEYS) does not list."""
    if spec is None:
        return []
    if isinstance(spec, list):
        assert isinstance(values, list), f"{path} must be a list"
        return [key for item in values for key in unknown_keys(item, spec[0], f"{path}[]")]
    assert isinstance(values, dict), f"{path} must be a map"
    found = []
    for key, value in values.items():
        child = f"{path}.{key}" if path else key
        found += unknown_keys(value, spec[key], child) if key in spec else [child]
    return found


def camel_keys(node: Any) -> Any:
    """Kubernetes objects with camelCase keys: dagster.yaml may spell them in snake_case."""
    if isinstance(node, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key): camel_keys(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [camel_keys(value) for value in node]
    return node


def k8s_bytes(quantity: str) -> float:
    """A Kubernetes memory quantity (4Gi, 512Mi) or a DuckDB one (3GB) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    match = re.fullmatch(r"([\d.]+)\s*([KMG][iB])", quantity)
    assert match, f"not a memory quantity: {quantity!r}"
    return float(match[1]) * units[match[2]]


@contextmanager
def loaded_instance(
    config: dict[str, Any], home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """The instance a process with this dagster.yaml in $DAGSTER_HOME gets, storage unconnected."""
    config = copy.deepcopy(config)
    # Build PostgreSQL storage without creating tables: it connects only when first used.
    config["storage"]["postgres"]["should_autocreate_tables"] = False
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in INSTANCE_ENV.items():
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


def offline_launcher(config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The Kubernetes instance file with its launcher reading a kubeconfig for nowhere."""
    config = copy.deepcopy(config)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    launcher = config["run_launcher"]["config"]
    launcher["load_incluster_config"] = False
    launcher["kubeconfig_file"] = str(kubeconfig)
    return config


@pytest.mark.parametrize("path", [PRODUCTION_YAML, KUBERNETES_YAML], ids=["production", "k8s"])
def test_instance_has_postgres_storage_queued_runs_and_no_pool_limit(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both profiles' instances: runs and events in PostgreSQL (through psycopg2, the driver
    dagster-postgres installs), at most LOAN_DEFAULT_MAX_CONCURRENT_RUNS runs at once, and no
    pool limit, so the "duckdb" pool does not serialise DuckLake writers."""
    config = load_yaml(path)
    if "run_launcher" in config:
        config = offline_launcher(config, tmp_path)
    with loaded_instance(config, tmp_path / "home", monkeypatch) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert instance.run_storage.postgres_url == EXPECTED_PG_URL
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, dg.QueuedRunCoordinator)
        assert coordinator.get_run_queue_config().max_concurrent_runs == 7
        assert instance.get_concurrency_config().pool_config.default_pool_limit is None
        assert instance.run_monitoring_enabled
        assert not instance.telemetry_enabled
        expected_launcher = K8sRunLauncher if path == KUBERNETES_YAML else dg.DefaultRunLauncher
        assert isinstance(instance.run_launcher, expected_launcher)


def test_kubernetes_instance_is_the_production_one_with_a_pod_per_run() -> None:
    """On a cluster only the launcher (and the time a pod may take to start) changes."""
    production = load_yaml(PRODUCTION_YAML)
    kubernetes = load_yaml(KUBERNETES_YAML)
    assert "run_launcher" not in production
    assert kubernetes["run_launcher"]["class"] == "K8sRunLauncher"
    for section in ("storage", "run_coordinator", "telemetry", "concurrency"):
        assert production.get(section) == kubernetes.get(section), section
    differing = {
        key
        for key in production["run_monitoring"].keys() | kubernetes["run_monitoring"].keys()
        if production["run_monitoring"].get(key) != kubernetes["run_monitoring"].get(key)
    }
    assert differing <= {"start_timeout_seconds"}
    assert env_references(production) == env_references(kubernetes)


def test_kubernetes_launcher_builds_a_pod_per_run_with_the_production_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster builds the K8sRunLauncher from the file, and its run pods get what they need:
    the production profile, every variable the instance file reads (plain or from a Secret),
    the raw data volume, and a memory limit above DuckDB's cap."""
    deployed = load_yaml(KUBERNETES_YAML)
    assert deployed["run_launcher"]["config"]["load_incluster_config"] is True
    config = offline_launcher(deployed, tmp_path)
    with loaded_instance(config, tmp_path / "home", monkeypatch) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, K8sRunLauncher)
        assert launcher.job_namespace == "loan-default"
        assert launcher.service_account_name == "loan-default"
        assert launcher.job_image == "registry.example.com/loan-default:<tag>"
        run_env = env_pairs(launcher.env_vars)
        secrets = launcher.env_secrets
        resources = launcher.resources
        mounts = launcher.volume_mounts
    assert run_env["LOAN_DEFAULT_PROFILE"] == "production"
    assert set(secrets) == set(SECRET_KEYS)
    from_secrets = set().union(*SECRET_KEYS.values())
    assert not from_secrets & run_env.keys(), "credentials belong in Secrets, not env_vars"
    missing = env_references(deployed) - run_env.keys() - from_secrets
    assert not missing, f"run pods load the instance but lack {sorted(missing)}"
    assert run_env["LOAN_DEFAULT_RAW_DIR"] in {camel_keys(m)["mountPath"] for m in mounts}
    assert {"requests", "limits"} <= resources.keys()
    duckdb_cap = k8s_bytes(run_env["LOAN_DEFAULT_DUCKDB_MEMORY"])
    assert k8s_bytes(resources["limits"]["memory"]) > duckdb_cap


def test_helm_values_use_chart_keys_and_agree_with_the_instance_file() -> None:
    """The Helm values configure the same deployment as deploy/kubernetes/dagster.yaml: one image
    for the code server and runs, the same settings and Secrets, namespace, resources, volumes,
    maximum of concurrent runs and PostgreSQL; and use only keys the chart's schema has."""
    values = load_yaml(VALUES_YAML)
    assert unknown_keys(values, CHART_KEYS) == []

    launcher = load_yaml(KUBERNETES_YAML)["run_launcher"]["config"]
    run_env = env_pairs(launcher["env_vars"])
    chart_launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (code,) = values["dagster-user-deployments"]["deployments"]
    assert values["dagster-user-deployments"]["enabled"] is True
    assert "loan_default.definitions" in code["dagsterApiGrpcArgs"]

    def image(spec: dict[str, Any]) -> str:
        return f"{spec['repository']}:{spec['tag']}"

    assert image(code["image"]) == image(chart_launcher["image"]) == launcher["job_image"]
    assert code["image"]["pullPolicy"] == chart_launcher["imagePullPolicy"]
    assert chart_launcher["imagePullPolicy"] == launcher["image_pull_policy"]
    assert env_pairs(chart_launcher["envVars"]) == run_env
    assert {name: str(value) for name, value in code["env"].items()} == run_env
    secret_names = [secret["name"] for secret in chart_launcher["envSecrets"]]
    assert secret_names == [secret["name"] for secret in code["envSecrets"]]
    assert secret_names == launcher["env_secrets"]
    assert chart_launcher["jobNamespace"] == launcher["job_namespace"]
    assert chart_launcher["loadInclusterConfig"] == launcher["load_incluster_config"]
    assert chart_launcher["resources"] == launcher["resources"]
    assert camel_keys(chart_launcher["volumes"]) == camel_keys(launcher["volumes"])
    assert camel_keys(chart_launcher["volumeMounts"]) == camel_keys(launcher["volume_mounts"])
    assert values["serviceAccount"]["name"] == launcher["service_account_name"]

    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True
    assert coordinator["type"] == "QueuedRunCoordinator"
    max_runs = coordinator["config"]["queuedRunCoordinator"]["maxConcurrentRuns"]
    assert max_runs == int(run_env["LOAN_DEFAULT_MAX_CONCURRENT_RUNS"])
    assert not values.get("concurrency", {}).get("enabled", False)
    monitoring = load_yaml(KUBERNETES_YAML)["run_monitoring"]
    chart_monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert chart_monitoring["enabled"] == monitoring["enabled"]
    assert chart_monitoring["startTimeoutSeconds"] == monitoring["start_timeout_seconds"]
    assert chart_monitoring["pollIntervalSeconds"] == monitoring["poll_interval_seconds"]

    postgres = values["postgresql"]
    storage = load_yaml(KUBERNETES_YAML)["storage"]["postgres"]["postgres_db"]
    assert postgres["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert postgres["postgresqlHost"] == run_env["LOAN_DEFAULT_PG_HOST"]
    assert postgres["postgresqlUsername"] == run_env["LOAN_DEFAULT_PG_USER"]
    assert postgres["postgresqlDatabase"] == run_env["LOAN_DEFAULT_PG_DAGSTER_DB"]
    assert str(postgres["service"]["port"]) == run_env["LOAN_DEFAULT_PG_PORT"]
    assert postgres["postgresqlScheme"] == storage["scheme"]
    assert values["global"]["postgresqlSecretName"] in secret_names


def settings_names() -> set[str]:
    return set(re.findall(r"\"(LOAN_DEFAULT_[A-Z0-9_]+)\"", SETTINGS_PY.read_text()))


def test_every_setting_the_deployment_uses_is_one_settings_py_reads() -> None:
    """A renamed or misspelt LOAN_DEFAULT_* name in deploy/ would be silently ignored by the
    project: every one must be read by loan_default/settings.py."""
    used: set[str] = set().union(*SECRET_KEYS.values())
    for path in (PRODUCTION_YAML, KUBERNETES_YAML):
        config = load_yaml(path)
        used |= env_references(config)
        launcher = config.get("run_launcher", {}).get("config", {})
        used |= env_pairs(launcher.get("env_vars", [])).keys()
    values = load_yaml(VALUES_YAML)
    used |= env_pairs(values["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]).keys()
    for deployment in values["dagster-user-deployments"]["deployments"]:
        used |= deployment["env"].keys()
    project_names = {name for name in used if name.startswith("LOAN_DEFAULT_")}
    unknown = project_names - settings_names()
    assert not unknown, f"not read by loan_default/settings.py: {sorted(unknown)}"

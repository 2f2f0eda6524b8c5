"""The Kubernetes configuration we ship (deploy/k8s/, movielens_assets/executors.py, assets/_compute.py), validated
offline against Dagster's and dagster-k8s's own config schemas — a run launcher, executor or step pod config that
could not be configured fails here, not on the cluster:

- deploy/k8s/dagster.yaml: Dagster's instance schema; each storage, the run coordinator and the K8sRunLauncher
  against their classes' schemas; the launcher is constructed (its Kubernetes API client is not loaded);
- deploy/k8s/values.yaml: its sections mapped onto instance config the way the chart's templates do (an unknown key
  fails, as the chart's schema forbids extra keys there) must give exactly deploy/k8s/dagster.yaml;
- `k8s_job_executor`'s schema accepts K8S_EXECUTOR_CONFIG, and MOVIELENS_EXECUTOR=k8s makes it the jobs' executor;
- every step's `dagster-k8s/config` op tag parses with dagster-k8s (`get_user_defined_k8s_config`) into Kubernetes
  models, its settings parse with settings.py, the torch steps are in the `gpu` pool; a GPU step's Kubernetes Job is
  built as the executor builds it.

What is NOT validated offline: the chart's own values.schema.json and templates (`helm lint` / `helm template`
need the chart), and anything a cluster decides (the image, the Secrets and PVC existing, GPU nodes and their taints).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import UserDefinedDagsterK8sConfig, construct_dagster_k8s_job, get_user_defined_k8s_config
from dagster_k8s.models import k8s_model_from_dict

from movielens_assets.assets._compute import COMPUTE, GPU_POOL, GPU_RESOURCE, K8S_CONFIG_TAG
from movielens_assets.definitions import build_definitions
from movielens_assets.executors import K8S_EXECUTOR_CONFIG
from movielens_assets.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy" / "k8s"
RELEASE, NAMESPACE = "movielens", "movielens"  # as in values.yaml's `helm upgrade --install` line
TORCH_STEPS = {"item_embeddings", "two_tower_recall", "unified_ranker"}
"""The steps that train or embed with torch on `MOVIELENS_DEVICE` (ranked_recommendations scores on CPU workers)."""


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


@pytest.fixture(scope="module")
def cluster_yaml() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def _validated(config_class: type, config: Any) -> Any:
    """`config` processed through `config_class.config_type()` (env: sources resolved); fails the test on errors."""
    result = process_config(resolve_to_config_type(config_class.config_type()), config)
    assert result.success, [e.message for e in result.errors or []]
    return result.value


# ------------------------------------------------------------------------- values.yaml -> instance, as the chart does
# helm key -> K8sRunLauncher config key (templates/helpers/instance/_run-launcher.tpl); the chart's schema forbids
# any other
LAUNCHER_KEYS = {"loadInclusterConfig": "load_incluster_config", "kubeconfigFile": "kubeconfig_file",
                 "jobNamespace": "job_namespace", "imagePullPolicy": "image_pull_policy", "image": "job_image",
                 "envConfigMaps": "env_config_maps", "envSecrets": "env_secrets", "envVars": "env_vars",
                 "volumeMounts": "volume_mounts", "volumes": "volumes", "labels": "labels", "resources": "resources",
                 "failPodOnRunFailure": "fail_pod_on_run_failure", "schedulerName": "scheduler_name",
                 "securityContext": "security_context", "runK8sConfig": "run_k8s_config"}
RUN_K8S_CONFIG_KEYS = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
                       "podTemplateSpecMetadata": "pod_template_spec_metadata", "jobSpecConfig": "job_spec_config",
                       "jobMetadata": "job_metadata"}
QUEUED_KEYS = {"maxConcurrentRuns": "max_concurrent_runs", "tagConcurrencyLimits": "tag_concurrency_limits",
               "dequeueIntervalSeconds": "dequeue_interval_seconds", "dequeueUseThreads": "dequeue_use_threads",
               "dequeueNumWorkers": "dequeue_num_workers"}
RUN_MONITORING_KEYS = {"enabled": "enabled", "startTimeoutSeconds": "start_timeout_seconds",
                       "cancelTimeoutSeconds": "cancel_timeout_seconds",
                       "maxResumeRunAttempts": "max_resume_run_attempts",
                       "pollIntervalSeconds": "poll_interval_seconds",
                       "freeSlotsAfterRunEndSeconds": "free_slots_after_run_end_seconds"}
POOL_KEYS = {"defaultLimit": "default_limit", "granularity": "granularity",
             "opGranularityRunBuffer": "op_granularity_run_buffer"}
RUNS_KEYS = {"maxConcurrentRuns": "max_concurrent_runs", "tagConcurrencyLimits": "tag_concurrency_limits"}
STORAGES = {"run_storage": ("dagster_postgres.run_storage", "PostgresRunStorage"),
            "event_log_storage": ("dagster_postgres.event_log", "PostgresEventLogStorage"),
            "schedule_storage": ("dagster_postgres.schedule_storage", "PostgresScheduleStorage")}


def _rename(section: dict[str, Any], keys: dict[str, str], where: str) -> dict[str, Any]:
    unknown = set(section) - set(keys)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} (the chart's schema forbids them)")
    return {keys[k]: v for k, v in section.items() if v is not None}


def _fullname(values: dict[str, Any]) -> str:
    return values.get("fullnameOverride") or (RELEASE if "dagster" in RELEASE else f"{RELEASE}-dagster")


def render_instance(values: dict[str, Any]) -> dict[str, Any]:
    """The instance sections the chart renders from `values` (those values.yaml sets), for release `movielens` in
    namespace `movielens`: storage, run launcher, run coordinator, run monitoring, concurrency, telemetry."""
    pg = values["postgresql"]
    assert not pg["enabled"], "an external PostgreSQL: the bundled subchart is not rendered here"
    postgres_db = {"username": pg["postgresqlUsername"], "password": {"env": "DAGSTER_PG_PASSWORD"},
                   "hostname": pg["postgresqlHost"], "db_name": pg["postgresqlDatabase"], "port": pg["service"]["port"],
                   "params": pg.get("postgresqlParams") or {}}
    if pg.get("postgresqlScheme"):
        postgres_db["scheme"] = pg["postgresqlScheme"]
    instance: dict[str, Any] = {"telemetry": {"enabled": values["telemetry"]["enabled"]}}
    for name, (module, cls) in STORAGES.items():
        instance[name] = {"module": module, "class": cls, "config": {"postgres_db": postgres_db}}

    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = _rename(values["runLauncher"]["config"]["k8sRunLauncher"], LAUNCHER_KEYS, "runLauncher.k8sRunLauncher")
    if "run_k8s_config" in launcher:
        launcher["run_k8s_config"] = _rename(launcher["run_k8s_config"], RUN_K8S_CONFIG_KEYS, "runK8sConfig")
    if "job_image" in launcher:
        image = launcher["job_image"]
        launcher["job_image"] = f"{image['repository']}:{image['tag']}"
    for key in ("env_config_maps", "env_secrets"):  # lists of {name: …} in the chart, of names in the launcher
        if key in launcher:
            launcher[key] = [entry["name"] for entry in launcher[key] if "name" in entry]
    launcher.setdefault("job_namespace", NAMESPACE)
    g = values["global"]
    launcher.update({
        "service_account_name": g.get("serviceAccountName") or values.get("serviceAccount", {}).get("name")
        or _fullname(values),
        "dagster_home": g["dagsterHome"], "instance_config_map": f"{_fullname(values)}-instance",
        "postgres_password_secret": g["postgresqlSecretName"]})
    if values.get("imagePullSecrets"):
        launcher["image_pull_secrets"] = values["imagePullSecrets"]
    instance["run_launcher"] = {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher}

    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    if daemon["enabled"] and coordinator["enabled"]:
        assert coordinator["type"] == "QueuedRunCoordinator"
        queued = _rename(coordinator["config"]["queuedRunCoordinator"], QUEUED_KEYS, "queuedRunCoordinator")
        # older charts wrote `dagster.core.run_coordinator`, which dagster 1.13 cannot import
        instance["run_coordinator"] = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator",
                                       **({"config": queued} if queued else {})}
    if daemon["enabled"] and daemon["runMonitoring"]["enabled"]:
        instance["run_monitoring"] = _rename(daemon["runMonitoring"], RUN_MONITORING_KEYS, "runMonitoring")
    concurrency = values.get("concurrency", {})
    if concurrency.get("enabled"):
        runs, pools = concurrency.get("runs", {}), concurrency.get("pools", {})
        if "max_concurrent_runs" in instance.get("run_coordinator", {}).get("config", {}) and \
                runs.get("maxConcurrentRuns") is not None:
            raise ValueError("Cannot set both concurrency.runs.maxConcurrentRuns and queuedRunCoordinator's")
        instance["concurrency"] = {k: v for k, v in {"pools": _rename(pools, POOL_KEYS, "concurrency.pools"),
                                                     "runs": _rename(runs, RUNS_KEYS, "concurrency.runs")}.items() if v}
    return instance


def test_the_helm_values_render_to_the_shipped_cluster_instance(values, cluster_yaml):
    assert render_instance(values) == cluster_yaml


def test_an_unknown_helm_launcher_key_fails_to_render(values):
    bad = copy.deepcopy(values)
    bad["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespaces"] = "typo"
    with pytest.raises(ValueError, match="jobNamespaces"):
        render_instance(bad)


# ---------------------------------------------------------------------------- the cluster instance against Dagster
def test_the_cluster_instance_validates_against_dagsters_schemas(tmp_path, cluster_yaml, monkeypatch):
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, custom_class = dagster_instance_config(str(tmp_path))  # the instance schema, concurrency rules included
    assert custom_class is None
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "from-the-secret")  # what the pods get from `movielens-postgresql`
    for name, (module, cls) in STORAGES.items():
        assert (config[name]["module"], config[name]["class"]) == (module, cls)
        storage = _validated(class_from_code_pointer(module, cls), config[name]["config"])
        assert storage["postgres_db"]["password"] == "from-the-secret"
        assert storage["postgres_db"]["scheme"] == "postgresql+psycopg2"  # psycopg2 is the installed driver
    coordinator = config["run_coordinator"]
    _validated(class_from_code_pointer(coordinator["module"], coordinator["class"]), coordinator["config"])
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    assert config["concurrency"]["runs"]["max_concurrent_runs"] > 0


def test_the_run_launcher_config_builds_a_k8s_run_launcher(cluster_yaml, monkeypatch):
    launcher_config = cluster_yaml["run_launcher"]
    assert class_from_code_pointer(launcher_config["module"], launcher_config["class"]) is K8sRunLauncher
    processed = _validated(K8sRunLauncher, launcher_config["config"])
    # no cluster here: skip loading the in-cluster Kubernetes credentials; everything else is the real constructor
    monkeypatch.setattr("dagster_k8s.launcher.load_kubernetes_config", lambda **_: None)
    launcher = K8sRunLauncher.from_config_value(None, processed)
    assert launcher.job_namespace == NAMESPACE and launcher.env_secrets == ["movielens-secrets"]
    assert launcher.fail_pod_on_run_failure and launcher.postgres_password_secret == "movielens-postgresql"
    assert [v["name"] for v in launcher.volumes] == ["lake"]


@pytest.mark.parametrize("bad", [{"job_namespaces": "typo"}, {"load_incluster_config": "yes"},
                                 {"resources": "2Gi"}])
def test_a_launcher_that_cannot_be_configured_fails(cluster_yaml, bad):
    config = {**cluster_yaml["run_launcher"]["config"], **bad}
    result = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), config)
    assert not result.success
    assert any(next(iter(bad)) in e.message for e in result.errors or [])


# ----------------------------------------------------------------------------------------------- the executor
def test_the_k8s_executor_config_validates_and_is_selected_by_the_setting():
    schema = k8s_job_executor.config_schema.config_type
    result = process_config(schema, K8S_EXECUTOR_CONFIG)
    assert result.success, [e.message for e in result.errors or []]
    bad = process_config(schema, {**K8S_EXECUTOR_CONFIG, "max_concurrency": 4})
    assert not bad.success and any("max_concurrency" in e.message for e in bad.errors or [])

    job = build_definitions(load_settings({"MOVIELENS_EXECUTOR": "k8s"})).resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "k8s_job_executor"
    default = build_definitions(load_settings({})).resolve_implicit_global_asset_job_def()
    assert default.executor_def.name == dg.multi_or_in_process_executor.name  # unchanged without the variable


def test_the_default_code_location_does_not_import_dagster_k8s():
    code = ("import sys, movielens_assets.definitions; "
            "print(','.join(m for m in ('dagster_k8s', 'kubernetes') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_the_user_deployment_serves_this_code_location_on_the_k8s_executor(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert deployment["name"] == project["tool"]["dagster"]["code_location_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", project["tool"]["dagster"]["module_name"]]
    env = {k: str(v) for k, v in deployment["env"].items()}
    settings = load_settings(env)  # every variable parses
    assert settings.executor == "k8s" and settings.ranking_shards == int(env["MOVIELENS_RANKING_SHARDS"])
    per_step = {e["name"] for c in COMPUTE.values() for e in c.k8s_config()["container_config"]["env"]}
    assert not per_step & set(env), "set per step by its op tag only (a second value would be ambiguous)"
    assert deployment["volumeMounts"] == values["runLauncher"]["config"]["k8sRunLauncher"]["volumeMounts"]
    assert settings.data_dir.is_relative_to(deployment["volumeMounts"][0]["mountPath"])


# ------------------------------------------------------------------------------------------- per-step pod config
def _step_nodes() -> dict[str, Any]:
    job = build_definitions(load_settings({})).resolve_implicit_global_asset_job_def()
    return {node.name: node for node in job.graph.node_defs}


def test_every_step_pod_config_parses_and_the_torch_steps_are_in_the_gpu_pool():
    import kubernetes.client as k8s

    nodes = _step_nodes()
    tagged = {name for name, node in nodes.items() if K8S_CONFIG_TAG in node.tags}
    assert tagged == set(COMPUTE), "every entry of assets/_compute.py is applied, and nothing else is sized"
    for name in tagged:
        user_config = get_user_defined_k8s_config(nodes[name].tags)  # what the step handler reads
        container = k8s_model_from_dict(k8s.V1Container, {**user_config.container_config, "name": "step"})
        assert container.resources.requests["memory"] == container.resources.limits["memory"], name
        env = {e.name: e.value for e in container.env}
        settings = load_settings(env)  # the op tag speaks settings.py's language
        assert settings.duckdb_threads == COMPUTE[name].cpu
        if user_config.pod_spec_config:
            k8s_model_from_dict(k8s.V1PodSpec, {**user_config.pod_spec_config, "containers": []})
        gpu = container.resources.limits.get(GPU_RESOURCE)
        assert (nodes[name].pool == GPU_POOL) == (name in TORCH_STEPS) == bool(gpu), name
        assert (settings.device == "cuda") == (name in TORCH_STEPS), name
    assert {node.pool for node in nodes.values()} - {None} == {GPU_POOL}  # `default_limit` caps only the gpu pool
    graph = build_definitions(load_settings({})).resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys() if GPU_POOL in graph.get(k).pools} == TORCH_STEPS


def test_a_bad_op_tag_fails_to_parse():
    with pytest.raises(Exception, match="resourcez"):
        UserDefinedDagsterK8sConfig.from_dict({"container_config": {"resourcez": {"limits": {"cpu": "1"}}}})
    with pytest.raises(dg.DagsterInvalidConfigError):
        get_user_defined_k8s_config({K8S_CONFIG_TAG: '{"container": {}}'})


def _step_job(name: str, values: dict[str, Any], cluster_yaml: dict[str, Any], monkeypatch) -> dict[str, Any]:
    """The Kubernetes Job of step `name`, built as dagster-k8s 0.29.27's K8sStepHandler builds it: the run's container
    context (the launcher + the code location's, includeConfigInLaunchedRuns), then the executor's, then the step's
    op tag, then `construct_dagster_k8s_job` — as a plain dict."""
    import kubernetes.client as k8s
    from dagster._core.storage.dagster_run import DagsterRun

    monkeypatch.setattr("dagster_k8s.launcher.load_kubernetes_config", lambda **_: None)
    launcher_config = _validated(K8sRunLauncher, cluster_yaml["run_launcher"]["config"])
    launcher = K8sRunLauncher.from_config_value(None, launcher_config)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    location = K8sContainerContext.create_from_config({"k8s": {
        "env_vars": [f"{k}={v}" for k, v in deployment["env"].items()],
        "env_secrets": [s["name"] for s in deployment["envSecrets"]],
        "volumes": deployment["volumes"], "volume_mounts": deployment["volumeMounts"]}})
    run = K8sContainerContext.create_for_run(DagsterRun(job_name="__ASSET_JOB", run_id="0" * 36), launcher,
                                             include_run_tags=False).merge(location)
    executor_config = _validated_executor()
    executor = K8sContainerContext(labels=executor_config.get("labels"), run_k8s_config=UserDefinedDagsterK8sConfig
                                   .from_dict(executor_config.get("step_k8s_config", {})))
    step = K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(_step_nodes()[name].tags))
    context = run.merge(executor).merge(step)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config("registry.example.com/movielens-rec:0.1.0", launcher),
        args=["dagster", "api", "execute_step"], job_name=f"dagster-step-{name.replace('_', '-')}",
        component="step_worker", user_defined_k8s_config=context.run_k8s_config)
    return k8s.ApiClient().sanitize_for_serialization(job)


def _validated_executor() -> dict[str, Any]:
    result = process_config(k8s_job_executor.config_schema.config_type, K8S_EXECUTOR_CONFIG)
    assert result.success
    return result.value


def test_a_gpu_step_and_a_default_step_as_the_executor_would_launch_them(values, cluster_yaml, monkeypatch):
    gpu_job = _step_job("two_tower_recall", values, cluster_yaml, monkeypatch)
    pod = gpu_job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {"memory": "12Gi", GPU_RESOURCE: "1"}
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "12Gi"}  # the op tag over the step default
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MOVIELENS_DEVICE"]["value"] == "cuda" and env["MOVIELENS_EXECUTOR"]["value"] == "k8s"
    assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "movielens-postgresql"
    assert [v["name"] for v in pod["volumes"]] == ["lake"]  # launcher + code location: one volume, deduplicated
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/lake"]
    assert [e["secretRef"]["name"] for e in container["envFrom"]] == ["movielens-secrets"]
    assert gpu_job["metadata"]["labels"]["app.kubernetes.io/part-of"] == "movielens-rec"

    default = _step_job("movielens_raw", values, cluster_yaml, monkeypatch)["spec"]["template"]["spec"]
    (container,) = default["containers"]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    assert "tolerations" not in default or not default["tolerations"]


# ----------------------------------------------------------------------------------------- locally: pools are free
def test_a_pool_without_a_limit_does_not_hold_a_step_locally(tmp_path):
    """The local instance (config/dagster.yaml) sets no pool limit, so a `gpu` step runs at once: what `make demo`
    and the tests rely on."""
    local = yaml.safe_load((REPO_ROOT / "config" / "dagster.yaml").read_text())
    assert "pools" not in local.get("concurrency", {})

    @dg.asset(pool=GPU_POOL)
    def gpu_step() -> int:
        return 1

    with dg.instance_for_test(overrides=local, temp_dir=str(tmp_path)) as instance:
        assert instance.event_log_storage.get_pool_limits() == []
        result = dg.materialize([gpu_step], instance=instance)
        assert result.success and instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 0

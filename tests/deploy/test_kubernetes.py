"""The Kubernetes manifests: kinds, references between them, host access, flags and ports.

No cluster runs here and kubectl validates only against one. Every manifest goes through
`kubernetes-validate --strict` (the API's OpenAPI schemas of a named Kubernetes release,
offline); the references a server would resolve (volumes, ConfigMap/Secret keys, selectors,
probe ports) are checked by reading the manifests; `kubectl kustomize` builds them when
kubectl is installed, and the ConfigMap's fleetpulse.yaml goes through the real loader with
the Secret mounted as files.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetpulse.app.config import load_config
from tests.deploy import tools
from tests.deploy.cli import API_PORT, DEPLOY, EXPORTER_PORT, invocation, unknown_flags

KUBE = DEPLOY / "kubernetes"
NAMESPACE = "fleetpulse"
CONFIG_MOUNT = "/etc/fleetpulse/config"
SECRETS_MOUNT = "/etc/fleetpulse/secrets"
# the Kubernetes release the manifests are validated for (kubernetes-validate ships its
# schemas; `kubernetes-validate --help` names the newest one it has)
KUBERNETES_VERSION = "1.37.0"


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBE.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path
            doc["_file"] = path.name
            docs.append(doc)
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in manifests():
        if doc["kind"] in ("DaemonSet", "Deployment", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def container(spec: dict[str, Any]) -> dict[str, Any]:
    (only,) = spec["containers"]
    assert isinstance(only, dict)
    return only


def test_manifests_hold_every_part_in_one_namespace() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in manifests())
    assert kinds == [
        ("ConfigMap", "fleetpulse-config"),
        ("DaemonSet", "fleetpulse-exporter"),
        ("Deployment", "fleetpulse-alerting"),
        ("Deployment", "fleetpulse-collector"),
        ("Job", "fleetpulse-influx-setup"),
        ("Namespace", NAMESPACE),
        ("PersistentVolumeClaim", "fleetpulse-alerting-data"),
        ("PersistentVolumeClaim", "fleetpulse-collector-data"),
        ("Secret", "fleetpulse-secrets"),
        ("Service", "fleetpulse-api"),
    ]
    for doc in manifests():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["_file"]


def test_kustomization_lists_every_manifest_file() -> None:
    """Every manifest, once, and nothing else: `kubectl apply -k` applies exactly those."""
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    files = sorted(p.name for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files


def manifest_files() -> list[str]:
    return [str(p) for p in sorted(KUBE.glob("*.yaml")) if p.name != "kustomization.yaml"]


def test_manifests_validate_strictly_against_the_named_kubernetes_version() -> None:
    """The API server's own OpenAPI schemas (shipped inside kubernetes-validate), strict:
    a field the API does not know is an error, as `kubectl apply --validate=strict` says."""
    done = tools.run(
        "kubernetes-validate", ["--strict", "-k", KUBERNETES_VERSION, *manifest_files()]
    )
    assert done.returncode == 0, tools.report(done)
    # a kind without a schema is only a warning: every resource must really be checked
    output = done.stdout + done.stderr
    assert "WARN" not in output, tools.report(done)
    checked = output.count("passed for resource")
    assert checked == len(manifests()), tools.report(done)


def test_strict_validation_refuses_a_misspelt_field(tmp_path: Path) -> None:
    text = (KUBE / "exporter-daemonset.yaml").read_text()
    assert "hostPID: true" in text
    broken = tmp_path / "exporter-daemonset.yaml"
    broken.write_text(text.replace("hostPID: true", "hostPid: true"))
    done = tools.run("kubernetes-validate", ["--strict", "-k", KUBERNETES_VERSION, str(broken)])
    assert done.returncode != 0 and "hostPid" in done.stdout + done.stderr, tools.report(done)


def test_kustomize_builds_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        # an optional cross-check: the reads above do not need it, so this is a plain skip
        pytest.skip("kubectl is not installed; `kubectl kustomize` cross-check not run")
    done = subprocess.run(
        [kubectl, "kustomize", str(KUBE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    built = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert len(built) == len(manifests())


def test_workloads_select_their_own_pods() -> None:
    for kind in ("DaemonSet", "Deployment"):
        for name, doc in by_kind(kind).items():
            selector = doc["spec"]["selector"]["matchLabels"]
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), name
    service = by_kind("Service")["fleetpulse-api"]
    collector = by_kind("Deployment")["fleetpulse-collector"]
    assert service["spec"]["selector"].items() <= (
        collector["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"][0]["port"] == API_PORT


def test_every_reference_resolves() -> None:
    config_maps, secrets, claims = (
        by_kind("ConfigMap"),
        by_kind("Secret"),
        by_kind("PersistentVolumeClaim"),
    )
    for where, spec in pod_specs():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for mount in container(spec).get("volumeMounts", []):
            assert mount["name"] in volumes, f"{where}: mount {mount['name']} has no volume"
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, where
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, where
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, where
        for env in container(spec).get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]]["stringData"], f"{where}: {ref}"


def test_commands_use_known_flags_and_the_config_mount() -> None:
    expected = {
        "DaemonSet/fleetpulse-exporter": ("exporter",),
        "Deployment/fleetpulse-collector": ("collector",),
        "Deployment/fleetpulse-alerting": ("alerting",),
        "Job/fleetpulse-influx-setup": ("influx", "setup"),
    }
    seen = {}
    for where, spec in pod_specs():
        call = invocation(where, container(spec)["args"])
        assert not unknown_flags(call), f"{where}: {unknown_flags(call)}"
        if call.words != ("exporter",):
            assert call.value("-c") == f"{CONFIG_MOUNT}/fleetpulse.yaml", where
        seen[where] = call.words
    assert seen == expected


def test_exporter_daemonset_sees_the_node() -> None:
    exporter = by_kind("DaemonSet")["fleetpulse-exporter"]
    spec = exporter["spec"]["template"]["spec"]
    assert spec["hostPID"] is True and spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    box = container(spec)
    assert invocation("exporter", box["args"]).listen_port() == EXPORTER_PORT
    assert box["ports"][0]["containerPort"] == EXPORTER_PORT
    assert box["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": EXPORTER_PORT}
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in box["volumeMounts"]}
    socket = mounts["/var/run/docker.sock"]
    assert socket["readOnly"] is True
    assert volumes[socket["name"]]["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}
    host = mounts["/host"]
    assert host["readOnly"] is True and volumes[host["name"]]["hostPath"]["path"] == "/"
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_collector_serves_the_api_port_with_probes() -> None:
    spec = by_kind("Deployment")["fleetpulse-collector"]["spec"]["template"]["spec"]
    box = container(spec)
    assert box["ports"][0]["containerPort"] == API_PORT
    assert box["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": API_PORT}


def test_configmap_config_loads_with_the_secret_as_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap and Secret laid out as the pods see them, read by the real loader."""
    config_map = by_kind("ConfigMap")["fleetpulse-config"]["data"]
    secret = by_kind("Secret")["fleetpulse-secrets"]["stringData"]
    config_dir, secrets_dir = tmp_path / "config", tmp_path / "secrets"
    config_dir.mkdir()
    secrets_dir.mkdir()
    for key, value in secret.items():
        (secrets_dir / key).write_text(value)
    for key, value in config_map.items():
        (config_dir / key).write_text(value.replace(SECRETS_MOUNT, str(secrets_dir)))
    monkeypatch.setenv("FLEETPULSE_NOTIFY_URL", secret["notify-url"])
    with warnings.catch_warnings():
        # Apprise's mail plugin imports the deprecated stdlib imghdr (Python 3.11/3.12)
        warnings.simplefilter("ignore", DeprecationWarning)
        config = load_config(config_dir / "fleetpulse.yaml")
    assert config.storage.backend == "influxdb"
    assert config.storage.influxdb.token == secret["influx-token"]
    assert config.api.token == secret["api-token"]
    assert (config.api.listen.host, config.api.listen.port) == ("0.0.0.0", API_PORT)
    assert config.scrape.file_sd == (str(config_dir / "targets.yaml"),)
    targets = yaml.safe_load(config_map["targets.yaml"])
    assert all(t["url"].endswith(f":{EXPORTER_PORT}/metrics") for t in targets)

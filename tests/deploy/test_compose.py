"""The compose files: services, images, ports, mounts, variables and the config they mount.

No image can be pulled on this machine, so `docker compose up` cannot run here (and the
Debian engine has no compose plugin); these checks read the files the way compose does and
feed the mounted config to the real loader.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.file_sd import read_targets_file
from fleetpulse.app.config import load_config
from tests.deploy import compose, tools
from tests.deploy.cli import (
    API_PORT,
    DEPLOY,
    EXPORTER_PORT,
    REPO,
    default_api_port,
    invocation,
    unknown_flags,
)

STACK = "docker-compose.yml"
AGENT = "docker-compose.agent.yml"
FLEETPULSE_SERVICES = {"influx-setup", "collector", "alerting", "exporter"}
CONTAINER_CONFIG = "/etc/fleetpulse/fleetpulse.yaml"


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return compose.load(STACK)


@pytest.fixture(scope="module")
def services(stack: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = stack["services"]
    return services


def warm_up_apprise_mail() -> None:
    """Load Apprise's mail plugin once with its import-time warning silenced.

    Checking a mailtos:// URL imports `email.mime.image`, which imports the stdlib `imghdr`
    that warns DeprecationWarning on Python 3.11/3.12; under filterwarnings=error that
    warning would fail this test for a reason outside the deploy files.
    """
    from alerting.settings import url_problem

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        url_problem("mailtos://user:secret@example.com")


def provider_path() -> str:
    provisioning = REPO / "grafana" / "provisioning" / "dashboards"
    files = sorted(provisioning.glob("*.y*ml")) if provisioning.is_dir() else []
    if not files:
        pytest.skip(f"{provisioning} has no provider file yet (issue #6 writes it)")
    paths = {
        provider["options"]["path"]
        for f in files
        for provider in (yaml.safe_load(f.read_text()) or {}).get("providers", [])
        if provider.get("type", "file") == "file"
    }
    assert len(paths) == 1, f"expected one file provider path in {provisioning}, got {paths}"
    path: str = paths.pop()
    return path


def test_stack_has_every_service_of_the_design(services: dict[str, Any]) -> None:
    assert set(services) == {
        "influxdb",
        "influx-setup",
        "collector",
        "alerting",
        "exporter",
        "grafana",
        "renderer",
    }


def test_images_are_pinned_and_fleetpulse_ones_build_from_the_dockerfile(
    services: dict[str, Any],
) -> None:
    assert services["influxdb"]["image"] == "influxdb:2.7"
    assert re.fullmatch(r"grafana/grafana:11\.\d+\.\d+", services["grafana"]["image"])
    assert re.fullmatch(
        r"grafana/grafana-image-renderer:\d+\.\d+\.\d+", services["renderer"]["image"]
    )
    for name in FLEETPULSE_SERVICES:
        service = services[name]
        assert service["image"] == "${FLEETPULSE_IMAGE:-fleetpulse:0.1.0}", name
        context = (DEPLOY / service["build"]["context"]).resolve()
        assert context == REPO, name
        assert (context / service["build"]["dockerfile"]).is_file(), name


def test_fleetpulse_commands_use_real_flags_and_the_default_ports(
    services: dict[str, Any],
) -> None:
    expected = {
        "influx-setup": ("influx", "setup"),
        "collector": ("collector",),
        "alerting": ("alerting",),
        "exporter": ("exporter",),
    }
    for name, words in expected.items():
        call = invocation(f"{STACK}:{name}", compose.command(services[name]))
        assert call.words == words
        assert not unknown_flags(call), f"{name}: {unknown_flags(call)}"
        if name != "exporter":
            assert call.value("-c") == CONTAINER_CONFIG, name
    assert invocation("exporter", compose.command(services["exporter"])).listen_port() == (
        EXPORTER_PORT
    )
    assert default_api_port() == API_PORT
    assert compose.published_ports(services["collector"]) == [API_PORT]
    assert compose.published_ports(services["grafana"]) == [3000]
    assert compose.published_ports(services["influxdb"]) == [8086]
    # a published API must not be open to the network by default
    assert all(str(p).startswith("127.0.0.1:") for p in services["collector"]["ports"])


def test_influxdb_is_initialised_with_org_bucket_and_token_from_env(
    services: dict[str, Any],
) -> None:
    env = services["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    # fixed: the provisioned datasource and the dashboards' Flux name them
    assert env["DOCKER_INFLUXDB_INIT_ORG"] == "fleetpulse"
    assert env["DOCKER_INFLUXDB_INIT_BUCKET"] == "fleetpulse"
    assert env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"].startswith("${INFLUX_TOKEN:?")
    assert "/var/lib/influxdb2" in compose.mounts(services["influxdb"])


def test_setup_runs_once_before_collector_and_alerting(services: dict[str, Any]) -> None:
    setup = services["influx-setup"]
    assert setup["restart"] == "no"
    assert setup["depends_on"]["influxdb"]["condition"] == "service_healthy"
    for name in ("collector", "alerting"):
        condition = services[name]["depends_on"]["influx-setup"]["condition"]
        assert condition == "service_completed_successfully", name


def test_named_volumes_keep_data_across_restarts(
    stack: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(stack["volumes"])
    used = {
        source
        for service in services.values()
        for source, _ in compose.mounts(service).values()
        if not source.startswith((".", "/"))
    }
    assert used == declared
    for name, target in (
        ("influxdb", "/var/lib/influxdb2"),
        ("collector", "/data"),
        ("alerting", "/data"),
        ("grafana", "/var/lib/grafana"),
    ):
        assert compose.mounts(services[name])[target][0] in declared, name


def test_bind_mount_sources_exist_in_the_repository(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, (source, _) in compose.mounts(service).items():
            if source.startswith("."):
                if source.startswith("../grafana") and not (REPO / "grafana/provisioning").exists():
                    continue  # checked by the provisioning test, which says why it skips
                assert (DEPLOY / source).exists(), f"{name}: {source} -> {target}"


def test_exporter_runs_in_host_namespaces_with_read_only_mounts(services: dict[str, Any]) -> None:
    for where, service in (
        (STACK, services["exporter"]),
        (AGENT, compose.load(AGENT)["services"]["exporter"]),
    ):
        assert service["pid"] == "host", where
        assert service["network_mode"] == "host", where
        mounts = compose.mounts(service)
        assert mounts["/var/run/docker.sock"] == ("/var/run/docker.sock", "ro"), where
        assert mounts["/host"] == ("/", "ro,rslave"), where
        assert all("ro" in options.split(",") for _, options in mounts.values()), where
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], where
        call = invocation(where, compose.command(service))
        assert call.listen_port() == EXPORTER_PORT and not unknown_flags(call), where
        assert service["environment"]["FLEETPULSE_HEALTHCHECK_URL"].endswith(
            f":{EXPORTER_PORT}/healthz"
        )


def test_agent_compose_runs_only_the_exporter() -> None:
    agent = compose.load(AGENT)
    assert set(agent["services"]) == {"exporter"}
    assert agent["services"]["exporter"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_compose_files_follow_the_compose_specification() -> None:
    """The Compose Specification's own JSON schema (vendored in check-jsonschema)."""
    done = tools.run(
        "check-jsonschema",
        ["--builtin-schema", "vendor.compose-spec", str(DEPLOY / STACK), str(DEPLOY / AGENT)],
    )
    assert done.returncode == 0, tools.report(done)


def test_compose_schema_check_refuses_a_misspelt_key(tmp_path: Path) -> None:
    """The check above can fail: a key compose does not know is an error."""
    broken = tmp_path / AGENT
    text = (DEPLOY / AGENT).read_text()
    assert "    read_only: true\n" in text
    broken.write_text(text.replace("    read_only: true\n", "    readonly: true\n"))
    done = tools.run("check-jsonschema", ["--builtin-schema", "vendor.compose-spec", str(broken)])
    assert done.returncode != 0 and "readonly" in done.stdout + done.stderr, tools.report(done)


def test_every_compose_variable_is_documented_in_env_example() -> None:
    documented = compose.env_file(DEPLOY / ".env.example")
    used: set[str] = set()
    for name in (STACK, AGENT):
        tree = compose.load(name)
        used |= compose.variables(tree)
        missing = compose.variables(tree) - set(documented)
        assert not missing, f"{name} uses {sorted(missing)}, not in deploy/.env.example"
        # the example must be a working .env: every required variable has a value
        compose.interpolate_tree(tree, documented)
        assert all(documented[v] for v in compose.required_variables(tree)), name
    unused = set(documented) - used
    assert not unused, f"deploy/.env.example lists {sorted(unused)}, which no compose file reads"


def test_a_missing_secret_stops_compose_with_its_name() -> None:
    env = compose.env_file(DEPLOY / ".env.example")
    del env["INFLUX_TOKEN"]
    with pytest.raises(KeyError, match="INFLUX_TOKEN"):
        compose.interpolate_tree(compose.load(STACK), env)


def test_mounted_config_loads_with_the_env_compose_passes(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/config/fleetpulse.yaml through the real loader, with the collector's env."""
    warm_up_apprise_mail()
    env = compose.env_file(DEPLOY / ".env.example")
    service_env = compose.interpolate_tree(compose.load(STACK), env)["services"]["collector"][
        "environment"
    ]
    for key in list(compose.env_file(DEPLOY / ".env.example")):
        monkeypatch.delenv(key, raising=False)
    for key, value in service_env.items():
        monkeypatch.setenv(key, str(value))
    host_path = DEPLOY / "config" / "fleetpulse.yaml"
    assert compose.mounts(services["collector"])[CONTAINER_CONFIG][0] == "./config/fleetpulse.yaml"
    config = load_config(host_path)
    assert config.storage.backend == "influxdb"
    assert config.storage.influxdb.url == "http://influxdb:8086"  # the service name
    assert config.storage.influxdb.org == "fleetpulse"
    # the API must listen beyond the container's loopback to be published
    assert (config.api.listen.host, config.api.listen.port) == ("0.0.0.0", API_PORT)
    assert config.api.token == env["FLEETPULSE_API_TOKEN"]
    # the rules and the file_sd folder resolve to what compose mounts
    mounted = compose.mounts(services["collector"])
    base = host_path.parent
    for path in (*config.alerting.rules, *(Path(p).parent for p in config.scrape.file_sd)):
        target = "/etc/fleetpulse/" + str(Path(path).relative_to(base))
        assert target.rstrip("/") in mounted, f"{path} is not mounted ({target})"
    assert [t.url for t in config.scrape.targets] == ["http://host.docker.internal:9184/metrics"]
    assert "host.docker.internal:host-gateway" in services["collector"]["extra_hosts"]


def test_target_file_example_is_valid_file_sd(tmp_path: Path) -> None:
    sample = DEPLOY / "config" / "targets" / "example.yaml.sample"
    copy = tmp_path / "example.yaml"
    copy.write_text(sample.read_text())
    urls = [t.url for t in read_targets_file(copy, tmp_path, 15.0)]
    assert "http://web-1.example.com:9184/metrics" in urls
    assert "http://web-2.example.com:9184/metrics" in urls


def test_grafana_mounts_provisioning_where_the_provider_reads(services: dict[str, Any]) -> None:
    if not (REPO / "grafana" / "provisioning").is_dir():
        pytest.skip("grafana/provisioning does not exist yet (issue #6 writes it)")
    grafana = services["grafana"]
    mounts = compose.mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == ("../grafana/provisioning", "ro")
    path = provider_path()
    assert mounts[path] == ("../grafana/dashboards", "ro"), f"provider reads {path}"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/")
    assert (REPO / "grafana" / "dashboards" / home[len(path) + 1 :]).is_file(), home
    assert "overview" in Path(home).name


def test_grafana_datasource_variables_are_set_in_its_environment(
    services: dict[str, Any],
) -> None:
    datasources = REPO / "grafana" / "provisioning" / "datasources"
    files = sorted(datasources.glob("*.y*ml")) if datasources.is_dir() else []
    if not files:
        pytest.skip(f"{datasources} has no datasource yet (issue #6 writes it)")
    grafana_env = services["grafana"]["environment"]
    for f in files:
        tree = yaml.safe_load(f.read_text())
        # Grafana expands $VAR and ${VAR} in provisioning files from its environment
        for name in compose.variables(tree):
            assert name in grafana_env, f"{f.name} reads ${name}, not set for grafana"
        influx_env = services["influxdb"]["environment"]
        for source in tree.get("datasources", []):
            if source.get("type") == "influxdb":
                assert source["url"] == "http://influxdb:8086"
                assert source["jsonData"]["organization"] == influx_env["DOCKER_INFLUXDB_INIT_ORG"]
                bucket = influx_env["DOCKER_INFLUXDB_INIT_BUCKET"]
                assert source["jsonData"]["defaultBucket"] == bucket


def test_renderer_is_wired_to_grafana(services: dict[str, Any]) -> None:
    env = services["grafana"]["environment"]
    assert env["GF_RENDERING_SERVER_URL"] == "http://renderer:8081/render"
    assert env["GF_RENDERING_CALLBACK_URL"] == "http://grafana:3000/"
    assert env["GF_RENDERING_RENDERER_TOKEN"] == services["renderer"]["environment"]["AUTH_TOKEN"]

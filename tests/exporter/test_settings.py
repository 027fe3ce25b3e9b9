"""The `exporter:` config section and the `fleetpulse exporter` flags that override it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from exporter.flags import add_exporter_arguments, settings_from_args
from exporter.settings import DEFAULT_EXCLUDED_INTERFACES, ExporterSettings
from fleetpulse.app.config import load_config
from fleetpulse.core.errors import ConfigError
from fleetpulse.core.listen import Listen


def load(tmp_path: Path, text: str) -> ExporterSettings:
    path = tmp_path / "fleetpulse.yaml"
    path.write_text(text)
    return load_config(path).exporter


def test_defaults_serve_everything_on_9184_every_15s() -> None:
    settings = ExporterSettings()
    assert settings.listen == Listen("0.0.0.0", 9184)
    assert all(settings.source(n).enabled for n in ("host", "disk", "network", "containers"))
    assert settings.interval_of("containers") == 15.0
    assert settings.timeout_of("host") == 12.0
    assert not settings.interfaces.keeps("lo") and settings.interfaces.keeps("eth0")
    assert settings.tls is None and not settings.auth.enabled


def test_section_sets_sources_filters_auth_and_tls(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2\n")
    settings = load(
        tmp_path,
        """
exporter:
  listen: 127.0.0.1:9300
  interval: 30s
  host: {interval: 5s, timeout: 2s, temperatures: false}
  disk: {exclude_fstypes: [tmpfs], exclude_mountpoints: ["/boot*"], exclude_devices: "^sd"}
  network: {include: ["eth*", "en*"], exclude: []}
  containers:
    enabled: false
    include: ["game-*"]
    exclude: ["*-sidecar"]
    docker_host: tcp://10.0.0.5:2375
    request_timeout: 3s
    concurrency: 8
  auth: {basic_auth: {username: prom, password_file: pw}}
  tls: {cert_file: tls/cert.pem, key_file: /etc/k.pem}
""".replace("password_file: pw", f"password_file: {tmp_path / 'pw'}"),
    )
    assert settings.listen == Listen("127.0.0.1", 9300) and settings.listen_set
    assert (settings.interval_of("host"), settings.timeout_of("host")) == (5.0, 2.0)
    assert settings.interval_of("disk") == 30.0 and not settings.temperatures
    assert settings.disk_filter.excluded_fstypes == ("tmpfs",)
    assert not settings.disk_filter.keeps_mount("ext4", "/boot/efi")
    assert settings.disk_filter.excluded_devices == "^sd"
    assert settings.interfaces.keeps("lo") is False and settings.interfaces.keeps("eth1")
    assert settings.interfaces.exclude == ()
    assert not settings.containers.enabled
    names = settings.container_names
    assert names.keeps("game-1") and not names.keeps("game-sidecar") and not names.keeps("db")
    assert settings.docker.host == "tcp://10.0.0.5:2375" and settings.docker.concurrency == 8
    assert (settings.auth.username, settings.auth.password) == ("prom", "hunter2")
    assert settings.tls is not None
    assert settings.tls.cert_file == tmp_path.resolve() / "tls" / "cert.pem"
    assert settings.tls.key_file == Path("/etc/k.pem")


def test_mistakes_are_reported_with_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            tmp_path,
            """exporter:
  hosts: {}
  network: {interval: 5s, timeout: 10s}
  disk: {exclude_devices: "("}
  containers: {concurrency: 0,
               docker_host: "ssh://admin@box"}
  auth: {bearer_token_file: /nonexistent/token}
  tls: {cert_file: c.pem}
""",
        )
    text = str(caught.value)
    for expected in (
        ":2: exporter.hosts: unknown key",
        ":3: exporter.network.timeout: expected a timeout no longer than the interval",
        ":4: exporter.disk.exclude_devices: expected a regular expression",
        ":5: exporter.containers.concurrency:",
        ":6: exporter.containers.docker_host: ssh://admin@box: the exporter does not reach "
        "engines over ssh",
        ":7: exporter.auth.bearer_token_file: cannot read the secret file",
        "exporter.tls.key_file: required",
    ):
        assert expected in text, text


@pytest.mark.parametrize(
    ("section", "timeout"),
    [("{interval: 500ms}", 0.5), ("{interval: 1s}", 1.0), ("{interval: 10s}", 8.0), ("{}", 12.0)],
)
def test_an_unset_source_timeout_is_80_percent_of_its_interval_and_never_longer(
    tmp_path: Path, section: str, timeout: float
) -> None:
    settings = load(tmp_path, f"exporter:\n  host: {section}\n")
    assert settings.timeout_of("host") == timeout


def test_a_source_timeout_longer_than_the_interval_it_inherits_names_both(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "exporter:\n  interval: 10s\n  host: {timeout: 12s}\n")
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'fleetpulse.yaml'}:3: exporter.host.timeout: expected a timeout no longer "
        "than the interval (exporter.interval: 10s, line 2)"
    ]
    settings = load(tmp_path, "exporter:\n  interval: 10s\n  host: {interval: 20s, timeout: 12s}\n")
    assert settings.timeout_of("host") == 12.0


def test_an_interval_flag_shorter_than_a_configured_source_timeout_is_refused(
    tmp_path: Path,
) -> None:
    settings = load(
        tmp_path, "exporter:\n  host: {timeout: 8s}\n  disk: {interval: 1m, timeout: 30s}\n"
    )
    assert settings_from_args(settings, parse_flags("--interval", "10s")).interval == 10.0
    with pytest.raises(ConfigError) as caught:
        settings_from_args(settings, parse_flags("--interval", "5s"))
    assert [str(p) for p in caught.value.problems] == [
        "command line: --interval: expected at least exporter.host.timeout (8s), or give host an "
        "interval of its own"
    ]


def parse_flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_exporter_arguments(parser)
    return parser.parse_args(argv)


def test_flags_override_the_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    args = parse_flags(
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "5s",
        "--disable",
        "containers",
        "--disable",
        "disk",
        "--container-exclude",
        "tmp-*",
        "--interface-include",
        "eth*",
        "--docker-host",
        "unix:///run/other.sock",
        "--bearer-token-file",
        str(tmp_path / "token"),
        "--tls-cert-file",
        "c.pem",
        "--tls-key-file",
        "k.pem",
    )
    settings = settings_from_args(ExporterSettings(), args)
    assert settings.listen == Listen("127.0.0.1", 0) and settings.interval == 5.0
    assert not settings.containers.enabled and not settings.disk.enabled
    assert settings.host.enabled and settings.network.enabled
    assert not settings.container_names.keeps("tmp-1")
    assert settings.interfaces.include == ("eth*",)
    assert settings.interfaces.exclude == DEFAULT_EXCLUDED_INTERFACES
    assert settings.docker.host == "unix:///run/other.sock"
    assert settings.auth.bearer_token == "tok"
    assert settings.tls is not None and settings.tls.key_file == Path("k.pem")


@pytest.mark.parametrize(
    "argv",
    [
        ("--basic-auth-username", "prom"),
        ("--tls-cert-file", "c.pem"),
        ("--bearer-token-file", "/nonexistent/token"),
    ],
)
def test_incomplete_or_unreadable_secret_flags_are_config_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError):
        settings_from_args(ExporterSettings(), parse_flags(*argv))


@pytest.mark.parametrize(
    "argv", [("--interval", "15"), ("--docker-host", "ssh://admin@box"), ("--docker-host", "x")]
)
def test_bad_interval_or_engine_address_flag_is_a_usage_error(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_flags(*argv)
    assert f"argument {argv[0]}" in capsys.readouterr().err

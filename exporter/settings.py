"""The `exporter:` section of fleetpulse.yaml, owned by the exporter.

```yaml
exporter:
  listen: 0.0.0.0:9184
  interval: 15s                  # default for every source
  host:       {enabled: true, interval: 15s, timeout: 12s}
  disk:       {exclude_fstypes: [...], exclude_mountpoints: [...], exclude_devices: REGEX}
  network:    {include: [eth*], exclude: [lo, lo0, Loopback*]}
  containers: {include: [web-*], exclude: [], docker_host: unix:///..., request_timeout: 5s,
               concurrency: 32}
  auth: {bearer_token_file: /etc/fleetpulse/token}   # or basic_auth: {username, password_file}
  tls:  {cert_file: exporter.crt, key_file: exporter.key}
```
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from exporter.dockerapi import EngineAddressError, check_address
from fleetpulse.core.httpauth import AuthSettings
from fleetpulse.core.listen import Listen, listen_value
from fleetpulse.core.yamlfile import Interval, MapView

SOURCE_NAMES = ("host", "disk", "network", "containers")

DEFAULT_EXCLUDED_FSTYPES = (
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.lxcfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "nfsd",
    "iso9660",
)
DEFAULT_EXCLUDED_MOUNTS = ("/proc/*", "/sys/*", "/dev/*", "/run/*", "/snap/*", "/var/lib/docker/*")
DEFAULT_EXCLUDED_DEVICES = r"^(loop|ram|zram|fd|sr)\d+$"
# Linux names its loopback "lo", macOS "lo0", Windows "Loopback Pseudo-Interface 1".
DEFAULT_EXCLUDED_INTERFACES = ("lo", "lo0", "Loopback*")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True, slots=True)
class NameFilter:
    """Include/exclude globs on a name; an empty include keeps everything not excluded."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def keeps(self, name: str) -> bool:
        if self.include and not _matches(name, self.include):
            return False
        return not _matches(name, self.exclude)


@dataclass(frozen=True, slots=True)
class DiskFilter:
    excluded_fstypes: tuple[str, ...] = DEFAULT_EXCLUDED_FSTYPES
    excluded_mountpoints: tuple[str, ...] = DEFAULT_EXCLUDED_MOUNTS  # globs
    excluded_devices: str = DEFAULT_EXCLUDED_DEVICES  # regex on the I/O device name

    def keeps_mount(self, fstype: str, mountpoint: str) -> bool:
        if fstype in self.excluded_fstypes:
            return False
        return not any(fnmatch.fnmatch(mountpoint, pat) for pat in self.excluded_mountpoints)


@dataclass(frozen=True, slots=True)
class SourceSettings:
    enabled: bool = True
    interval: float | None = None  # None: exporter.interval
    timeout: float | None = None  # None: 80% of the interval, at least 1s, at most the interval


@dataclass(frozen=True, slots=True)
class DockerSettings:
    host: str = ""  # "": DOCKER_HOST, else the platform's default socket or named pipe
    request_timeout: float = 5.0  # per engine call; a stats call takes ~1 s on Docker 20.10
    concurrency: int = 32  # most stats calls in flight at once (threads made only as needed)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert_file: Path
    key_file: Path
    # where each file was named, (file, line, key), so an unreadable one is reported there
    cert_origin: tuple[str, int, str] = ("command line", 0, "--tls-cert-file")
    key_origin: tuple[str, int, str] = ("command line", 0, "--tls-key-file")


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    listen: Listen = Listen("0.0.0.0", 9184)
    listen_set: bool = False  # `fleetpulse up` binds to 127.0.0.1 unless the file set it
    interval: float = 15.0
    host: SourceSettings = SourceSettings()
    disk: SourceSettings = SourceSettings()
    network: SourceSettings = SourceSettings()
    containers: SourceSettings = SourceSettings()
    temperatures: bool = True
    disk_filter: DiskFilter = DiskFilter()
    interfaces: NameFilter = NameFilter((), DEFAULT_EXCLUDED_INTERFACES)
    container_names: NameFilter = NameFilter()
    docker: DockerSettings = DockerSettings()
    auth: AuthSettings = AuthSettings()  # noqa: RUF009 - frozen, so sharing it is safe
    tls: TlsSettings | None = None

    def source(self, name: str) -> SourceSettings:
        settings: SourceSettings = getattr(self, name)
        return settings

    def interval_of(self, name: str) -> float:
        return self.source(name).interval or self.interval

    def timeout_of(self, name: str) -> float:
        interval = self.interval_of(name)
        return self.source(name).timeout or min(max(1.0, interval * 0.8), interval)


SOURCE_KEYS = {"enabled", "interval", "timeout"}


def _source(view: MapView, extra: set[str], exporter_interval: Interval) -> SourceSettings:
    view.check_keys(SOURCE_KEYS | extra)
    interval = view.interval("interval", exporter_interval)
    return SourceSettings(
        view.flag("enabled", True),
        interval.seconds if "interval" in view else None,
        view.timeout("timeout", interval),
    )


def _patterns(view: MapView, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(view.text_list(key)) if key in view else default


def _regex(view: MapView, key: str, default: str) -> str:
    text = view.text(key, default)
    try:
        re.compile(text)
    except re.error as exc:
        view.reader.problem(
            view.line_of(key), view.key_path(key), f"expected a regular expression; {exc}"
        )
        return default
    return text


def _docker_host(containers: MapView) -> str:
    address = containers.text("docker_host")
    if address:
        try:
            check_address(address)
        except EngineAddressError as exc:
            containers.reader.problem(
                containers.line_of("docker_host"), containers.key_path("docker_host"), str(exc)
            )
    return address


def _auth(view: MapView) -> AuthSettings:
    view.check_keys({"bearer_token", "bearer_token_file", "basic_auth"})
    basic = view.section("basic_auth")
    basic.check_keys({"username", "password", "password_file"})
    auth = AuthSettings(
        bearer_token=view.secret("bearer_token"),
        username=basic.text("username"),
        password=basic.secret("password"),
    )
    if auth.username and not auth.password:
        basic.reader.problem(
            basic.line, basic.key_path("password"), "required with username (or password_file)"
        )
    return auth


def _tls(view: MapView) -> TlsSettings | None:
    view.check_keys({"cert_file", "key_file"})
    cert, key = view.text("cert_file"), view.text("key_file")
    if not cert and not key:
        return None
    if not (cert and key):
        missing = "key_file" if cert else "cert_file"
        view.reader.problem(view.line, view.key_path(missing), "required: TLS needs both files")
        return None
    return TlsSettings(
        view.reader.resolve(cert),
        view.reader.resolve(key),
        (view.reader.file, view.line_of("cert_file"), view.key_path("cert_file")),
        (view.reader.file, view.line_of("key_file"), view.key_path("key_file")),
    )


def parse_exporter(view: MapView) -> ExporterSettings:
    view.check_keys({"listen", "interval", "auth", "tls", *SOURCE_NAMES})
    defaults = ExporterSettings()
    interval = view.interval("interval", defaults.interval)
    host = view.section("host")
    disk = view.section("disk")
    network = view.section("network")
    containers = view.section("containers")
    return ExporterSettings(
        listen=listen_value(view, "listen", defaults.listen),
        listen_set="listen" in view,
        interval=interval.seconds,
        host=_source(host, {"temperatures"}, interval),
        temperatures=host.flag("temperatures", True),
        disk=_source(disk, {"exclude_fstypes", "exclude_mountpoints", "exclude_devices"}, interval),
        disk_filter=DiskFilter(
            excluded_fstypes=_patterns(disk, "exclude_fstypes", DEFAULT_EXCLUDED_FSTYPES),
            excluded_mountpoints=_patterns(disk, "exclude_mountpoints", DEFAULT_EXCLUDED_MOUNTS),
            excluded_devices=_regex(disk, "exclude_devices", DEFAULT_EXCLUDED_DEVICES),
        ),
        network=_source(network, {"include", "exclude"}, interval),
        interfaces=NameFilter(
            _patterns(network, "include", ()),
            _patterns(network, "exclude", DEFAULT_EXCLUDED_INTERFACES),
        ),
        containers=_source(
            containers,
            {"include", "exclude", "docker_host", "request_timeout", "concurrency"},
            interval,
        ),
        container_names=NameFilter(
            _patterns(containers, "include", ()), _patterns(containers, "exclude", ())
        ),
        docker=DockerSettings(
            host=_docker_host(containers),
            request_timeout=containers.positive_duration(
                "request_timeout", DockerSettings().request_timeout
            ),
            concurrency=containers.integer("concurrency", DockerSettings().concurrency, minimum=1),
        ),
        auth=_auth(view.section("auth")),
        tls=_tls(view.section("tls")),
    )

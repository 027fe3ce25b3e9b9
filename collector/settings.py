"""The collector's settings: `scrape:` (targets, limits, file_sd) and `api:` of fleetpulse.yaml.

Every mistake is reported as `file:line: key: what was expected`, all at once. Relative paths
resolve against the config file's folder, as Prometheus does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from collector.storage.settings import StorageSettings
from fleetpulse.core.listen import Listen, listen_value
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.yamlfile import Interval, MapView, resolve_path

# Scrape limits, as Prometheus has them: past one, the scrape fails with up = 0 and a reason.
DEFAULT_BODY_SIZE_LIMIT = 16 * 1024 * 1024  # node_exporter on a big host sends < 1 MiB
DEFAULT_BODY_BUDGET = 256 * 1024 * 1024  # all bodies in flight together
DEFAULT_LABEL_LIMIT = 64  # per sample, as exposed (before host, job and target labels)
DEFAULT_LABEL_VALUE_LENGTH_LIMIT = 2048  # characters
MIN_BODY_SIZE_LIMIT = 1024  # below this even `up 1` with HELP/TYPE lines gets cut


@dataclass(frozen=True, slots=True)
class TargetSettings:
    url: str
    host: str
    job: str = "fleetpulse"
    labels: tuple[tuple[str, str], ...] = ()
    interval: float | None = None  # None: scrape.interval
    timeout: float | None = None  # None: min(scrape.timeout, the interval), as in Prometheus
    bearer_token: str = field(default="", repr=False)
    basic_auth_username: str = ""
    basic_auth_password: str = field(default="", repr=False)
    tls_ca_file: Path | None = None
    tls_insecure: bool = False
    body_size_limit: int | None = None  # None: scrape.body_size_limit


@dataclass(frozen=True, slots=True)
class ScrapeSettings:
    interval: float = 15.0
    timeout: float = 5.0  # unset in the file: min(5s, interval), as in Prometheus
    targets: tuple[TargetSettings, ...] = ()
    file_sd: tuple[str, ...] = ()  # glob patterns, resolved against the config's folder
    file_sd_refresh: float = 5.0  # how often file_sd files are checked for changes
    body_size_limit: int = DEFAULT_BODY_SIZE_LIMIT  # bytes per scrape; a target may override
    body_budget: int = DEFAULT_BODY_BUDGET  # bytes of bodies held by all scrapes at once
    label_limit: int = DEFAULT_LABEL_LIMIT
    label_value_length_limit: int = DEFAULT_LABEL_VALUE_LENGTH_LIMIT
    sample_limit: int = 0  # samples per scrape; 0: no limit


@dataclass(frozen=True, slots=True)
class ApiSettings:
    listen: Listen = Listen("127.0.0.1", 9185)
    token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    """What the collector reads of fleetpulse.yaml: its sections, and the folder that relative
    paths (file_sd) resolve against."""

    scrape: ScrapeSettings = ScrapeSettings()
    api: ApiSettings = ApiSettings()
    storage: StorageSettings = StorageSettings()
    retention: RetentionSettings = RetentionSettings()
    base: Path = Path()


TARGET_KEYS = frozenset(
    {
        "url",
        "host",
        "job",
        "labels",
        "interval",
        "timeout",
        "bearer_token",
        "bearer_token_file",
        "basic_auth",
        "tls",
        "body_size_limit",
    }
)


def without_userinfo(url: str) -> str:
    """`url` without `user:password@`, so it can be logged and shown."""
    parts = urlsplit(url)
    if parts.username is None and "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def parse_target(view: MapView, scrape_interval: Interval) -> TargetSettings | None:
    """One scrape target (from the config or a file_sd file); None when it is invalid. Relative
    paths resolve against the Reader's base, the config file's folder."""
    view.check_keys(TARGET_KEYS)
    url = view.text("url")
    parts = urlsplit(url)
    if not url:
        view.reader.problem(
            view.line, view.key_path("url"), "required: the exporter's /metrics URL"
        )
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        view.reader.problem(
            view.line_of("url"),
            view.key_path("url"),
            f"expected an http:// or https:// URL with a host, got {without_userinfo(url)!r}",
        )
        return None
    basic = view.section("basic_auth")
    basic.check_keys({"username", "password", "password_file"})
    username, password = basic.text("username"), basic.secret("password")
    if parts.username is not None:
        # credentials in a URL would be logged with it: move them to basic auth instead
        if username:
            view.reader.problem(
                view.line_of("url"),
                view.key_path("url"),
                "set the credentials either in the URL or in basic_auth, not both",
            )
        username, password = unquote(parts.username), unquote(parts.password or "")
        url = without_userinfo(url)
    tls = view.section("tls")
    tls.check_keys({"ca_file", "insecure_skip_verify"})
    ca_file = tls.text("ca_file")
    interval = view.interval("interval", scrape_interval)
    return TargetSettings(
        url=url,
        host=view.text("host") or parts.hostname,
        job=view.text("job", "fleetpulse"),
        labels=tuple(sorted(view.text_map("labels").items())),
        interval=interval.seconds if "interval" in view else None,
        timeout=view.timeout("timeout", interval),
        bearer_token=view.secret("bearer_token"),
        basic_auth_username=username,
        basic_auth_password=password,
        tls_ca_file=view.reader.resolve(ca_file) if ca_file else None,
        tls_insecure=tls.flag("insecure_skip_verify", False),
        body_size_limit=view.integer("body_size_limit", 0, minimum=MIN_BODY_SIZE_LIMIT) or None,
    )


def parse_scrape(view: MapView, base: Path) -> ScrapeSettings:
    view.check_keys(
        {
            "interval",
            "timeout",
            "targets",
            "file_sd",
            "file_sd_refresh",
            "body_size_limit",
            "body_budget",
            "label_limit",
            "label_value_length_limit",
            "sample_limit",
        }
    )
    defaults = ScrapeSettings()
    interval = view.interval("interval", defaults.interval)
    timeout = view.timeout("timeout", interval) or min(defaults.timeout, interval.seconds)
    targets = []
    for i, node in enumerate(view.items("targets")):
        path = f"{view.key_path('targets')}[{i}]"
        target = parse_target(MapView(view.reader, node, path), interval)
        if target is not None:
            targets.append(target)
    file_sd = tuple(str(resolve_path(base, pattern)) for pattern in view.text_list("file_sd"))
    body_size_limit = view.integer(
        "body_size_limit", defaults.body_size_limit, minimum=MIN_BODY_SIZE_LIMIT
    )
    body_budget = view.integer("body_budget", defaults.body_budget, minimum=MIN_BODY_SIZE_LIMIT)
    if body_budget < body_size_limit:
        view.reader.problem(
            view.line_of("body_budget"),
            view.key_path("body_budget"),
            f"expected at least scrape.body_size_limit ({body_size_limit}), or no body that "
            "large could ever be read",
        )
    return ScrapeSettings(
        interval=interval.seconds,
        timeout=timeout,
        targets=tuple(targets),
        file_sd=file_sd,
        file_sd_refresh=view.positive_duration("file_sd_refresh", defaults.file_sd_refresh),
        body_size_limit=body_size_limit,
        body_budget=body_budget,
        label_limit=view.integer("label_limit", defaults.label_limit, minimum=1),
        label_value_length_limit=view.integer(
            "label_value_length_limit", defaults.label_value_length_limit, minimum=1
        ),
        sample_limit=view.integer("sample_limit", defaults.sample_limit, minimum=0),
    )


def parse_api(view: MapView) -> ApiSettings:
    view.check_keys({"listen", "token", "token_file"})
    return ApiSettings(
        listen=listen_value(view, "listen", ApiSettings().listen), token=view.secret("token")
    )

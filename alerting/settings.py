"""The `alerting:` section of fleetpulse.yaml, owned by the alert engine.

A channel is a named list of Apprise URLs, optionally plus an Apprise YAML/text config file
filtered by tags. URLs are checked when the config loads (`Apprise().add(url)` is False for a
URL no plugin accepts), so a typo is a `file:line` error, not a silent lost alert.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from fleetpulse.core.defaults import BUILTIN_RULES
from fleetpulse.core.listen import Listen, listen_value
from fleetpulse.core.yamlfile import MapView, Node, resolve_path

ALERTING_KEYS = frozenset(
    {
        "rules",
        "interval",
        "channels",
        "default_channels",
        "grafana_url",
        "notify_timeout",
        "notify_retries",
        "notify_backoff",
        "fallback_channels",
        "heartbeat",
        "listen",
    }
)
CHANNEL_KEYS = frozenset({"urls", "config", "tags"})
HEARTBEAT_KEYS = frozenset({"channels", "every"})
DEFAULT_HEARTBEAT_EVERY = 86_400.0


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    name: str
    urls: tuple[str, ...] = field(default=(), repr=False)  # URLs carry tokens and passwords
    config: Path | None = None  # an Apprise config file (YAML or text)
    tags: tuple[str, ...] = ()  # only the config's URLs with one of these tags


@dataclass(frozen=True, slots=True)
class HeartbeatSettings:
    """The dead man's switch: "FleetPulse is alive" through `channels` every `every` seconds,
    so whoever stops receiving it knows FleetPulse went silent."""

    channels: tuple[str, ...]
    every: float = DEFAULT_HEARTBEAT_EVERY


@dataclass(frozen=True, slots=True)
class AlertingSettings:
    rules: tuple[Path, ...] = (BUILTIN_RULES,)
    # (file, line) of alerting.rules, so a missing path is reported where it was written;
    # None: not configured, so a rules/ folder beside the config or the built-in set
    rules_source: tuple[str, int] | None = None
    interval: float = 15.0
    channels: tuple[ChannelSettings, ...] = field(default=(), repr=False)
    default_channels: tuple[str, ...] = ()
    grafana_url: str = ""
    notify_timeout: float = 10.0  # seconds for one delivery attempt
    notify_retries: int = 3  # attempts after the first one
    notify_backoff: float = 2.0  # seconds before the first retry; doubles each time
    # where an alert about a failing channel also goes when it would go through that channel
    fallback_channels: tuple[str, ...] = ()
    heartbeat: HeartbeatSettings | None = None  # opt-in
    # `fleetpulse alerting`'s own /metrics and /healthz; None: no listener
    listen: Listen | None = None

    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def rules_origin(self) -> str:
        """Where the rules come from, for the start banners."""
        if self.rules == (BUILTIN_RULES,):
            return "built-in; `fleetpulse init` writes a copy to edit"
        return ", ".join(str(p) for p in self.rules)


def default_rules(base: Path) -> tuple[Path, ...]:
    """The rules when none are configured: a rules/ folder in `base` (the config's folder, or
    the working directory without a config), else the built-in set, so an installed
    FleetPulse runs from any folder."""
    beside = base / "rules"
    return (beside,) if beside.is_dir() else (BUILTIN_RULES,)


class ForwardApprise(logging.Handler):
    """Passes Apprise's warnings and errors on under our own logger name, except those of a
    thread that is capturing Apprise's output itself (see `quiet_apprise`)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.muted: set[int] = set()
        self.secrets: list[str] = []  # the channels' (see notify.channel_secrets)

    def add_secrets(self, secrets: list[str]) -> None:
        merged = set(self.secrets).union(secrets)
        self.secrets = sorted(merged, key=len, reverse=True)

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread in self.muted:
            return
        message = scrub(record.getMessage(), self.secrets)
        logging.getLogger("alerting.apprise").log(record.levelno, "%s", message)


FORWARD = ForwardApprise()


@functools.cache
def load_apprise() -> ModuleType:
    """Apprise with every plugin loaded, imported on first use (it loads slowly).

    Its PGP helper imports the deprecated `imghdr` on purpose (with a shim for Python 3.13);
    loading all plugins once here keeps that DeprecationWarning out of our logs and tests.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise
        from apprise.manager_plugins import NotificationManager

        NotificationManager().load_modules()  # type: ignore[no-untyped-call]
    # Delivery captures Apprise's debug lines for the failure reason; they must not reach
    # our logs from there, so only its warnings and errors pass on, under our own name.
    apprise_log = logging.getLogger("apprise")
    apprise_log.propagate = False
    # Apprise posts through requests; urllib3's debug lines name the request path, which for
    # a webhook is its token ("POST /services/T0/B0/token"), so they stop at info.
    logging.getLogger("urllib3").setLevel(logging.INFO)
    apprise_log.addHandler(FORWARD)
    return apprise


@contextlib.contextmanager
def quiet_apprise() -> Iterator[io.StringIO]:
    """Apprise's warnings and errors from this thread, captured instead of logged.

    While a URL is checked, Apprise names what it dislikes verbatim ("An invalid Slack
    (third) Token (xoxb-…) was specified"), so none of it may reach our handlers."""
    apprise = load_apprise()
    FORWARD.muted.add(threading.get_ident())
    try:
        with apprise.LogCapture(level=logging.WARNING, fmt="%(levelname)s %(message)s") as captured:
            yield captured
    finally:
        FORWARD.muted.discard(threading.get_ident())


HOST_NAME = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|localhost|\[[0-9A-Fa-f:.]+\]")


@dataclass(frozen=True, slots=True)
class UrlParts:
    scheme: str
    userinfo: str
    host: str
    port: str  # with its colon, or ""
    path: str
    query: str
    fragment: str


def split_url(url: str) -> UrlParts:
    """Apprise URL parts, by hand: `urllib.parse` rejects the odd netlocs tokens make."""
    scheme = url.partition("://")[0] if "://" in url else ""
    rest = url.partition("://")[2] if "://" in url else url
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hostport = netloc.rpartition("@")
    if hostport.startswith("[") and "]" in hostport:
        host, _, port = hostport.partition("]")
        host += "]"
    else:
        host, colon, port = hostport.partition(":")
        port = colon + port
    return UrlParts(
        scheme, userinfo, host, port if port.startswith(":") else "", path, query, fragment
    )


def url_secrets(url: str) -> list[str]:
    """The parts of an Apprise URL that may be secret: user-info, path segments, query values,
    the fragment, and the host unless it looks like a host name (Telegram's is a bot token)."""
    parts = split_url(url)
    found = [*parts.userinfo.split(":"), *parts.path.split("/"), parts.fragment]
    found += [value for pair in parts.query.split("&") for value in pair.partition("=")[2:]]
    if not HOST_NAME.fullmatch(parts.host):
        found += [parts.host, parts.port.lstrip(":")]
    unique = {p for part in found for p in (part, urllib.parse.unquote(part)) if p}
    return sorted(unique, key=len, reverse=True)  # longest first: no half-replaced secret


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced by ***; short ones only where they stand alone, so
    a one-letter password does not mangle every word."""
    for secret in secrets:
        pattern = re.escape(secret)
        if len(secret) < 4:
            pattern = rf"(?<![A-Za-z0-9]){pattern}(?![A-Za-z0-9])"
        text = re.sub(pattern, "***", text, flags=re.IGNORECASE)
    return text


def redact_url(url: str) -> str:
    """`url` as scheme://host only, the rest as *** (a host name helps tell URLs apart)."""
    parts = split_url(url)
    shown = f"{parts.host}{parts.port}" if HOST_NAME.fullmatch(parts.host) else "***"
    userinfo = "***@" if parts.userinfo else ""
    tail = "/***" if parts.path or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{userinfo}{shown}{tail}"


def url_problem(url: str) -> str | None:
    """Why no Apprise plugin accepts `url` (its secret parts scrubbed), or None if one does."""
    apprise = load_apprise()
    with quiet_apprise() as captured:
        accepted = bool(apprise.Apprise().add(url))
    if accepted:
        return None
    lines = [line.partition(" ")[2].strip() for line in captured.getvalue().splitlines()]
    reason = next((line for line in lines if line), "")
    return scrub(reason, url_secrets(url))


def config_has_urls(path: Path) -> bool:
    apprise = load_apprise()
    config = apprise.AppriseConfig()
    # the file holds URLs with tokens, which Apprise may quote when it refuses one
    with quiet_apprise():
        return bool(config.add(str(path))) and len(config.services()) > 0


def _channel(view: MapView, name: str, base: Path) -> ChannelSettings:
    node = view.node(name) or Node(None, view.line)
    path = view.key_path(name)
    if isinstance(node.value, list):
        urls = tuple(view.text_list(name))
        config: Path | None = None
        tags: tuple[str, ...] = ()
        url_nodes = node.value
    else:
        body = view.section(name)
        body.check_keys(CHANNEL_KEYS)
        urls = tuple(body.text_list("urls"))
        config_text = body.text("config")
        config = resolve_path(base, config_text) if config_text else None
        tags = tuple(body.text_list("tags"))
        url_nodes = body.items("urls")
        if config is not None and not config.is_file():
            view.reader.problem(body.line_of("config"), f"{path}.config", "no such file")
        elif config is not None and not config_has_urls(config):
            view.reader.problem(
                body.line_of("config"),
                f"{path}.config",
                "Apprise finds no valid URL in this file; check its YAML or text format",
            )
        if not urls and config is None:
            view.reader.problem(node.line, path, "expected a list of Apprise URLs or urls/config")
    for url, url_node in zip(urls, url_nodes, strict=False):
        reason = url_problem(url)
        if reason is not None:
            # never echo the URL whole: it usually carries a token or a password
            why = f": {reason.rstrip('.')}" if reason else ""
            view.reader.problem(
                url_node.line,
                path,
                f"Apprise does not accept this {url.partition('://')[0] or url[:10]}:// URL "
                f"({redact_url(url)}){why}; check its form at "
                "https://github.com/caronc/apprise/wiki",
            )
    return ChannelSettings(name, urls, config, tags)


def parse_alerting(view: MapView, base: Path) -> AlertingSettings:
    view.check_keys(ALERTING_KEYS)
    defaults = AlertingSettings()
    channels_view = view.section("channels")
    channels = tuple(_channel(channels_view, name, base) for name in channels_view)
    names = {c.name for c in channels}
    default_channels = _channel_list(view, "default_channels", names)
    fallback_channels = _channel_list(view, "fallback_channels", names)
    heartbeat = None
    if "heartbeat" in view:
        body = view.section("heartbeat")
        body.check_keys(HEARTBEAT_KEYS)
        heartbeat_channels = _channel_list(body, "channels", names)
        if not heartbeat_channels:
            view.reader.problem(
                body.line, body.key_path("channels"), "expected at least one channel"
            )
        heartbeat = HeartbeatSettings(
            heartbeat_channels, body.positive_duration("every", DEFAULT_HEARTBEAT_EVERY)
        )
    configured = "rules" in view
    return AlertingSettings(
        rules=tuple(resolve_path(base, p) for p in view.text_list("rules"))
        if configured
        else default_rules(base),
        rules_source=(view.reader.file, view.line_of("rules")) if configured else None,
        interval=view.positive_duration("interval", defaults.interval),
        channels=channels,
        default_channels=default_channels,
        grafana_url=view.text("grafana_url").rstrip("/"),
        notify_timeout=view.positive_duration("notify_timeout", defaults.notify_timeout),
        notify_retries=view.integer("notify_retries", defaults.notify_retries, minimum=0),
        notify_backoff=view.positive_duration("notify_backoff", defaults.notify_backoff),
        fallback_channels=fallback_channels,
        heartbeat=heartbeat,
        listen=listen_value(view, "listen", Listen("", 0)) if "listen" in view else None,
    )


def _channel_list(view: MapView, key: str, names: set[str]) -> tuple[str, ...]:
    """A list of channel names under `key`, each one defined under alerting.channels."""
    listed = tuple(view.text_list(key))
    for name in listed:
        if name not in names:
            view.reader.problem(
                view.line_of(key),
                view.key_path(key),
                f"unknown channel {name!r}; define it under alerting.channels",
            )
    return listed

"""The `alerting:` section of fleetpulse.yaml, owned by the alert engine.

A channel is a named list of Apprise URLs, optionally plus an Apprise YAML/text config file
filtered by tags. URLs are checked when the config loads (`Apprise().add(url)` is False for a
URL no plugin accepts), so a typo is a `file:line` error, not a silent lost alert.
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from fleetpulse.yamlfile import MapView, Node, resolve_path

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
    }
)
CHANNEL_KEYS = frozenset({"urls", "config", "tags"})


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    name: str
    urls: tuple[str, ...] = field(default=(), repr=False)  # URLs carry tokens and passwords
    config: Path | None = None  # an Apprise config file (YAML or text)
    tags: tuple[str, ...] = ()  # only the config's URLs with one of these tags


@dataclass(frozen=True, slots=True)
class AlertingSettings:
    rules: tuple[Path, ...] = (Path("rules"),)
    interval: float = 15.0
    channels: tuple[ChannelSettings, ...] = field(default=(), repr=False)
    default_channels: tuple[str, ...] = ()
    grafana_url: str = ""
    notify_timeout: float = 10.0  # seconds for one delivery attempt
    notify_retries: int = 3  # attempts after the first one
    notify_backoff: float = 2.0  # seconds before the first retry; doubles each time

    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)


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
    forward = logging.getLogger("alerting.apprise")

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            forward.log(record.levelno, "%s", record.getMessage())

    apprise_log.addHandler(Forward(logging.WARNING))
    return apprise


def url_is_accepted(url: str) -> bool:
    """Whether some Apprise plugin accepts `url`."""
    apprise = load_apprise()
    return bool(apprise.Apprise().add(url))


def config_has_urls(path: Path) -> bool:
    apprise = load_apprise()
    config = apprise.AppriseConfig()
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
        if not url_is_accepted(url):
            scheme = url.partition("://")[0] or url[:10]
            # never echo the URL: it usually carries a token or a password
            view.reader.problem(
                url_node.line,
                path,
                f"Apprise does not accept this {scheme}:// URL; check its form at "
                "https://github.com/caronc/apprise/wiki",
            )
    return ChannelSettings(name, urls, config, tags)


def parse_alerting(view: MapView, base: Path) -> AlertingSettings:
    view.check_keys(ALERTING_KEYS)
    defaults = AlertingSettings()
    channels_view = view.section("channels")
    channels = tuple(_channel(channels_view, name, base) for name in channels_view)
    default_channels = tuple(view.text_list("default_channels"))
    names = {c.name for c in channels}
    for name in default_channels:
        if name not in names:
            view.reader.problem(
                view.line_of("default_channels"),
                view.key_path("default_channels"),
                f"unknown channel {name!r}; define it under alerting.channels",
            )
    rules = (
        tuple(resolve_path(base, p) for p in view.text_list("rules"))
        if "rules" in view
        else (resolve_path(base, "rules"),)
    )
    return AlertingSettings(
        rules=rules,
        interval=view.positive_duration("interval", defaults.interval),
        channels=channels,
        default_channels=default_channels,
        grafana_url=view.text("grafana_url").rstrip("/"),
        notify_timeout=view.positive_duration("notify_timeout", defaults.notify_timeout),
        notify_retries=view.integer("notify_retries", defaults.notify_retries, minimum=0),
        notify_backoff=view.positive_duration("notify_backoff", defaults.notify_backoff),
    )

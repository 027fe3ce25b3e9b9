"""Scrape targets: resolved from the config and file_sd into what a scrape loop needs, and the
stable hash that splits them across `--shard i/n` collectors."""

from __future__ import annotations

import base64
import functools
import hashlib
import ssl
from dataclasses import dataclass, field

from collector.settings import (
    DEFAULT_BODY_SIZE_LIMIT,
    DEFAULT_LABEL_LIMIT,
    DEFAULT_LABEL_VALUE_LENGTH_LIMIT,
    ScrapeSettings,
    TargetSettings,
)
from fleetpulse.core.samples import Labels, make_labels


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    host: str
    job: str
    labels: Labels  # host, job and the configured labels, sorted
    interval: float
    timeout: float
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ca_file: str | None = None
    insecure: bool = False
    body_size_limit: int = DEFAULT_BODY_SIZE_LIMIT  # bytes
    label_limit: int = DEFAULT_LABEL_LIMIT  # labels per sample, as exposed
    label_value_length_limit: int = DEFAULT_LABEL_VALUE_LENGTH_LIMIT  # characters
    sample_limit: int = 0  # samples per scrape; 0: no limit

    @property
    def key(self) -> str:
        return f"{self.job}/{self.host}/{self.url}"

    def offset(self) -> float:
        """A stable start offset within the interval, so targets do not all fire at once."""
        digest = hashlib.sha256(self.key.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 * self.interval

    def shard(self, count: int) -> int:
        """The shard (0..count-1) that scrapes this target; depends only on its key, so every
        collector of a sharded fleet agrees without talking to the others."""
        digest = hashlib.sha256(b"shard:" + self.key.encode()).digest()
        return int.from_bytes(digest[:8], "big") % count

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        if self.ca_file:
            return _ca_context(self.ca_file)
        return True


@functools.lru_cache(maxsize=256)
def _ca_context(ca_file: str) -> ssl.SSLContext:
    # loading a CA file costs milliseconds; a scrape every few seconds should not pay it each time
    return ssl.create_default_context(cafile=ca_file)


def resolve_target(settings: TargetSettings, scrape: ScrapeSettings) -> Target:
    headers: list[tuple[str, str]] = []
    if settings.bearer_token:
        headers.append(("Authorization", f"Bearer {settings.bearer_token}"))
    elif settings.basic_auth_username:
        pair = f"{settings.basic_auth_username}:{settings.basic_auth_password}".encode()
        headers.append(("Authorization", f"Basic {base64.b64encode(pair).decode()}"))
    labels = dict(settings.labels)
    labels["host"] = settings.host
    labels["job"] = settings.job
    interval = settings.interval or scrape.interval
    return Target(
        url=settings.url,
        host=settings.host,
        job=settings.job,
        labels=make_labels(labels),
        interval=interval,
        # Prometheus' rule: an explicit timeout was checked against the interval when loaded
        timeout=settings.timeout or min(scrape.timeout, interval),
        headers=tuple(headers),
        ca_file=str(settings.tls_ca_file) if settings.tls_ca_file else None,
        insecure=settings.tls_insecure,
        body_size_limit=settings.body_size_limit or scrape.body_size_limit,
        label_limit=scrape.label_limit,
        label_value_length_limit=scrape.label_value_length_limit,
        sample_limit=scrape.sample_limit,
    )


def in_shard(targets: list[Target], shard: tuple[int, int] | None) -> list[Target]:
    """The targets shard `i` of `n` scrapes (all of them without sharding)."""
    if shard is None:
        return targets
    index, count = shard
    return [t for t in targets if t.shard(count) == index]

"""Delivery of notifications: one Apprise object per channel, a queue and a worker per channel.

A channel is a named Apprise object, nothing more; Apprise does the talking. Apprise reports
a failed send only as False plus log lines, so `send_now` captures those lines
(`apprise.LogCapture`) and raises `DeliveryFailed` carrying them. Each channel has its own
queue, worker and threads, so a dead or slow channel never delays evaluation or another
channel; attempts time out and are retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apprise

from alerting.notification import Notification, NotificationKind, Outcome
from alerting.settings import (
    FORWARD,
    AlertingSettings,
    ChannelSettings,
    load_apprise,
    scrub,
    split_url,
    url_secrets,
)
from fleetpulse.core.errors import FleetPulseError
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)

DIRECT_TAG = "fleetpulse-direct"  # marks a channel's own URLs when a tag filter applies
QUEUE_SIZE = 1000


class AlertingError(FleetPulseError):
    """Base of the alert engine's errors."""


class DeliveryFailed(AlertingError, ConnectionError):
    """A channel did not accept a notification; the message carries Apprise's reason."""


class UnknownChannel(AlertingError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


OutcomeSink = Callable[[Outcome], Awaitable[None]]


def build_channel(channel: ChannelSettings) -> apprise.Apprise:
    load_apprise()
    target = apprise.Apprise()
    for url in channel.urls:
        target.add(url, tag=DIRECT_TAG if channel.tags else None)
    if channel.config is not None:
        config = apprise.AppriseConfig()
        config.add(str(channel.config))
        target.add(config)
    return target


def channel_secrets(channel: ChannelSettings, target: apprise.Apprise) -> list[str]:
    """What in a channel's URLs may be secret, longest first. Apprise's send errors quote the
    URL it posted to (requests' "Max retries exceeded with url: /services/T0/B0/token"), so
    these must come out of every reason we log or store. Written URLs count as written; a
    config file's as Apprise renders them, without the query values it shows even in privacy
    mode (its defaults, such as `retry=0`, which would otherwise mask every "0")."""
    urls = list(channel.urls)
    if channel.config is not None:
        urls += [_without_public_query(server) for server in target]
    found = {secret for url in urls for secret in url_secrets(url)}
    return sorted(found, key=len, reverse=True)


def _without_public_query(server: Any) -> str:
    full = str(server.url(privacy=False))
    public = set(split_url(str(server.url(privacy=True))).query.split("&"))
    base, _, query = full.partition("?")
    kept = "&".join(pair for pair in query.split("&") if pair and pair not in public)
    return f"{base}?{kept}" if kept else base


def _reason(captured: str) -> str:
    """Apprise's warnings and errors, plus the socket/HTTP exception detail it logs at debug."""
    lines = []
    for line in captured.splitlines():
        level, _, message = line.partition(" ")
        message = message.strip()
        if message and (level in ("WARNING", "ERROR") or "Exception" in message):
            lines.append(message)
    return " | ".join(lines[-3:]) or "Apprise reported failure without a reason"


def send_now(
    target: apprise.Apprise,
    title: str,
    body: str,
    tags: tuple[str, ...],
    secrets: list[str] | None = None,
) -> None:
    """Blocking send through every URL of one channel; raises DeliveryFailed with the reason,
    `secrets` (channel_secrets) scrubbed from it."""
    tag: object = [*tags, DIRECT_TAG] if tags else apprise.common.MATCH_ALL_TAG
    if len(target) == 0 and not tags:
        raise DeliveryFailed("the channel has no Apprise URLs")
    with apprise.LogCapture(  # type: ignore[no-untyped-call]
        level=logging.DEBUG, fmt="%(levelname)s %(message)s"
    ) as captured:
        ok = target.notify(body=body, title=title, tag=tag)
        text = captured.getvalue()
    if ok is None:
        raise DeliveryFailed("no Apprise URL of the channel matched its tags")
    if not ok:
        raise DeliveryFailed(scrub(_reason(text), secrets or []))


class ChannelWorker:
    """One channel's queue and its single worker: deliveries to it are in order."""

    def __init__(
        self,
        settings: ChannelSettings,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        sink: OutcomeSink,
    ) -> None:
        self.settings = settings
        self.target = build_channel(settings)
        self.secrets = channel_secrets(settings, self.target)
        FORWARD.add_secrets(self.secrets)  # Apprise's own warnings reach our logs too
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sink = sink
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(QUEUE_SIZE)
        # its own threads: a hung HTTP call here never takes a thread another channel needs
        self._threads = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix=f"notify-{settings.name}"
        )

    def submit(self, notification: Notification) -> bool:
        try:
            self.queue.put_nowait(notification)
        except asyncio.QueueFull:
            log.error("notification dropped channel=%s reason=queue full", self.settings.name)
            return False
        return True

    async def attempt(self, notification: Notification) -> None:
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(
            self._threads,
            send_now,
            self.target,
            notification.title,
            notification.body,
            self.settings.tags,
            self.secrets,
        )
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the call finishes, and the worker, and so the engine's stop, then
            # never end (the same holds for every wait_for that a stop cancels)
            async with asyncio.timeout(self.timeout):
                await call
        except TimeoutError:
            raise DeliveryFailed(f"no answer within {self.timeout:g}s") from None

    async def deliver(self, notification: Notification) -> bool:
        name = self.settings.name
        for attempt in range(1, self.retries + 2):
            final = attempt == self.retries + 1
            try:
                await self.attempt(notification)
            except DeliveryFailed as exc:
                log.warning(
                    "notification failed channel=%s kind=%s attempt=%d final=%s error=%s",
                    name,
                    notification.kind,
                    attempt,
                    final,
                    exc,
                )
                await self.sink(Outcome(notification, attempt, False, str(exc), now_ms(), final))
                if final:
                    return False
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            log.info(
                "notification sent channel=%s kind=%s attempt=%d", name, notification.kind, attempt
            )
            await self.sink(Outcome(notification, attempt, True, "", now_ms(), True))
            return True
        return False

    async def run(self) -> None:
        try:
            while True:
                notification = await self.queue.get()
                await self.deliver(notification)
        finally:
            self._threads.shutdown(wait=False, cancel_futures=True)


class Notifier:
    """Per-channel workers behind one `submit`; `run` keeps them going until cancelled."""

    def __init__(self, settings: AlertingSettings, sink: OutcomeSink) -> None:
        self.workers = {
            channel.name: ChannelWorker(
                channel,
                timeout=settings.notify_timeout,
                retries=settings.notify_retries,
                backoff=settings.notify_backoff,
                sink=sink,
            )
            for channel in settings.channels
        }

    def submit(self, notification: Notification) -> bool:
        worker = self.workers.get(notification.channel)
        if worker is None:
            raise UnknownChannel(f"unknown channel {notification.channel!r}")
        return worker.submit(notification)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for name, worker in self.workers.items():
                group.create_task(worker.run(), name=f"notify-{name}")


async def send_test(settings: AlertingSettings, channel: str) -> None:
    """One test message through `channel`, one attempt; raises DeliveryFailed/UnknownChannel."""
    found = next((c for c in settings.channels if c.name == channel), None)
    if found is None:
        known = ", ".join(settings.channel_names()) or "none"
        raise UnknownChannel(f"unknown channel {channel!r}; alerting.channels defines: {known}")

    async def ignore(outcome: Outcome) -> None:
        return None

    worker = ChannelWorker(
        found, timeout=settings.notify_timeout, retries=0, backoff=0.0, sink=ignore
    )
    note = Notification(
        channel,
        "[TEST] FleetPulse notification test",
        f"This is a test message from FleetPulse through the channel {channel!r}.",
        NotificationKind.TEST,
        (),
        now_ms(),
    )
    try:
        await worker.attempt(note)
    finally:
        worker._threads.shutdown(wait=False)

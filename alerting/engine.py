"""The alert engine's shell: evaluates each rule group on its interval, and does what the
evaluator decides.

Each cycle it queries the store (`query`), hands the series to the pure evaluator
(`evaluator`), saves the instances and the outbox (`statefile`, `outbox`) before anything is
sent, hands the notifications to the notifier (`notify`) and records the history (`history`).
It reloads the rules on SIGHUP and when their files change (`reload`).

Data missing because the store failed is not data a target did not send: a rule whose window
overlaps a write outage of the store (`Storage.health`) makes no decision and its instances
hold their state, as they do when its query fails. Rules over FleetPulse's own metrics read
them from memory (`live`), so the alerts about the store still fire while it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from alerting.evaluator import Evaluator, Step
from alerting.events import notification_event
from alerting.history import write_events
from alerting.live import LiveMetrics
from alerting.metrics import EngineMetrics
from alerting.notification import Notification, NotificationKind, Outcome
from alerting.notify import Notifier
from alerting.outbox import Outbox
from alerting.published import PUBLISH_EVERY_MS, rules_event
from alerting.query import RuleQueries
from alerting.reload import RuleFiles
from alerting.rules import Group, Rule, RuleSet
from alerting.schedule import Schedule
from alerting.settings import AlertingSettings
from alerting.state import AlertInstance, InstanceKey
from alerting.statefile import STATE_FILE, load_saved, state_payload, write_state
from fleetpulse.core.durations import format_duration
from fleetpulse.core.overrides import in_force, read_overrides
from fleetpulse.core.samples import Labels, Series, label_value
from fleetpulse.core.storage import ALERT_EVENTS, Event, Storage, StorageError
from fleetpulse.core.storehealth import StoreHealth
from fleetpulse.core.thresholds import HostLevels, Thresholds
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)


class AlertEngine:
    """Holds the rule set, the evaluator, the outbox and the notifier for one process."""

    def __init__(
        self,
        settings: AlertingSettings,
        *,
        clock: Callable[[], int] = now_ms,
        registry: CollectorRegistry | None = None,
        self_labels: Labels = (),
    ) -> None:
        """`registry` gets the engine's own metrics; every metric in it (the collector's too,
        when they share one) is what rules read from memory, labelled with `self_labels`
        (host and job, as the self-scrape stores them)."""
        self.settings = settings
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self.metrics = EngineMetrics(self.registry, settings.channel_names())
        self.live = LiveMetrics(self.registry, self_labels, keep_ms=0)
        self._held_by: StoreHealth | None = None  # the store outage rules hold for, if any
        self.heartbeat_ms: int | None = None  # when the last heartbeat went out
        self.ruleset = RuleSet()
        # the per-host overrides set through the API, as the store held them at the last
        # cycle, and the rules' thresholds with them over: one object until either changes,
        # so the evaluator keeps its levels per host
        self._overrides: dict[str, HostLevels] = {}
        self.thresholds = Thresholds()
        self.evaluator = Evaluator(
            default_channels=settings.default_channels, grafana_url=settings.grafana_url
        )
        self.outbox = Outbox()
        self.notifier: Notifier | None = None
        self.storage: Storage | None = None
        self.data_dir: Path | None = None
        self.cycles = 0
        self._files = RuleFiles(settings)
        self._queries = RuleQueries()
        self._reload_wanted = asyncio.Event()
        self._saved: str | None = None
        self._save_failing: str | None = None  # why the state file cannot be written now
        self._save_lock = asyncio.Lock()
        # the history of instances dropped with their rules, written with the next cycle's
        self._orphan_events: list[Event] = []
        # the rule set last published for the API, and when (see `_publish_rules`)
        self._published: RuleSet | None = None
        self._published_ms = 0

    # -- rules --------------------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        return self.ruleset.rules

    @property
    def files(self) -> int:
        return len(self.ruleset.files)

    @property
    def instances(self) -> dict[InstanceKey, AlertInstance]:
        return self.evaluator.instances

    def load(self) -> None:
        """Load rules and thresholds; raises ConfigError with file:line on any mistake."""
        self._use(self._files.load())

    def reload(self) -> bool:
        """Load again; on a mistake keep the last good set (`RuleFiles.reload` logs why)."""
        ruleset = self._files.reload()
        if ruleset is None:
            return False
        self._use(ruleset)
        dropped = self.evaluator.drop_rules({rule.alert for rule in ruleset.rules}, self.clock())
        for gone in dropped.transitions:
            log.info("alert dropped with its rule alert=%s state=%s", gone.alert, gone.previous)
        self._orphan_events += dropped.events
        return True

    def _use(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.thresholds = ruleset.thresholds.with_overrides(self._overrides)
        self._queries.forget()
        self.metrics.rules.set(len(ruleset.rules))
        self.live.keep_ms = int(max((r.window for r in ruleset.rules), default=0) * 1000)

    def request_reload(self) -> None:
        log.info("reload requested")
        self._reload_wanted.set()

    # -- evaluation ---------------------------------------------------------------------

    async def evaluate_group(self, storage: Storage, group: Group, now: int) -> Step:
        """Evaluate every rule of `group` at `now`: at most one query per rule, concurrently
        (rules over the same metric and window share one, see `query.plan_queries`)."""
        results = await self._queries.series(storage, group.rules, now, self.live)
        health = storage.health()
        own = self.live.names
        series: list[list[Series] | None] = []
        for rule, result in zip(group.rules, results, strict=True):
            if isinstance(result, StorageError):
                log.warning("rule query failed alert=%s error=%s", rule.alert, result)
                series.append(None)
            elif rule.selector.metric not in own and health.writes_missing(
                now - int(rule.window * 1000), now
            ):
                series.append(None)  # no decision on data the store may have lost
                self._hold(health)
            else:
                series.append(result)
        step = self.evaluator.evaluate(group.rules, series, self.thresholds, now)
        for change in step.transitions:
            log.info(
                "alert %s alert=%s severity=%s host=%s value=%s",
                change.entered,
                change.alert,
                change.severity,
                label_value(change.labels, "host"),
                change.value,
            )
        for alert, kind in step.unrouted:
            log.warning("alert has no channel alert=%s kind=%s", alert, kind)
        self.cycles += 1
        return step

    def _hold(self, health: StoreHealth) -> None:
        """Say once per outage that rules hold their state for the store, and why."""
        if self._held_by is None:
            failure = health.write
            log.warning(
                "store failing writes, rules over its data hold their state cause=%s error=%s",
                failure.cause if failure is not None else "recovering",
                failure.error if failure is not None else "the outage's data is in the window",
            )
            self.metrics.held.set(1)
        self._held_by = health

    def _release(self, health: StoreHealth, now: int) -> None:
        """Say once when no rule holds its state for the store any more."""
        own = self.live.names
        if self._held_by is None or any(
            rule.selector.metric not in own
            and health.writes_missing(now - int(rule.window * 1000), now)
            for rule in self.rules
        ):
            return
        log.info("store writes recovered, rules evaluate again")
        self._held_by = None
        self.metrics.held.set(0)

    def _fallbacks(self, notes: Sequence[Notification]) -> list[Notification]:
        """An alert about a channel (its `channel` label) that would go only through that
        channel also goes to alerting.fallback_channels, or to the log at ERROR without one:
        a dead channel must not silence the alert about itself."""
        extra = []
        for note in notes:
            if label_value(note.labels, "channel") != note.channel:
                continue
            fallbacks = [c for c in self.settings.fallback_channels if c != note.channel]
            if not fallbacks:
                log.error(
                    "alert about a failing channel goes through that channel and no "
                    "alerting.fallback_channels is set channel=%s kind=%s title=%s",
                    note.channel,
                    note.kind,
                    note.title,
                )
            extra += [dataclasses.replace(note, channel=name) for name in fallbacks]
        return extra

    async def _read_overrides(self, storage: Storage, now: int) -> None:
        """The threshold overrides from the store (one event query); on a failure the last
        ones read stay in use."""
        try:
            overrides = in_force(await read_overrides(storage, now))
        except StorageError as exc:
            log.warning("threshold overrides not read, keeping the last ones error=%s", exc)
            return
        if overrides != self._overrides:
            log.info("threshold overrides changed hosts=%d", len(overrides))
            self._overrides = overrides
            self.thresholds = self.ruleset.thresholds.with_overrides(overrides)

    async def _run_cycle(self, storage: Storage, data_dir: Path, groups: list[Group]) -> None:
        now = self.clock()
        started = time.monotonic()
        await self._read_overrides(storage, now)
        self.live.sample(now)
        # held from evaluation to the save: a delivery's save in between would write the new
        # cooldown clocks without the notifications they stand for
        async with self._save_lock:
            steps = await asyncio.gather(*(self.evaluate_group(storage, g, now) for g in groups))
            self._release(storage.health(), now)
            events = [*self._orphan_events, *(e for s in steps for e in s.events)]
            self._orphan_events = []
            notes = [n for s in steps for n in s.notifications]
            notes += self._fallbacks(notes)
            # the new cooldown clocks and their notifications go to disk together, before
            # anything is sent (see `alerting.outbox`)
            self.outbox.add(notes)
            await self._write_state(data_dir)
        if self.notifier is not None:
            lost = self.outbox.submit(self.notifier, notes, now)
            if lost:
                events += lost
                await self.save(data_dir)
        await write_events(storage, events)
        took = time.monotonic() - started
        self.metrics.cycle_seconds.set(took)
        self.metrics.cycle_load.set(took / min(group.interval for group in groups))

    async def _publish_rules(self, storage: Storage) -> None:
        """The loaded rules into the store for `GET /api/v1/rules` (`alerting.published`):
        after each load, and again every PUBLISH_EVERY_MS, since the store expires old events.
        A failed write is tried again at the next cycle."""
        now = self.clock()
        if self._published is self.ruleset and now < self._published_ms + PUBLISH_EVERY_MS:
            return
        event = rules_event(self.ruleset, self.settings.default_channels, now)
        try:
            await storage.write_events(ALERT_EVENTS, [event])
        except StorageError as exc:
            log.warning("loaded rules not published error=%s", exc)
            return
        self._published, self._published_ms = self.ruleset, now

    # -- the state file -----------------------------------------------------------------

    async def save(self, data_dir: Path) -> None:
        """Write the instances and the outbox if they changed; one writer at a time, so an
        older snapshot never replaces a newer one."""
        async with self._save_lock:
            await self._write_state(data_dir)

    async def _write_state(self, data_dir: Path) -> None:
        """`save` for a caller that holds the lock. The payload is built here on the event
        loop, so the writer thread never sees the instances or the outbox change."""
        payload = state_payload(
            list(self.instances.values()), self.outbox.to_json(), self.heartbeat_ms
        )
        if payload == self._saved:
            return
        try:
            await asyncio.to_thread(write_state, data_dir, payload)
        except OSError as exc:
            self._save_failed(data_dir, exc)
            return
        self._saved = payload
        if self._save_failing is not None:
            log.warning("alert state saved again path=%s", data_dir / STATE_FILE)
            self._save_failing = None
            self.metrics.save_failing.set(0)

    def _save_failed(self, data_dir: Path, exc: OSError) -> None:
        """A full or read-only disk must not stop the engine: it evaluates and notifies on
        from memory (the self-rules say the disk is failing) and saves again once it can.
        Only a restart meanwhile loses what the file would have kept."""
        why = exc.strerror or str(exc)
        if why != self._save_failing:  # once per outage, and when its cause changes
            log.error(
                "alert state not saved path=%s error=%s: evaluation and notifications go on, "
                "but a restart now forgets cooldowns and undelivered notifications; free "
                "space on that disk or make it writable",
                data_dir / STATE_FILE,
                why,
            )
        self._save_failing = why
        self.metrics.save_failing.set(1)

    async def _record_outcome(self, outcome: Outcome) -> None:
        self.metrics.delivered(outcome.notification.channel, outcome.ok, outcome.final)
        if outcome.final:
            self.outbox.settle(outcome.notification)
            if self.data_dir is not None:
                # at once, not at the next cycle: the shorter the time a delivered
                # notification stays in the saved outbox, the rarer a duplicate after a crash
                await self.save(self.data_dir)
        if self.storage is not None:
            await write_events(self.storage, [notification_event(outcome)])

    # -- the dead man's switch ------------------------------------------------------------

    async def _heartbeat(self, data_dir: Path) -> None:
        """ "FleetPulse is alive" every alerting.heartbeat.every, the first at once unless the
        state file says one went out more recently: the clock survives restarts, and none
        goes out while the engine is down, which is the point."""
        beat = self.settings.heartbeat
        assert beat is not None and self.notifier is not None
        every_ms = int(beat.every * 1000)
        labels = tuple(sorted({**dict(self.live.labels), "alertname": "Heartbeat"}.items()))
        while True:
            now = self.clock()
            if self.heartbeat_ms is None or now >= self.heartbeat_ms + every_ms:
                notes = [
                    Notification(
                        channel,
                        "FleetPulse is alive",
                        "This is FleetPulse's heartbeat, sent every "
                        f"{format_duration(beat.every)}. If it stops arriving, FleetPulse "
                        "(or its way to you) is down.",
                        NotificationKind.HEARTBEAT,
                        labels,
                        now,
                    )
                    for channel in beat.channels
                ]
                async with self._save_lock:
                    self.heartbeat_ms = now
                    self.outbox.add(notes)
                    await self._write_state(data_dir)
                self.outbox.submit(self.notifier, notes, now)
            await asyncio.sleep(max(0.0, (self.heartbeat_ms + every_ms - self.clock()) / 1000))

    # -- the service --------------------------------------------------------------------

    async def _schedule(self, storage: Storage, data_dir: Path) -> None:
        schedule = Schedule()
        loop = asyncio.get_running_loop()
        while True:
            await self._publish_rules(storage)
            ready = schedule.ready(self.ruleset.groups, loop.time())
            if ready:
                await self._run_cycle(storage, data_dir, ready)
                schedule.ran(ready, loop.time())
            wait = schedule.next_due(default=loop.time() + self.settings.interval)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wait - loop.time())):
                    await self._reload_wanted.wait()
            if self._reload_wanted.is_set():
                self._reload_wanted.clear()
                await asyncio.to_thread(self.reload)

    async def run(self, storage: Storage, data_dir: Path) -> None:
        """Evaluate until cancelled: groups on their intervals, notifications, reloads."""
        self.storage = storage
        self.data_dir = data_dir
        saved = await asyncio.to_thread(load_saved, data_dir)
        self.evaluator.instances = saved.instances
        self.heartbeat_ms = saved.heartbeat_ms
        self.notifier = Notifier(self.settings, self._record_outcome)
        lost = self.outbox.resubmit(self.notifier, saved.outbox, self.clock)
        await write_events(storage, lost)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # SIGHUP reloads (Unix, main thread only)
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.notifier.run(), name="alert-notify")
                tasks.create_task(self._files.watch(self._reload_wanted.set), name="alert-watch")
                tasks.create_task(self._schedule(storage, data_dir), name="alert-schedule")
                if self.settings.heartbeat is not None:
                    tasks.create_task(self._heartbeat(data_dir), name="alert-heartbeat")
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)

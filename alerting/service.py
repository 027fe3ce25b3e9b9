"""The alert engine service: evaluates each rule group on its interval, moves alert instances
through their states, queues notifications, records history, and reloads its rules.

The parts live in their own modules (`rules`, `evaluate`, `state`, `notify`, `history`);
this one only schedules them and applies the notification policy (cooldown, re-notify,
send_resolved, critical supersedes warning).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerting.evaluate import (
    InstanceKey,
    LevelsByHost,
    Observation,
    instance_labels,
    observe,
    plan_queries,
    query_key,
)
from alerting.history import notification_event, transition_event, write_events
from alerting.notify import Notification, Notifier, Outcome
from alerting.rules import Group, Rule, RuleSet, load_ruleset
from alerting.settings import AlertingSettings
from alerting.state import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED,
    AlertInstance,
    advance,
    cooldown_over,
    load_saved,
    state_payload,
    write_state,
)
from alerting.templates import compose, dashboard_link, render
from fleetpulse.core.errors import ConfigError
from fleetpulse.core.samples import Labels, Series, label_value
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import Event, RangeQuery, Storage, StorageError
from fleetpulse.core.thresholds import Thresholds, find_thresholds_file
from fleetpulse.core.timeutil import format_time, now_ms

log = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0  # seconds between checks of the rule files for changes
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class CycleResult:
    events: list[Event]
    notifications: list[Notification]


def files_signature(paths: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    """What changes when a rule or thresholds file is edited, added or removed."""
    out = []
    for path in paths:
        candidates = [path]
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        for candidate in candidates:
            try:
                stat = candidate.stat()
            except OSError:
                continue
            out.append((str(candidate), stat.st_mtime_ns, stat.st_size))
    thresholds = find_thresholds_file(paths)
    if thresholds is not None and not any(p[0] == str(thresholds) for p in out):
        stat = thresholds.stat()
        out.append((str(thresholds), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


class AlertEngine:
    """Holds the rule set, the alert instances and the notifier for one process."""

    def __init__(self, settings: AlertingSettings, *, clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.clock = clock
        self.ruleset = RuleSet()
        self.instances: dict[InstanceKey, AlertInstance] = {}
        self.notifier: Notifier | None = None
        self.storage: Storage | None = None
        self.cycles = 0
        self.last_reload_error: ConfigError | None = None
        self._reload_wanted = asyncio.Event()
        self._signature: tuple[tuple[str, int, int], ...] = ()
        self._saved: str | None = None
        self._save_lock = asyncio.Lock()
        self.data_dir: Path | None = None
        # notifications submitted but without a final outcome yet, saved with the state
        self.outbox: dict[str, Notification] = {}
        self._orphan_events: list[Event] = []
        # thresholds.for_host per host, for as long as the rule set keeps these thresholds
        self._levels: tuple[Thresholds, LevelsByHost] = (Thresholds(), {})
        # selector -> series labels -> whether it matches: a series' labels never change
        self._matches: dict[Selector, dict[Labels, bool]] = {}

    # -- rules --------------------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        return self.ruleset.rules

    @property
    def files(self) -> int:
        return len(self.ruleset.files)

    def load(self) -> None:
        """Load rules and thresholds; raises ConfigError with file:line on any mistake."""
        self._signature = files_signature(self.settings.rules)
        self.ruleset = load_ruleset(
            self.settings.rules,
            self.settings.channel_names(),
            self.settings.interval,
            self.settings.rules_source,
        )
        self._matches = {}  # only to let the removed rules' answers go
        log.info("rules loaded rules=%d files=%d", len(self.rules), self.files)

    def reload(self) -> bool:
        """Load again; on a mistake keep the last good set and log why (one line per problem)."""
        try:
            self.load()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("rules reload refused, keeping the last good rules problem=%s", problem)
            # after the log lines: a watcher of this attribute may read the log at once
            self.last_reload_error = exc
            return False
        self.last_reload_error = None
        alerts = {rule.alert for rule in self.rules}
        now = self.clock()
        for key in [k for k in self.instances if k[0] not in alerts]:
            gone = self.instances.pop(key)
            if gone.state != INACTIVE:
                # close it in the history too, or /api/v1/alerts would show it forever
                self._orphan_events.append(
                    transition_event(
                        gone.labels,
                        now,
                        gone.state,
                        INACTIVE,
                        gone.value,
                        gone.threshold,
                        "rule removed",
                        None,
                    )
                )
                log.info("alert dropped with its rule alert=%s state=%s", gone.alert, gone.state)
        return True

    # -- evaluation ---------------------------------------------------------------------

    async def evaluate_group(self, storage: Storage, group: Group, now: int) -> CycleResult:
        """Evaluate every rule of `group` at `now`: at most one query per rule, concurrently.

        Rules over the same metric and window share one query within the cycle (see
        `plan_queries`), and each keeps only the series its own selector matches."""
        plan = plan_queries(group.rules)
        queries = {
            key: asyncio.ensure_future(
                storage.query_range(RangeQuery(selector, now - int(key[2] * 1000), now))
            )
            for key, selector in plan.items()
        }
        if queries:
            await asyncio.wait(queries.values())
        thresholds = self.ruleset.thresholds
        if self._levels[0] is not thresholds:
            self._levels = (thresholds, {})
        levels = self._levels[1]
        results: list[list[Observation] | BaseException] = []
        for rule in group.rules:
            key = query_key(rule)
            error = queries[key].exception()
            if error is not None:
                results.append(error)
                continue
            series = queries[key].result().series
            if plan[key] != rule.selector:
                series = self._matching(rule.selector, series)
            results.append(
                observe(rule, series, thresholds, tracked=self.instances, levels_by_host=levels)
            )
        events: list[Event] = []
        notes: list[Notification] = []
        for rule, result in zip(group.rules, results, strict=True):
            if isinstance(result, StorageError):
                # no data is not a resolve: the rule's instances hold their state
                log.warning("rule query failed alert=%s error=%s", rule.alert, result)
                continue
            if isinstance(result, BaseException):
                raise result
            self._apply(rule, result, now, events, notes)
        self._forget_quiet(group, now)
        self.cycles += 1
        return CycleResult(events, notes)

    def _matching(self, selector: Selector, series: list[Series]) -> list[Series]:
        """The series `selector` matches, remembering each answer: rules that share a query
        would otherwise match every series against their matchers every cycle."""
        known = self._matches.get(selector)
        if known is None or len(known) > 2 * len(series) + 100:
            # series come and go (containers, hosts): start afresh rather than grow forever
            known = self._matches[selector] = {}
        out = []
        for one in series:
            hit = known.get(one.labels)
            if hit is None:
                hit = known[one.labels] = selector.matches(one.labels)
            if hit:
                out.append(one)
        return out

    def _apply(
        self,
        rule: Rule,
        observations: list[Observation],
        now: int,
        events: list[Event],
        notes: list[Notification],
    ) -> None:
        for_ms, keep_ms, cooldown_ms = (
            int(rule.for_ * 1000),
            int(rule.keep_firing_for * 1000),
            int(rule.cooldown * 1000),
        )
        critical_firing: set[Labels] = set()
        if isinstance(rule.threshold, str):
            # critical first, so a warning instance knows whether its critical one is firing
            # (a numeric threshold has one severity: nothing to order)
            observations = sorted(observations, key=lambda o: SEVERITY_ORDER.get(o.severity, 3))
        for obs in observations:
            inst = self.instances.get(obs.key)
            if inst is None:
                if not obs.active:
                    continue  # nothing to track for a quiet series
                labels = instance_labels(rule, obs.series_labels, obs.severity)
                inst = AlertInstance(rule.alert, obs.severity, obs.series_labels, labels)
                self.instances[obs.key] = inst
            if obs.value is not None:
                inst.value, inst.threshold = obs.value, obs.threshold
            previous = inst.state
            started = inst.firing_since
            entered = advance(inst, obs.active, now, for_ms, keep_ms)
            if entered is not None:
                since = inst.pending_since if entered == PENDING else inst.firing_since
                events.append(
                    transition_event(
                        inst.labels,
                        now,
                        previous,
                        entered,
                        inst.value,
                        inst.threshold,
                        self._summary(rule, inst, entered),
                        since if entered in (PENDING, FIRING) else started,
                    )
                )
                log.info(
                    "alert %s alert=%s severity=%s host=%s value=%s",
                    entered,
                    rule.alert,
                    inst.severity,
                    label_value(inst.labels, "host"),
                    inst.value,
                )
            superseded = inst.severity == "warning" and inst.series_labels in critical_firing
            if inst.state == FIRING and inst.severity == "critical":
                critical_firing.add(inst.series_labels)
            if entered == RESOLVED:
                if rule.send_resolved and inst.notified_episode:
                    notes += self._notifications(rule, inst, RESOLVED, now, started)
                inst.notified_episode = False
                inst.firing_since = None
            elif inst.state == FIRING:
                if superseded:
                    inst.notified_episode = False  # the critical one speaks for this series
                elif cooldown_over(inst, now, cooldown_ms):
                    kind = "renotify" if inst.notified_episode else "firing"
                    notes += self._notifications(rule, inst, kind, now, inst.firing_since)
                    inst.last_notified = now
                    inst.notified_episode = True

    def _forget_quiet(self, group: Group, now: int) -> None:
        """Drop the group's inactive instances once their cooldown can no longer matter."""
        cooldowns = {rule.alert: int(rule.cooldown * 1000) for rule in group.rules}
        for key in [
            k
            for k, inst in self.instances.items()
            if inst.state == INACTIVE
            and k[0] in cooldowns
            and cooldown_over(inst, now, cooldowns[k[0]])
        ]:
            del self.instances[key]

    def _variables(self, rule: Rule, inst: AlertInstance, state: str) -> dict[str, Any]:
        labels = dict(inst.labels)
        started = inst.firing_since or inst.pending_since
        return {
            "labels": labels,
            "value": inst.value if inst.value is not None else float("nan"),
            "threshold": inst.threshold,
            "severity": inst.severity,
            "state": state,
            "alert": rule.alert,
            "started_at": format_time(started) if started else "",
            "grafana": dashboard_link(self.settings.grafana_url, labels.get("host", "")),
        }

    def _summary(self, rule: Rule, inst: AlertInstance, state: str) -> str:
        variables = self._variables(rule, inst, state)
        for key, template in rule.annotations:
            if key == "summary":
                return render(template, variables)
        return ""

    def _notifications(
        self, rule: Rule, inst: AlertInstance, kind: str, now: int, started: int | None
    ) -> list[Notification]:
        variables = self._variables(rule, inst, RESOLVED if kind == RESOLVED else FIRING)
        summary = self._summary(rule, inst, str(variables["state"]))
        extra = [
            render(t, variables) for k, t in rule.annotations if k in ("description", "runbook")
        ]
        message = compose(
            alert=rule.alert,
            state=RESOLVED if kind == RESOLVED else FIRING,
            severity=inst.severity,
            labels=dict(inst.labels),
            value=inst.value,
            threshold=inst.threshold,
            op=rule.op,
            summary="\n".join([summary, *extra]),
            started_ms=started or now,
            now_ms=now,
            grafana=str(variables["grafana"]),
            renotify=kind == "renotify",
        )
        channels = rule.notify if rule.notify is not None else self.settings.default_channels
        if not channels:
            log.warning("alert has no channel alert=%s kind=%s", rule.alert, kind)
        return [
            Notification(name, message.title, message.body, kind, inst.labels, now)
            for name in channels
        ]

    # -- the service --------------------------------------------------------------------

    async def _run_cycle(self, storage: Storage, data_dir: Path, groups: list[Group]) -> None:
        now = self.clock()
        # held from evaluation to the save: a delivery's save in between would write the new
        # cooldown clocks without the notifications they stand for
        async with self._save_lock:
            results = await asyncio.gather(*(self.evaluate_group(storage, g, now) for g in groups))
            events = [*self._orphan_events, *(e for r in results for e in r.events)]
            self._orphan_events = []
            notes = [n for r in results for n in r.notifications]
            # the new cooldown clocks and their notifications go to disk together, before
            # anything is sent: after a crash the restarted engine sends what is still in the
            # outbox (at least once), and nothing the cooldown already covered twice
            for note in notes:
                self.outbox[note.id] = note
            await self._write_state(data_dir)
        dropped = False
        if self.notifier is not None:
            for note in notes:
                if not self.notifier.submit(note):
                    # the channel's queue is full (dead for long): record the loss
                    lost = Outcome(note, 0, False, "queue full, dropped", now, True)
                    events.append(notification_event(lost))
                    del self.outbox[note.id]
                    dropped = True
        if dropped:
            await self.save(data_dir)
        await write_events(storage, events)

    async def save(self, data_dir: Path) -> None:
        """Write the instances and the outbox if they changed; one writer at a time, so an
        older snapshot never replaces a newer one."""
        async with self._save_lock:
            await self._write_state(data_dir)

    async def _write_state(self, data_dir: Path) -> None:
        """`save` for a caller that holds the lock. The payload is built here on the event
        loop, so the writer thread never sees the instances or the outbox change."""
        payload = state_payload(
            list(self.instances.values()), [n.to_json() for n in self.outbox.values()]
        )
        if payload != self._saved:
            await asyncio.to_thread(write_state, data_dir, payload)
            self._saved = payload

    async def _record_outcome(self, outcome: Outcome) -> None:
        if outcome.final:
            self.outbox.pop(outcome.notification.id, None)
            if self.data_dir is not None:
                # at once, not at the next cycle: the shorter the time a delivered
                # notification stays in the saved outbox, the rarer a duplicate after a crash
                await self.save(self.data_dir)
        if self.storage is not None:
            await write_events(self.storage, [notification_event(outcome)])

    async def _resubmit_outbox(self, notifier: Notifier, saved: list[dict[str, Any]]) -> None:
        """Hand the notifications a previous run left undelivered to their channels again."""
        notes: list[Notification] = []
        for entry in saved:
            try:
                notes.append(Notification.from_json(entry))
            except (KeyError, TypeError, ValueError) as exc:
                log.error("outbox entry unreadable, dropped error=%s", exc)
        lost: list[Event] = []
        for note in sorted(notes, key=lambda n: n.created_ms):
            self.outbox[note.id] = note
            if note.channel not in notifier.workers:
                reason = "channel no longer configured, dropped"
            elif not notifier.submit(note):
                reason = "queue full, dropped"
            else:
                log.info(
                    "notification resubmitted after a restart channel=%s kind=%s",
                    note.channel,
                    note.kind,
                )
                continue
            log.warning(
                "notification from the outbox not sent channel=%s kind=%s reason=%s",
                note.channel,
                note.kind,
                reason,
            )
            del self.outbox[note.id]
            lost.append(notification_event(Outcome(note, 0, False, reason, self.clock(), True)))
        if self.storage is not None:
            await write_events(self.storage, lost)

    async def _schedule(self, storage: Storage, data_dir: Path) -> None:
        due: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        while True:
            groups = {g.name: g for g in self.ruleset.groups}
            now = loop.time()
            for name in groups:
                due.setdefault(name, now)
            ready = [g for name, g in groups.items() if due[name] <= now]
            if ready:
                await self._run_cycle(storage, data_dir, ready)
                for group in ready:
                    # keep the grid; skip ticks missed during a slow cycle instead of bursting
                    nxt = due[group.name] + group.interval
                    due[group.name] = nxt if nxt > loop.time() else loop.time() + group.interval
            wait = min((due[n] for n in groups), default=loop.time() + self.settings.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload_wanted.wait(), max(0.0, wait - loop.time()))
            if self._reload_wanted.is_set():
                self._reload_wanted.clear()
                await asyncio.to_thread(self.reload)
                due = {name: t for name, t in due.items() if name in groups}

    async def _watch_files(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            signature = await asyncio.to_thread(files_signature, self.settings.rules)
            if signature != self._signature:
                self._signature = signature
                log.info("rule files changed, reloading")
                self._reload_wanted.set()

    def request_reload(self) -> None:
        log.info("reload requested")
        self._reload_wanted.set()

    async def run(self, storage: Storage, data_dir: Path) -> None:
        """Evaluate until cancelled: groups on their intervals, notifications, reloads."""
        self.storage = storage
        self.data_dir = data_dir
        saved = await asyncio.to_thread(load_saved, data_dir)
        self.instances = saved.instances
        self.notifier = Notifier(self.settings, self._record_outcome)
        await self._resubmit_outbox(self.notifier, saved.outbox)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # SIGHUP reloads (Unix, main thread only)
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.notifier.run(), name="alert-notify")
                tasks.create_task(self._watch_files(), name="alert-watch")
                tasks.create_task(self._schedule(storage, data_dir), name="alert-schedule")
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)

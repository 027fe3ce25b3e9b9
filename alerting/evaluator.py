"""The pure half of the alert engine: rules, thresholds, the series their queries returned and
the time in; the transitions, the events to record and the notifications to send out.

It keeps the alert instances (the state the engine saves) and moves them on as it decides;
it does no I/O, reads no clock and knows no store, so `fleetpulse rules test` and the tests
drive it directly. `alerting.engine` is the shell that queries, persists and delivers.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from alerting.events import transition_event
from alerting.notification import Notification, NotificationKind
from alerting.observe import LevelsByHost, Observation, instance_labels, observe
from alerting.policy import NotifyPolicy, channels
from alerting.render import message, summary
from alerting.rules import Rule
from alerting.severity import URGENCY, Severity
from alerting.state import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED,
    AlertInstance,
    AlertState,
    InstanceKey,
    advance,
    cooldown_over,
)
from fleetpulse.core.samples import Labels, Series
from fleetpulse.core.storage import Event
from fleetpulse.core.thresholds import Thresholds

WARNING, CRITICAL = Severity.WARNING, Severity.CRITICAL


@dataclass(frozen=True, slots=True)
class Transition:
    """An instance that entered a state (RESOLVED: it left firing and is inactive again)."""

    alert: str
    severity: Severity
    labels: Labels
    previous: AlertState
    entered: AlertState
    value: float | None


@dataclass(frozen=True, slots=True)
class Step:
    """What one evaluation decided, each list in the order it was decided."""

    transitions: list[Transition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # for the history, one per transition
    notifications: list[Notification] = field(default_factory=list)
    # (alert, kind) of the notifications due for a rule that has no channel to send them to
    unrouted: list[tuple[str, NotificationKind]] = field(default_factory=list)


class Evaluator:
    """Decides; the caller does. `instances` may be handed over (loaded from the state file)."""

    def __init__(
        self,
        *,
        default_channels: tuple[str, ...] = (),
        grafana_url: str = "",
        instances: dict[InstanceKey, AlertInstance] | None = None,
    ) -> None:
        self.default_channels = default_channels
        self.grafana_url = grafana_url
        self.instances: dict[InstanceKey, AlertInstance] = {} if instances is None else instances
        # thresholds.for_host per host, for as long as the rules keep these thresholds
        self._levels: tuple[Thresholds, LevelsByHost] = (Thresholds(), {})

    def evaluate(
        self,
        rules: Sequence[Rule],
        series: Sequence[Sequence[Series] | None],
        thresholds: Thresholds,
        now: int,
    ) -> Step:
        """Evaluate `rules` (a group's) at `now`: `series[i]` is what the query of `rules[i]`
        returned, its window up to `now` and its own selector applied; None when the query
        failed, and then the rule's instances hold their state: no data is not a resolve.

        Afterwards the rules' inactive instances whose cooldown is over are forgotten."""
        if self._levels[0] is not thresholds:
            self._levels = (thresholds, {})
        levels = self._levels[1]
        step = Step()
        for rule, found in zip(rules, series, strict=True):
            if found is not None:
                observed = observe(
                    rule, found, thresholds, tracked=self.instances, levels_by_host=levels
                )
                self._apply(rule, observed, now, step)
        self._forget_quiet(rules, now)
        return step

    def drop_rules(self, kept: Container[str], now: int) -> Step:
        """Forget the instances of every alert not in `kept` (their rule was removed); one that
        was pending or firing is closed in the history too, or it would show as open there."""
        step = Step()
        for key in [k for k in self.instances if k[0] not in kept]:
            gone = self.instances.pop(key)
            if gone.state != INACTIVE:
                step.transitions.append(
                    Transition(
                        gone.alert, gone.severity, gone.labels, gone.state, INACTIVE, gone.value
                    )
                )
                step.events.append(
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
        return step

    def _apply(self, rule: Rule, observations: list[Observation], now: int, step: Step) -> None:
        for_ms, keep_ms = int(rule.for_ * 1000), int(rule.keep_firing_for * 1000)
        policy = NotifyPolicy.of(rule)
        critical_firing: set[Labels] = set()
        if isinstance(rule.threshold, str):
            # critical first, so a warning instance knows whether its critical one is firing
            # (a numeric threshold has one severity: nothing to order)
            observations = sorted(observations, key=lambda o: URGENCY[o.severity])
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
                step.transitions.append(
                    Transition(
                        rule.alert, inst.severity, inst.labels, previous, entered, inst.value
                    )
                )
                step.events.append(
                    transition_event(
                        inst.labels,
                        now,
                        previous,
                        entered,
                        inst.value,
                        inst.threshold,
                        summary(rule, inst, entered, self.grafana_url),
                        since if entered in (PENDING, FIRING) else started,
                    )
                )
            superseded = inst.severity == WARNING and inst.series_labels in critical_firing
            if inst.state == FIRING and inst.severity == CRITICAL:
                critical_firing.add(inst.series_labels)
            kind = policy.due(inst, entered, now, superseded=superseded)
            if kind is not None:
                self._notify(
                    rule,
                    inst,
                    kind,
                    now,
                    started if entered == RESOLVED else inst.firing_since,
                    step,
                )
            if entered == RESOLVED:
                inst.firing_since = None  # kept until now for the messages' started_at

    def _notify(
        self,
        rule: Rule,
        inst: AlertInstance,
        kind: NotificationKind,
        now: int,
        started: int | None,
        step: Step,
    ) -> None:
        text = message(rule, inst, kind, now, started, self.grafana_url)
        names = channels(rule, self.default_channels)
        if not names:
            step.unrouted.append((rule.alert, kind))
        step.notifications.extend(
            Notification(name, text.title, text.body, kind, inst.labels, now) for name in names
        )

    def _forget_quiet(self, rules: Sequence[Rule], now: int) -> None:
        """Drop the rules' inactive instances once their cooldown can no longer matter."""
        cooldowns = {rule.alert: int(rule.cooldown * 1000) for rule in rules}
        for key in [
            k
            for k, inst in self.instances.items()
            if inst.state == INACTIVE
            and k[0] in cooldowns
            and cooldown_over(inst, now, cooldowns[k[0]])
        ]:
            del self.instances[key]

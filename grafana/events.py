"""Flux over the event measurements: alert events (history, active, annotations) and logs.

Alert events carry `state`, `summary`, `value`, ... as fields, so queries pivot the fields of
one event into one row; the instance is the rest of the series key (its labels).
"""

from __future__ import annotations

from fleetpulse.core.storage import AGENT_LOGS, ALERT_EVENTS
from grafana.contract import ACTIVE_LOOKBACK, AGENT_LOGS_TIER, ALERT_EVENTS_TIER, Buckets
from grafana.flux import RANGE, pipeline

ACTIVE_STATES = ("firing", "pending")
TRANSITIONS = 'r.event == "transition"'
PIVOT = 'pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
EVENT_COLUMNS = '"_time", "state", "severity", "alertname", "host", "value", "threshold", "summary"'


def _alerts(buckets: Buckets, where: str, range_step: str = RANGE) -> str:
    return (
        f'from(bucket: "{buckets.of_tier(ALERT_EVENTS_TIER)}")\n    |> {range_step}\n'
        f'    |> filter(fn: (r) => r._measurement == "{ALERT_EVENTS}" and {TRANSITIONS} '
        f"and {where})"
    )


def _fields(*names: str) -> str:
    return "filter(fn: (r) => " + " or ".join(f'r._field == "{n}"' for n in names) + ")"


def alert_history(buckets: Buckets, where: str) -> str:
    """Every alert transition in the range, newest first, one row per event."""
    return pipeline(
        _alerts(buckets, where),
        [
            _fields("state", "summary", "value", "threshold"),
            PIVOT,
            "group()",
            f"keep(columns: [{EVENT_COLUMNS}])",
            'sort(columns: ["_time"], desc: true)',
            "limit(n: 5000)",
        ],
    )


def _latest_per_instance(buckets: Buckets, where: str) -> list[str]:
    # After the pivot each table is one alert instance (its labels); its latest transition
    # says whether it is active. Look back as far as the API does for open alerts.
    return [
        _alerts(buckets, where, f"range(start: -{ACTIVE_LOOKBACK})"),
        _fields("state", "summary", "value", "threshold"),
        PIVOT,
        'sort(columns: ["_time"])',
        'last(column: "_time")',
    ]


def active_alerts(buckets: Buckets, where: str) -> str:
    head, *steps = _latest_per_instance(buckets, where)
    states = " or ".join(f'r.state == "{s}"' for s in ACTIVE_STATES)
    return pipeline(
        head,
        [
            *steps,
            f"filter(fn: (r) => {states})",
            "group()",
            f"keep(columns: [{EVENT_COLUMNS}])",
            'sort(columns: ["_time"], desc: true)',
        ],
    )


def active_count(buckets: Buckets, where: str, state: str = "firing") -> str:
    head, *steps = _latest_per_instance(buckets, where)
    return pipeline(
        head,
        [
            *steps,
            f'filter(fn: (r) => r.state == "{state}")',
            "group()",
            'count(column: "_time")',
            'rename(columns: {_time: "_value"})',
        ],
    )


def alert_annotations(buckets: Buckets, where: str) -> str:
    """Alert transitions as annotations: `text` says what happened, `tags` names the alert."""
    return pipeline(
        _alerts(buckets, where),
        [
            _fields("state", "summary"),
            PIVOT,
            "map(fn: (r) => ({_time: r._time, "
            'text: r.state + " " + r.alertname + " (" + r.severity + "): " + r.summary, '
            "tags: r.alertname}))",
            "group()",
        ],
    )


def _logs(buckets: Buckets, where: str) -> str:
    return (
        f'from(bucket: "{buckets.of_tier(AGENT_LOGS_TIER)}")\n    |> {RANGE}\n'
        f'    |> filter(fn: (r) => r._measurement == "{AGENT_LOGS}" and {where})'
    )


TEXT_FILTER = (
    "filter(fn: (r) => strings.containsStr("
    "v: strings.toLower(v: r._value), substr: strings.toLower(v: ${search:doublequote})))"
)


def agent_logs(buckets: Buckets, where: str) -> str:
    """Exporter log lines for a logs panel: time, message, level and logger as labels."""
    return 'import "strings"\n\n' + pipeline(
        _logs(buckets, where),
        [
            _fields("message"),
            TEXT_FILTER,
            'keep(columns: ["_time", "_value", "host", "level", "logger"])',
            'rename(columns: {_value: "message"})',
            "group()",
            'sort(columns: ["_time"], desc: true)',
            "limit(n: 2000)",
        ],
    )


def log_volume(buckets: Buckets, where: str) -> str:
    """Log lines per window and level."""
    return 'import "strings"\n\n' + pipeline(
        _logs(buckets, where),
        [
            _fields("message"),
            TEXT_FILTER,
            'keep(columns: ["_time", "_value", "level"])',
            'group(columns: ["level"])',
            'sort(columns: ["_time"])',
            "aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)",
        ],
    )

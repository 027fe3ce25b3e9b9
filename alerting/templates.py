"""Notification text: rule annotations and message titles/bodies rendered by sandboxed Jinja2.

Rule authors write templates, so they render in Jinja2's sandbox: no attribute access to
Python internals, no file or module access. Templates compile when rules load, so a syntax
error is a `file:line` problem rather than a broken message at 3 a.m.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from alerting.severity import Severity
from alerting.state import RESOLVED, AlertState
from fleetpulse.core.durations import human_duration
from fleetpulse.core.timeutil import format_time

log = logging.getLogger(__name__)

ENV = SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)


def compile_template(text: str) -> jinja2.Template:
    """Raises jinja2.TemplateSyntaxError (with `.lineno` and `.message`) on a bad template."""
    return ENV.from_string(text)


def render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    """The rendered text; a template that fails at runtime yields its error, not a crash."""
    try:
        return template.render(variables)
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError) as exc:
        log.warning("template failed error=%s", exc)
        return f"(template error: {exc})"


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str


def dashboard_link(grafana_url: str, host: str) -> str:
    """The host's page on the provisioned Grafana dashboard (variable `host`)."""
    if not grafana_url or not host:
        return ""
    return f"{grafana_url}/d/fleetpulse-host/fleetpulse-host?var-host={quote(host)}"


def format_value(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def compose(
    *,
    alert: str,
    state: AlertState,
    severity: Severity,
    labels: dict[str, str],
    value: float | None,
    threshold: float,
    op: str,
    summary: str,
    started_ms: int,
    now_ms: int,
    grafana: str,
    renotify: bool = False,
) -> Message:
    """Concise title and body for a firing, re-notified or resolved alert."""
    host = labels.get("host", "")
    where = f" on {host}" if host else ""
    sev = severity.upper()
    if state == RESOLVED:
        title = f"[RESOLVED] {alert}{where}"
        lines = [
            summary,
            f"Resolved after firing for {human_duration(max(0, now_ms - started_ms) / 1000)} "
            f"(since {format_time(started_ms)}); value now {format_value(value)}.",
        ]
    else:
        title = f"[{sev}] {alert}{where}" + (" (still firing)" if renotify else "")
        lines = [
            summary,
            f"Value {format_value(value)} {op} {format_value(threshold)} since "
            f"{format_time(started_ms)}.",
        ]
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("job",))
    if shown:
        lines.append(f"Labels: {shown}")
    if grafana:
        lines.append(f"Dashboard: {grafana}")
    return Message(title, "\n".join(line for line in lines if line))

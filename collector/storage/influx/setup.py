"""`fleetpulse influx setup`: the org, the three buckets with their retention, and the Flux
downsampling tasks, created when missing and updated in place when they differ (idempotent).

The collector calls `ensure_influx_setup` at start, too. It talks to the v2 HTTP API with
aiohttp directly because the async influxdb-client has no buckets, orgs or tasks API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp

from collector.errors import CollectorError
from collector.storage.influx.tasks import TaskSpec, bucket_of, rollup_tasks
from collector.storage.settings import InfluxSettings, StorageSettings
from fleetpulse.core.durations import format_duration
from fleetpulse.core.tiers import TIERS, RetentionSettings, retention_ms

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR = 0, 1


class InfluxSetupError(CollectorError):
    """Setup could not finish: InfluxDB unreachable, token refused, or an API error."""


@dataclass(frozen=True, slots=True)
class SetupChange:
    kind: str  # org | bucket | task
    name: str
    action: str  # created | updated | unchanged
    detail: str = ""

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.action:<9} {self.kind:<6} {self.name}{detail}"


# Messages for statuses that need the operator, not a retry.
STATUS_HINTS = {
    401: "the token was refused; check storage.influxdb.token (setup needs an operator or "
    "all-access token)",
    403: "the token may not do this; setup needs an operator or all-access token",
}


class AdminApi:
    """The few v2 admin calls setup needs, with a timeout on each and clear errors."""

    def __init__(self, session: aiohttp.ClientSession, settings: InfluxSettings) -> None:
        self.session = session
        self.base = settings.url.rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        allow_404: bool = False,
    ) -> dict[str, Any] | None:
        url = self.base + path
        try:
            async with self.session.request(method, url, params=params, json=body) as response:
                text = await response.text()
                if response.status == 404 and allow_404:
                    return None
                if response.status >= 400:
                    raise InfluxSetupError(self._describe(method, path, response.status, text))
                return dict(await response.json(content_type=None)) if text.strip() else {}
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise InfluxSetupError(f"cannot reach InfluxDB at {self.base}: {reason}") from None
        except ValueError as exc:
            raise InfluxSetupError(
                f"InfluxDB at {self.base} answered {method} {path} with invalid JSON: {exc}"
            ) from None

    def _describe(self, method: str, path: str, status: int, text: str) -> str:
        message = text.strip()[:300]
        with contextlib.suppress(ValueError, AttributeError):  # not InfluxDB's JSON error
            message = str(json.loads(text).get("message", message))
        hint = STATUS_HINTS.get(status, "")
        where = f"InfluxDB at {self.base} refused {method} {path}: HTTP {status}: {message}"
        return f"{where}; {hint}" if hint else where


async def _ensure_org(api: AdminApi, name: str) -> tuple[str, SetupChange]:
    found = await api.call("GET", "/api/v2/orgs", params={"org": name}, allow_404=True)
    orgs = [o for o in (found or {}).get("orgs", []) if o.get("name") == name]
    if orgs:
        return str(orgs[0]["id"]), SetupChange("org", name, "unchanged")
    created = await api.call("POST", "/api/v2/orgs", body={"name": name}) or {}
    return str(created["id"]), SetupChange("org", name, "created")


def _expire_seconds(bucket: dict[str, Any]) -> int:
    for rule in bucket.get("retentionRules") or []:
        if rule.get("type", "expire") == "expire":
            return int(rule.get("everySeconds", 0))
    return 0  # 0 means forever in InfluxDB


async def _ensure_bucket(api: AdminApi, org_id: str, name: str, seconds: int) -> SetupChange:
    rules = [{"type": "expire", "everySeconds": seconds}]
    retention = format_duration(seconds)
    found = await api.call(
        "GET", "/api/v2/buckets", params={"orgID": org_id, "name": name}, allow_404=True
    )
    buckets = [b for b in (found or {}).get("buckets", []) if b.get("name") == name]
    if not buckets:
        await api.call(
            "POST",
            "/api/v2/buckets",
            body={"orgID": org_id, "name": name, "retentionRules": rules},
        )
        return SetupChange("bucket", name, "created", f"retention {retention}")
    bucket = buckets[0]
    current = _expire_seconds(bucket)
    if current == seconds:
        return SetupChange("bucket", name, "unchanged", f"retention {retention}")
    await api.call("PATCH", f"/api/v2/buckets/{bucket['id']}", body={"retentionRules": rules})
    before = format_duration(current) if current else "forever"
    return SetupChange("bucket", name, "updated", f"retention {before} -> {retention}")


async def _ensure_task(api: AdminApi, org_id: str, spec: TaskSpec) -> SetupChange:
    found = await api.call(
        "GET", "/api/v2/tasks", params={"orgID": org_id, "name": spec.name}, allow_404=True
    )
    tasks = [t for t in (found or {}).get("tasks", []) if t.get("name") == spec.name]
    every = f"every {spec.every}, offset {spec.offset}"
    if not tasks:
        await api.call(
            "POST",
            "/api/v2/tasks",
            body={
                "orgID": org_id,
                "flux": spec.flux,
                "status": "active",
                "description": "FleetPulse downsampling (managed by fleetpulse influx setup)",
            },
        )
        return SetupChange("task", spec.name, "created", every)
    if len(tasks) > 1:
        log.warning("influx setup found several tasks named %s; updating the first", spec.name)
    task = tasks[0]
    status = str(task.get("status", "active"))
    note = every if status == "active" else f"{every}; left {status} as you set it"
    if task.get("flux") == spec.flux:
        return SetupChange("task", spec.name, "unchanged", note)
    await api.call("PATCH", f"/api/v2/tasks/{task['id']}", body={"flux": spec.flux})
    return SetupChange("task", spec.name, "updated", f"{note}; new Flux body")


async def ensure_influx_setup(
    settings: InfluxSettings, retention: RetentionSettings
) -> list[SetupChange]:
    """Make InfluxDB match the config: org, buckets with retention, rollup tasks.

    Returns what was created, updated or left unchanged; raises InfluxSetupError.
    """
    headers = {"Authorization": f"Token {settings.token}"} if settings.token else {}
    timeout = aiohttp.ClientTimeout(total=settings.timeout)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        api = AdminApi(session, settings)
        org_id, org_change = await _ensure_org(api, settings.org)
        changes = [org_change]
        for tier in TIERS:
            seconds = retention_ms(retention, tier.name) // 1000
            changes.append(
                await _ensure_bucket(api, org_id, bucket_of(settings.bucket, tier.name), seconds)
            )
        for spec in rollup_tasks(settings.bucket):
            changes.append(await _ensure_task(api, org_id, spec))
    for change in changes:
        if change.action != "unchanged":
            log.info(
                "influx setup %s kind=%s name=%s detail=%s",
                change.action,
                change.kind,
                change.name,
                change.detail,
            )
    return changes


def run_influx_setup(storage: StorageSettings, retention: RetentionSettings) -> int:
    settings = storage.influxdb
    try:
        changes = asyncio.run(ensure_influx_setup(settings, retention))
    except InfluxSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"InfluxDB {settings.url} org {settings.org}:")
    for change in changes:
        print(f"  {change}")
    if storage.backend != "influxdb":
        print(
            f"note: storage.backend is {storage.backend}; the collector writes to "
            "InfluxDB only with storage.backend: influxdb"
        )
    return EXIT_OK

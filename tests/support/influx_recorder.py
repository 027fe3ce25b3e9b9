"""A recording InfluxDB 2.x HTTP API on loopback, for driving the real influxdb-client.

It speaks the v2 endpoints FleetPulse uses: `POST /api/v2/write` (gzip or plain), orgs,
buckets and tasks (GET/POST/PATCH), `POST /api/v2/query` (answers with annotated CSV that the
test supplies for each query), `/health` and `/ping`. It records what it receives and can be
told to misbehave: refuse connections, answer 503, 429 with Retry-After, or 401.

It does not run Flux: a test hands it the tables a query should return (`answer_queries`), and
the Flux text itself is checked by the Flux language service elsewhere.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from fleetpulse.core.listen import Listen
from fleetpulse.core.site import start_site

TOKEN = "test-token"
_TASK_OPTION = re.compile(r"option\s+task\s*=\s*\{([^}]*)\}")


@dataclass(frozen=True)
class WriteRequest:
    org: str
    bucket: str
    precision: str
    content_encoding: str
    lines: list[str]


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, str | float]
    ts: int


@dataclass
class CsvTable:
    """One table of a query answer: columns as (name, datatype, in group key)."""

    columns: list[tuple[str, str, bool]]
    rows: list[list[str]]


@dataclass
class Fault:
    status: int  # 0: never answer (hang until the client gives up)
    retry_after: str | None = None
    remaining: int | None = None  # None: until healed
    released: asyncio.Event = field(default_factory=asyncio.Event)  # set by heal()


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    r"""As InfluxDB reads measurements, tag keys and values: only `\,`, `\ ` and `\=` are
    escapes; any other backslash is data."""
    return re.sub(r"\\([, =])", r"\1", text)


def parse_line(line: str) -> Point:
    """Parse one line of line protocol (string fields without spaces-in-quotes subtleties
    beyond escaped quotes, which is all FleetPulse writes)."""
    head, rest = _split_unescaped(line, " ")[0], line
    rest = line[len(head) + 1 :]
    # fields end at the last space (the timestamp follows it)
    fields_text, _, ts = rest.rpartition(" ")
    key_parts = _split_unescaped(head, ",")
    tags = {}
    for part in key_parts[1:]:
        key, value = _split_unescaped(part, "=")
        tags[_unescape(key)] = _unescape(value)
    fields: dict[str, str | float] = {}
    for part in _split_fields(fields_text):
        key, _, value = part.partition("=")
        if value.startswith('"'):
            fields[_unescape(key)] = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        else:
            fields[_unescape(key)] = float(value)
    return Point(_unescape(key_parts[0]), tags, fields, int(ts))


def _split_fields(text: str) -> list[str]:
    parts, current, in_string, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        if ch == "," and not in_string:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def rfc3339(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def series_table(
    measurement: str, labels: dict[str, str], points: Sequence[tuple[int, float]]
) -> CsvTable:
    """A table as InfluxDB returns it after `drop(columns: ["_start", "_stop", "_field"])`."""
    columns = [
        ("result", "string", False),
        ("table", "long", False),
        ("_time", "dateTime:RFC3339", False),
        ("_value", "double", False),
        ("_measurement", "string", True),
        *[(name, "string", True) for name in sorted(labels)],
    ]
    rows = [
        ["", "", rfc3339(ts), repr(value), measurement, *[labels[n] for n in sorted(labels)]]
        for ts, value in points
    ]
    return CsvTable(columns, rows)


def annotated_csv(tables: Sequence[CsvTable]) -> str:
    """Annotated CSV as `/api/v2/query` answers; a new header block per table schema."""
    out: list[str] = []
    for index, table in enumerate(tables):
        names = [c[0] for c in table.columns]
        if out:
            out.append("")
        # The first cell of each line is the annotation column; `result` defaults to _result.
        out.append("#group," + ",".join("true" if c[2] else "false" for c in table.columns))
        out.append("#datatype," + ",".join(c[1] for c in table.columns))
        out.append(
            "#default," + ",".join("_result" if c[0] == "result" else "" for c in table.columns)
        )
        out.append("," + ",".join(names))
        for row in table.rows:
            cells = list(row)
            cells[names.index("table")] = str(index)
            out.append("," + ",".join(_csv_cell(c) for c in cells))
    return "\r\n".join(out) + "\r\n\r\n"


def _csv_cell(text: str) -> str:
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


QueryAnswer = Callable[[str], Sequence[CsvTable]]


@dataclass
class InfluxRecorder:
    token: str = TOKEN
    writes: list[WriteRequest] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    mutations: list[str] = field(default_factory=list)  # "POST /api/v2/buckets name" etc.
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    write_fault: Fault | None = None
    write_attempts: int = 0
    max_lines: int | None = None  # a larger write is refused with 413, as a body size limit
    answer: QueryAnswer = lambda text: []
    port: int = 0
    _runner: web.AppRunner | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- control ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._token_check])
        app.router.add_post("/api/v2/write", self._write)
        app.router.add_post("/api/v2/query", self._query)
        app.router.add_get("/api/v2/orgs", self._list_orgs)
        app.router.add_post("/api/v2/orgs", self._create_org)
        app.router.add_get("/api/v2/buckets", self._list_buckets)
        app.router.add_post("/api/v2/buckets", self._create_bucket)
        app.router.add_patch("/api/v2/buckets/{id}", self._patch_bucket)
        app.router.add_get("/api/v2/tasks", self._list_tasks)
        app.router.add_post("/api/v2/tasks", self._create_task)
        app.router.add_patch("/api/v2/tasks/{id}", self._patch_task)
        app.router.add_get("/health", self._health)
        app.router.add_get("/ping", self._ping)
        self._runner, bound = await start_site(
            app, Listen("127.0.0.1", self.port), shutdown_timeout=0.1
        )
        self.port = bound.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def refuse_connections(self) -> None:
        """Stop listening (connections are refused); `start()` listens on the same port."""
        await self.stop()

    def fail_writes(
        self, status: int, *, retry_after: str | None = None, times: int | None = None
    ) -> None:
        self.write_fault = Fault(status, retry_after, times)

    def hang_writes(self) -> None:
        """Accept write requests but never answer them (until healed)."""
        self.write_fault = Fault(0)

    def heal(self) -> None:
        if self.write_fault is not None:
            self.write_fault.released.set()
        self.write_fault = None

    def answer_queries(self, answer: QueryAnswer) -> None:
        self.answer = answer

    # -- what was received --------------------------------------------------------------

    def lines(self, bucket: str | None = None) -> list[str]:
        return [
            line for w in self.writes if bucket is None or w.bucket == bucket for line in w.lines
        ]

    def points(self, bucket: str | None = None) -> list[Point]:
        return [parse_line(line) for line in self.lines(bucket)]

    # -- handlers -----------------------------------------------------------------------

    @web.middleware
    async def _token_check(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Every /api/v2 call needs the token (health and ping do not), as in InfluxDB."""
        if request.path == "/api/v2/write":
            self.write_attempts += 1  # refused ones too
        if request.path.startswith("/api/v2/") and not self._authorized(request):
            return self._unauthorized()
        return await handler(request)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Token {self.token}"

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message}, status=status)

    def _unauthorized(self) -> web.Response:
        return self._error(401, "unauthorized", "unauthorized access")

    async def _body(self, request: web.Request) -> bytes:
        body = await request.read()
        if body[:2] == b"\x1f\x8b":  # aiohttp may already have decompressed it
            body = gzip.decompress(body)
        return body

    async def _write(self, request: web.Request) -> web.Response:
        fault = self.write_fault
        if fault is not None:
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.write_fault = None
            if fault.status == 0:
                await fault.released.wait()
                return web.Response(status=204)  # too late: the client gave up long ago
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.json_response(
                {"code": "unavailable", "message": f"recorder fault {fault.status}"},
                status=fault.status,
                headers=headers,
            )
        bucket = request.query.get("bucket", "")
        if bucket not in {b["name"] for b in self.buckets.values()} and self.buckets:
            return self._error(404, "not found", f'bucket "{bucket}" not found')
        body = await self._body(request)
        if self.max_lines is not None and body.count(b"\n") + 1 > self.max_lines:
            return self._error(413, "request too large", "request entity too large")
        self.writes.append(
            WriteRequest(
                org=request.query.get("org", ""),
                bucket=bucket,
                precision=request.query.get("precision", "ns"),
                content_encoding=request.headers.get("Content-Encoding", ""),
                lines=[line for line in body.decode().split("\n") if line],
            )
        )
        return web.Response(status=204)

    async def _query(self, request: web.Request) -> web.Response:
        payload = json.loads(await self._body(request))
        text = payload["query"]
        self.queries.append(text)
        return web.Response(
            text=annotated_csv(self.answer(text)), content_type="text/csv", charset="utf-8"
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"name": "influxdb", "status": "pass", "version": "v2.7.10"})

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    def _new_id(self) -> str:
        return f"{next(self._ids):016x}"

    async def _list_orgs(self, request: web.Request) -> web.Response:
        name = request.query.get("org")
        orgs = [o for o in self.orgs.values() if name is None or o["name"] == name]
        if name is not None and not orgs:
            return self._error(404, "not found", f'organization name "{name}" not found')
        return web.json_response({"orgs": orgs})

    async def _create_org(self, request: web.Request) -> web.Response:
        payload = await request.json()
        org = {"id": self._new_id(), "name": payload["name"]}
        self.orgs[org["id"]] = org
        self.mutations.append(f"create org {payload['name']}")
        return web.json_response(org, status=201)

    async def _list_buckets(self, request: web.Request) -> web.Response:
        org_id, name = request.query.get("orgID"), request.query.get("name")
        found = [
            b
            for b in self.buckets.values()
            if (org_id is None or b["orgID"] == org_id) and (name is None or b["name"] == name)
        ]
        return web.json_response({"buckets": found})

    async def _create_bucket(self, request: web.Request) -> web.Response:
        payload = await request.json()
        if any(b["name"] == payload["name"] for b in self.buckets.values()):
            return self._error(
                422, "conflict", f"bucket with name {payload['name']} already exists"
            )
        bucket = {
            "id": self._new_id(),
            "orgID": payload["orgID"],
            "name": payload["name"],
            "retentionRules": payload.get("retentionRules", []),
        }
        self.buckets[bucket["id"]] = bucket
        self.mutations.append(f"create bucket {payload['name']}")
        return web.json_response(bucket, status=201)

    async def _patch_bucket(self, request: web.Request) -> web.Response:
        bucket = self.buckets.get(request.match_info["id"])
        if bucket is None:
            return self._error(404, "not found", "bucket not found")
        payload = await request.json()
        bucket.update({k: v for k, v in payload.items() if k in ("retentionRules", "name")})
        self.mutations.append(f"update bucket {bucket['name']}")
        return web.json_response(bucket)

    async def _list_tasks(self, request: web.Request) -> web.Response:
        org_id, name = request.query.get("orgID"), request.query.get("name")
        found = [
            t
            for t in self.tasks.values()
            if (org_id is None or t["orgID"] == org_id) and (name is None or t["name"] == name)
        ]
        return web.json_response({"tasks": found})

    @staticmethod
    def _task_options(flux: str) -> dict[str, str]:
        match = _TASK_OPTION.search(flux)
        if match is None:
            return {}
        options = {}
        for part in match.group(1).split(","):
            key, _, value = part.partition(":")
            options[key.strip()] = value.strip().strip('"')
        return options

    async def _create_task(self, request: web.Request) -> web.Response:
        payload = await request.json()
        options = self._task_options(payload["flux"])
        if "name" not in options:
            return self._error(400, "invalid", "task must have an option task with a name")
        task = {
            "id": self._new_id(),
            "orgID": payload["orgID"],
            "name": options["name"],
            "every": options.get("every", ""),
            "offset": options.get("offset", ""),
            "flux": payload["flux"],
            "status": payload.get("status", "active"),
            "description": payload.get("description", ""),
        }
        self.tasks[task["id"]] = task
        self.mutations.append(f"create task {task['name']}")
        return web.json_response(task, status=201)

    async def _patch_task(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self._error(404, "not found", "task not found")
        payload = await request.json()
        if "flux" in payload:
            options = self._task_options(payload["flux"])
            task.update(
                flux=payload["flux"],
                every=options.get("every", ""),
                offset=options.get("offset", ""),
                name=options.get("name", task["name"]),
            )
        if "status" in payload:
            task["status"] = payload["status"]
        self.mutations.append(f"update task {task['name']}")
        return web.json_response(task)

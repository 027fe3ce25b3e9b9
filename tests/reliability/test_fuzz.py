"""Fuzzing with hypothesis (bounded example counts): the config loader, the rule loader, the
exposition parser where tests/collector/test_parse.py leaves a gap, and the HTTP API's
parameters against a real API on a real SQLite store.

The contract checked: no crash; a bad file is a ConfigError whose every problem names the
file and a line; a bad request is a 4xx with a JSON `{"error": ...}` body, never a 500.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerting.events import transition_event
from alerting.history import write_events
from alerting.rules import load_rule_file
from alerting.state import FIRING, PENDING
from collector.parse import ParseError, parse_exposition
from collector.storage.sqlite import SqliteStorage
from fleetpulse.app.config import load_config
from fleetpulse.core.errors import ConfigError
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.storage import AGENT_LOGS, Event
from fleetpulse.core.thresholds import Thresholds
from fleetpulse.core.timeutil import now_ms
from tests.support.api import ServeApi

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- config and rule documents ------------------------------------------------------------

CONFIG_KEYS = [
    "storage", "backend", "sqlite", "influxdb", "path", "url", "org", "token", "token_file",
    "bucket", "timeout", "batch_size", "flush_interval", "max_retries", "spool_max_bytes",
    "retention", "raw", "hourly", "daily", "scrape", "interval", "targets", "host", "labels",
    "bearer_token", "bearer_token_file", "basic_auth", "username", "password_file",
    "tls_ca_file", "tls_insecure", "file_sd", "file_sd_refresh", "alerting", "rules", "channels",
    "default_channels", "api", "listen", "exporter", "auth", "tls", "cert_file", "key_file",
    "job", "containers", "include", "exclude", "x", "",
]  # fmt: skip
RULE_KEYS = [
    "groups", "name", "interval", "rules", "alert", "metric", "reduce", "window", "op",
    "threshold", "for", "keep_firing_for", "cooldown", "notify", "send_resolved", "labels",
    "annotations", "summary", "description", "severity", "x",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "15s",
            "0s",
            "-1s",
            "1h",
            "1e9h",
            "5m",
            "",
            "http://127.0.0.1:1/metrics",
            "ftp://x",
            "sqlite",
            "influxdb",
            ">",
            "==",
            "avg",
            "rate",
            "cpu",
            "${NOPE}",
            "${HOME}",
            "{{ labels.host }}",
            "{{ ''.__class__ }}",
            "{% if %}",
            'up{host="a"}',
            "up{",
            "127.0.0.1:0",
            "[::1]:9185",
            "host:99999",
            "/nonexistent/file",
            "rules/",
            "*.yaml",
        ]
    ),
    st.text(max_size=20),
)


def documents(keys: list[str]) -> st.SearchStrategy[Any]:
    """Nested mappings and lists whose keys are mostly the loader's own (so the documents
    reach deep into validation) and whose leaves are awkward scalars."""
    return st.recursive(
        SCALARS,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.sampled_from(keys), children, max_size=6),
        ),
        max_leaves=30,
    )


def check_located(exc: ConfigError, path: Path) -> None:
    assert exc.problems, "a ConfigError carries at least one problem"
    for problem in exc.problems:
        assert problem.file == str(path), problem
        assert problem.line >= 1, f"no line for: {problem}"
        assert str(problem).startswith(f"{path}:{problem.line}: "), problem


def check_located_text(exc: ConfigError, path: Path) -> None:
    """check_located for raw text: "not valid UTF-8" is about the whole file (no line);
    everything else has one."""
    for problem in exc.problems:
        assert problem.file == str(path), problem
        assert problem.line >= 1 or "UTF-8" in problem.message, problem


@FUZZ
@given(st.dictionaries(st.sampled_from(CONFIG_KEYS), documents(CONFIG_KEYS), max_size=6))
def test_random_config_documents_load_or_fail_with_file_and_line(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    path = tmp_path / "fleetpulse.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    try:
        load_config(path)
    except ConfigError as exc:
        check_located(exc, path)


YAMLISH = st.lists(
    st.one_of(
        st.sampled_from([*CONFIG_KEYS, ": ", ":", "- ", "\n", "  ", "[", "]", "{", "}", ",",
                                      "'", '"', "#", "&a", "*a", "!!python/object", "|", ">",
                                      "%YAML", "---", "...", "\t", "\\", "${X}", "\x00", "15s"]),
        st.text(max_size=5),
    ),
    max_size=40,
).map("".join)  # fmt: skip


@FUZZ
@given(YAMLISH)
def test_yamlish_text_loads_or_fails_with_file_and_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fleetpulse.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as exc:
        check_located_text(exc, path)


RULE_DOCUMENTS = st.fixed_dictionaries(
    {
        "groups": st.lists(
            st.fixed_dictionaries(
                {
                    "name": SCALARS,
                    "rules": st.lists(
                        st.dictionaries(st.sampled_from(RULE_KEYS), documents(RULE_KEYS)),
                        max_size=3,
                    ),
                },
                optional={"interval": SCALARS},
            ),
            max_size=3,
        )
    }
)


@FUZZ
@given(st.one_of(RULE_DOCUMENTS, documents(RULE_KEYS)))
def test_random_rule_files_load_or_fail_with_file_and_line(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    try:
        load_rule_file(path, Thresholds(), ("ops",))
    except ConfigError as exc:
        check_located(exc, path)


@FUZZ
@given(YAMLISH)
def test_yamlish_rule_text_loads_or_fails_with_file_and_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_rule_file(path)
    except ConfigError as exc:
        check_located_text(exc, path)


# --- the parser: what tests/collector/test_parse.py does not cover ------------------------
# It fuzzes text-format bodies; the OpenMetrics mode and huge label sets are not fuzzed there.


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_in_openmetrics_mode_parse_or_raise_parse_error(body: bytes) -> None:
    try:
        parse_exposition(body, openmetrics=True)
    except ParseError as error:
        # a missing `# EOF` is reported on the line after the last one, where it belongs
        assert 1 <= error.line <= body.count(b"\n") + 2


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.sampled_from(["", "\\n", '\\"', "é", "x" * 300]))
def test_wide_label_sets_parse_completely(count: int, value: str) -> None:
    body = "m{" + ",".join(f'l{i}="{value}{i}"' for i in range(count)) + "} 1\n"
    (sample,) = parse_exposition(body.encode())
    assert len(sample.labels) == count


# --- API parameters -------------------------------------------------------------------------

NO_SURROGATES = st.characters(exclude_categories=["Cs"])  # URLs carry UTF-8 only
PARAM_KEYS = ["metric", "start", "end", "step", "aggregate", "format", "host", "limit",
              "since", "level", "q", "x"]  # fmt: skip
PARAM_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "now",
            "-1h",
            "-24h",
            "-1e9h",
            "0",
            "-1",
            "1e309",
            "nan",
            "inf",
            "99999999999999999999999",
            "2026-11-27T10:00:00Z",
            "2026-13-45T99:00:00Z",
            "1764237600000",
            "1s",
            "1ms",
            "0s",
            "-5m",
            "host_cpu_usage_percent",
            "up",
            'up{host="web-1"}',
            "up{",
            'up{host=~"("}',
            "requests_total",
            "{}",
            "rate",
            "increase",
            "mean",
            "max",
            "csv",
            "json",
            "xml",
            "error",
            "debug",
            "10001",
            "%",
            "\x00",
            "../../etc/passwd",
            "a" * 5000,
        ]
    ),
    st.text(NO_SURROGATES, max_size=30),
)
PATHS = [
    "/api/v1/hosts",
    "/api/v1/hosts/{host}/metrics/history",
    "/api/v1/alerts",
    "/api/v1/alerts/history",
    "/api/v1/hosts/{host}/logs",
]
HOSTS = st.one_of(
    st.sampled_from(["web-1", "unknown", "web-1%2F..", "%00", "a" * 300]),
    st.text(NO_SURROGATES, min_size=1, max_size=20).map(lambda h: quote(h, safe="")),
)


AIOHTTP_MAX_LINE = 8190  # aiohttp's default limit on the request line


@pytest.fixture
async def api(store: SqliteStorage, serve_api: ServeApi) -> str:
    now = now_ms()
    labels = make_labels({"host": "web-1", "job": "node"})
    samples = []
    for i in range(60):
        ts = now - (60 - i) * 15_000
        samples += [
            Sample("up", labels, 1.0, ts),
            Sample("host_cpu_usage_percent", labels, float(i), ts),
            Sample("requests_total", labels, float(i * 10 % 170), ts),  # with a reset
        ]
    await store.write(samples)
    await write_events(
        store,
        [transition_event(labels, now - 60_000, PENDING, FIRING, 95.0, 90.0, "hot", now)],
    )
    await store.write_events(
        AGENT_LOGS,
        [Event(now - 1000, make_labels({"host": "web-1", "level": "info"}), (("message", "hi"),))],
    )
    return await serve_api()


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    host=HOSTS,
    params=st.lists(st.tuples(st.sampled_from(PARAM_KEYS), PARAM_VALUES), max_size=6),
    accept=st.sampled_from(["", "text/csv", "application/json", "*/*"]),
)
async def test_random_api_parameters_never_give_a_500_and_errors_are_json(
    api: str, path: str, host: str, params: list[tuple[str, str]], accept: str
) -> None:
    url = api + path.replace("{host}", host)
    headers = {"Accept": accept} if accept else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url, params=params, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
        ) as response,
    ):
        body = await response.text()
        status = response.status
        content_type = response.content_type
        request_line = len(str(response.url))
    assert status < 500, f"{status} for {url} {params}: {body[:300]}"
    if request_line > AIOHTTP_MAX_LINE and status >= 400:
        return  # refused by aiohttp's HTTP parser in plain text, before any handler runs
    if status >= 400:
        assert content_type == "application/json", (status, url, params, body[:300])
        payload = await_json(body)
        assert isinstance(payload.get("error"), str) and payload["error"], body[:300]
    elif content_type == "application/json":
        await_json(body)
    else:
        assert content_type == "text/csv", (url, params, content_type)


def await_json(body: str) -> dict[str, Any]:
    import json

    payload = json.loads(body)
    assert isinstance(payload, dict)
    return payload


@pytest.mark.parametrize(
    "path",
    ["/api/v1/hosts/web-1/metrics/history?metric=up&", "/api/v1/alerts/history?"],
)
@pytest.mark.parametrize("query", ["start=1e309", "start=inf", "end=1e300"])
async def test_out_of_range_times_are_a_400_not_a_500(api: str, path: str, query: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(api + path + query, timeout=aiohttp.ClientTimeout(total=30)) as response,
    ):
        assert response.status == 400, await response.text()
        assert "error" in await response.json()

"""Security: the exporter and the API refuse requests without a token, with a wrong one and
with a token in the query string; rule templates cannot reach Python internals; and no secret
ever shows in a log line, an error body or the exporter's `/logs`.

The exporter and the collector run as real subprocesses at debug log level, so every line they
log is captured and searched.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import jinja2
import pytest

from alerting.rules import load_rule_file
from alerting.templates import compile_template, render
from tests.reliability.procs import Service, start_service
from tests.support.influx_recorder import InfluxRecorder
from tests.support.servers import free_port

EXPORTER_TOKEN = "exp-SECRET-7f3a9c1e"
API_TOKEN = "api-SECRET-0b8d2e44"
INFLUX_TOKEN = "influx-SECRET-5c6d7e8f"  # wrong for the recorder, which wants "test-token"
TARGET_WRONG_TOKEN = "target-SECRET-wrong-91aa"
GUESS = "guess-SECRET-3141"  # what a client sends when it gets it wrong
SECRETS = (EXPORTER_TOKEN, API_TOKEN, INFLUX_TOKEN, TARGET_WRONG_TOKEN, GUESS)


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=20)) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def check_refusals(base: str, path: str, token: str, seen: list[str]) -> None:
    status, body, headers = await get(base + path)
    assert status == 401, body
    assert "unauthorized: missing credentials" in body
    assert headers.get("WWW-Authenticate", "").startswith("Bearer realm=")
    seen.append(body)
    status, body, _ = await get(base + path, bearer(GUESS))
    assert status == 401 and "wrong credentials" in body, body
    seen.append(body)
    status, body, _ = await get(base + path, {"Authorization": f"Basic {GUESS}"})
    assert status == 401, body
    seen.append(body)
    for key in ("token", "access_token", "api_key"):
        # refused even with the right token: it is in the URL now, so in proxy logs
        status, body, _ = await get(f"{base}{path}?{key}={token}", bearer(token))
        assert status == 400, body
        assert "credentials in the URL are refused" in body
        seen.append(body)
    status, body, _ = await get(base + path, bearer(token))
    seen.append(body)
    assert status != 401, body


async def test_exporter_and_api_refuse_bad_credentials_and_never_echo_a_secret(
    tmp_path: Path,
) -> None:
    (tmp_path / "exporter-token").write_text(EXPORTER_TOKEN + "\n")
    exporter_port = free_port()
    exporter_url = f"http://127.0.0.1:{exporter_port}"
    recorder = InfluxRecorder()
    await recorder.start()
    services: list[Service] = []
    bodies: list[str] = []
    try:
        exporter = await start_service(
            tmp_path,
            "exporter",
            "--listen",
            f"127.0.0.1:{exporter_port}",
            "--bearer-token-file",
            str(tmp_path / "exporter-token"),
            "--disable",
            "containers",
            "--interval",
            "1s",
        )
        services.append(exporter)
        await exporter.wait_line(lambda line: "exporter listening on" in line)
        (tmp_path / "fleetpulse.yaml").write_text(
            "storage:\n"
            "  backend: influxdb\n"
            f"  influxdb: {{url: '{recorder.url}', token: '{INFLUX_TOKEN}', "
            "flush_interval: 200ms, max_retries: 0}\n"
            "scrape:\n"
            "  interval: 1s\n"
            "  timeout: 1s\n"
            "  targets:\n"
            f"    - {{url: '{exporter_url}/metrics', host: trusted, "
            f"bearer_token_file: exporter-token}}\n"
            f"    - {{url: '{exporter_url}/metrics', host: guessing, "
            f"bearer_token: '{TARGET_WRONG_TOKEN}'}}\n"
            f"api: {{listen: '127.0.0.1:0', token: '{API_TOKEN}'}}\n"
        )
        collector = await start_service(
            tmp_path, "collector", "-c", "fleetpulse.yaml", "--data-dir", "data"
        )
        services.append(collector)
        api_line = await collector.wait_line(lambda line: "/api/v1/hosts" in line)
        match = re.search(r"(http://[\d.]+:\d+)/api/v1/hosts", api_line)
        assert match, api_line
        api = match.group(1)

        await check_refusals(exporter_url, "/metrics", EXPORTER_TOKEN, bodies)
        await check_refusals(exporter_url, "/logs", EXPORTER_TOKEN, bodies)
        await check_refusals(api, "/api/v1/hosts", API_TOKEN, bodies)
        await check_refusals(api, "/metrics", API_TOKEN, bodies)
        status, body, _ = await get(api + "/healthz")
        assert status == 200, body

        # the collector's own failures: a target that refuses its token, a store that refuses
        await collector.wait_line(lambda line: "host=guessing" in line and "HTTP 401" in line)
        await collector.wait_line(lambda line: "influxdb writes failing cause=unauthorized" in line)
        # the API's error when the store refuses the token travels back to the client
        status, body, _ = await get(api + "/api/v1/hosts", bearer(API_TOKEN))
        assert status >= 400, body
        bodies.append(body)
        status, body, _ = await get(exporter_url + "/logs?limit=1000", bearer(EXPORTER_TOKEN))
        assert status == 200, body
        assert "auth failed" in body, "the exporter logs refusals in /logs"
        bodies.append(body)
    finally:
        for service in services:
            await service.stop()
        await recorder.stop()
    captured = "\n".join([*bodies, *(s.text() for s in services)])
    assert "Traceback" not in captured
    for secret in SECRETS:
        leaks = [line for line in captured.splitlines() if secret in line]
        assert not leaks, f"{secret} leaked: {leaks[:3]}"
    # nothing the recorder saw carried our data: the batches were refused at the door
    assert recorder.writes == []


SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ labels.__class__.__init__.__globals__ }}",
    "{{ labels.items.__self__ }}",
    "{{ value.__class__.__base__.__subclasses__() }}",
    "{{ ''.format.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ request.application.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__['sys'] }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ '{0.__class__}'.format(labels) }}",
    "{{ labels|attr('__class__') }}",
]
INTERNALS = re.compile(r"<class|<module|<function|<built-in|__globals__|subclasses|object at 0x")


@pytest.mark.parametrize("text", SANDBOX_ESCAPES)
def test_templates_cannot_reach_python_internals(text: str) -> None:
    try:
        template = compile_template(text)
    except jinja2.TemplateSyntaxError:
        return  # refused at load: as good as refused at render
    out = render(template, {"labels": {"host": "h"}, "value": 1.5, "threshold": 2.0})
    assert not INTERNALS.search(out), out


def test_rule_file_with_an_escaping_template_loads_and_renders_nothing_internal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    annotations = "".join(f"          a{i}: {text!r}\n" for i, text in enumerate(SANDBOX_ESCAPES))
    path.write_text(
        "groups:\n"
        "  - name: g\n"
        "    rules:\n"
        "      - alert: Escape\n"
        "        metric: up\n"
        "        reduce: last\n"
        "        window: 1m\n"
        '        op: "<"\n'
        "        threshold: 1\n"
        "        annotations:\n" + annotations
    )
    try:
        groups = load_rule_file(path)
    except ValueError as exc:  # ConfigError: a template refused at load names file:line
        assert str(path) in str(exc)
        return
    rule = groups[0].rules[0]
    for _, template in rule.annotations:
        out = render(template, {"labels": {"host": "h"}, "value": 0.0, "threshold": 1.0})
        assert not INTERNALS.search(out), out


async def test_password_in_a_target_url_never_reaches_the_logs(tmp_path: Path) -> None:
    password = "pw-SECRET-url-77e1"
    url = f"http://alice:{password}@127.0.0.1:{free_port()}/metrics"
    (tmp_path / "fleetpulse.yaml").write_text(
        "scrape:\n  interval: 1s\n  timeout: 1s\n"
        f"  targets: [{{url: '{url}', host: userinfo}}]\n"
        "api: {listen: '127.0.0.1:0'}\n"
    )
    collector = await start_service(
        tmp_path, "collector", "-c", "fleetpulse.yaml", "--data-dir", "data"
    )
    try:
        await collector.wait_line(lambda line: "scrape failed" in line and "userinfo" in line)
    finally:
        await collector.stop()
    leaks = [line for line in collector.text().splitlines() if password in line]
    assert not leaks, leaks[:3]


async def run_command(cwd: Path, *args: str) -> tuple[int, str]:
    service = await start_service(cwd, *args)
    code = await service.finish()
    return code, service.text()


async def test_failing_channel_never_shows_the_credentials_in_its_url(tmp_path: Path) -> None:
    password = "pw-SECRET-chan-4d2f"
    (tmp_path / "fleetpulse.yaml").write_text(
        "alerting:\n"
        f"  channels: {{ops: ['json://alice:{password}@127.0.0.1:{free_port()}/hook']}}\n"
    )
    code, output = await run_command(tmp_path, "notify", "test", "ops")
    assert code == 1, output
    assert "error: channel 'ops' failed" in output
    assert password not in output


async def test_mistyped_channel_url_never_shows_its_token_in_the_logs(tmp_path: Path) -> None:
    token = "TIiajkdnl-SECRET-slack-8c1b"
    (tmp_path / "fleetpulse.yaml").write_text(
        f"alerting:\n  channels: {{ops: ['slack://T1JJ3T3L2/A1BRTD4JD/{token}/#ops']}}\n"
    )
    code, output = await run_command(tmp_path, "notify", "test", "ops")
    assert code == 1, output
    assert "fleetpulse.yaml:2: alerting.channels.ops" in output
    leaks = [line for line in output.splitlines() if token in line]
    assert not leaks, leaks

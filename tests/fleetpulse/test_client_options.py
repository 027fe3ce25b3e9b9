"""The human options of `history`, `logs` and `status`: times ago, RFC 3339, redraw pace.

A bare number is refused for --since/--until (the API still takes Unix seconds): people mean
"10 minutes ago" far more often than 1970-01-01T00:00:10Z.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from fleetpulse.app.cli import build_parser, joined_time_values
from tests.support.cli import run_cli
from tests.support.servers import serve


def parse(*argv: str) -> dict[str, object]:
    return vars(build_parser().parse_args(joined_time_values(argv)))


def refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ("history", "vm", "up", "--since", "10"),
        ("history", "vm", "up", "--since=10"),
        ("history", "vm", "up", "--until", "1700000000"),
        ("history", "vm", "up", "--since", "-10"),
        ("history", "vm", "up", "--since", "2.5"),
        ("logs", "vm", "--since", "10"),
    ],
    ids=lambda argv: " ".join(argv),
)
def test_a_bare_number_is_a_usage_error_that_asks_for_a_unit(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(capsys, *argv)
    assert "got the bare number" in err
    assert "add a unit, e.g. " in err and "or give an RFC 3339 time" in err


@pytest.mark.parametrize("value", ["1h", "-1h", "=-1h", "=1h"])
def test_a_duration_with_or_without_its_minus_means_that_long_ago(value: str) -> None:
    argv = ("--since" + value,) if value.startswith("=") else ("--since", value)
    assert parse("history", "vm", "up", *argv)["since"] == "-1h"
    assert parse("logs", "vm", *argv)["since"] == "-1h"


def test_times_and_now_pass_through_and_the_defaults_are_in_the_apis_form() -> None:
    args = parse("history", "vm", "up", "--since", "2026-11-27T10:00:00Z", "--until", "now")
    assert (args["since"], args["until"]) == ("2026-11-27T10:00:00Z", "now")
    defaults = parse("history", "vm", "up")
    assert (defaults["since"], defaults["until"]) == ("-24h", "now")
    assert parse("logs", "vm")["since"] == "-1h"


def test_a_minus_value_after_a_double_dash_stays_a_positional() -> None:
    assert joined_time_values(["logs", "--", "--since", "-1h"]) == [
        "logs",
        "--",
        "--since",
        "-1h",
    ]


def test_a_typo_in_a_time_says_which_forms_work(capsys: pytest.CaptureFixture[str]) -> None:
    err = refusal(capsys, "history", "vm", "up", "--since", "yesterday")
    assert "argument --since: expected a duration ago like 24h or 90m" in err
    assert "'yesterday'" in err


@pytest.mark.parametrize("value", ["0", "0.2", "-5"])
def test_watch_faster_than_once_a_second_is_refused_naming_the_minimum(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(capsys, "status", "--watch", value)
    assert f"argument --watch: expected at least 1 second between redraws; got {value}" in err


@pytest.mark.parametrize("value", ["nan", "inf", "soon"])
def test_watch_refuses_what_is_not_a_number_of_seconds(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "expected a number of seconds like 5" in refusal(capsys, "status", "--watch", value)


def test_watch_takes_one_second_and_defaults_to_five() -> None:
    assert parse("status", "--watch", "1")["watch"] == 1.0
    assert parse("status", "--watch")["watch"] == 5.0
    assert parse("status")["watch"] is None


async def test_history_asks_the_api_from_an_hour_ago_for_since_minus_1h() -> None:
    asked: list[dict[str, str]] = []

    async def history(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        return web.json_response({"series": [], "tier": "raw"})

    async with serve({"/api/v1/hosts/vm/metrics/history": history}) as base:
        code, out, err = await run_cli("history", "vm", "up", "--since", "-1h", "--api", base)
        refused = await run_cli("history", "vm", "up", "--since", "10", "--api", base)
    assert code == 0, err
    assert asked == [{"metric": "up", "start": "-1h", "end": "now"}]
    assert "0 points" in out
    assert refused[0] == 2 and "bare number 10; add a unit" in refused[2]
    assert len(asked) == 1, "a refused option must fail before any request"

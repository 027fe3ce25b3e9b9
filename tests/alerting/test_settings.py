"""Channel URL checks at config load: Apprise's complaints never reach the logs, and our own
`file:line` error names the problem without the secret parts of the URL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from alerting.settings import redact_url, url_problem
from fleetpulse.app.config import load_config
from fleetpulse.core.errors import ConfigError

TOKEN = "TIiajkdnl-SECRET-slack-8c1b"


def test_a_mistyped_slack_url_is_our_error_with_apprises_reason_and_no_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        f"alerting:\n  channels:\n    ops:\n      - 'slack://T1JJ3T3L2/A1BRTD4JD/{TOKEN}/#ops'\n"
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    text = str(caught.value)
    assert f"{config}:4: alerting.channels.ops: Apprise does not accept this slack:// URL" in text
    assert "An invalid Slack (third) Token (***) was specified" in text
    assert TOKEN not in text
    # pytest hooks its capture onto Apprise's own logger too (which propagates nowhere);
    # what matters is that nothing reaches ours or the root's handlers
    ours = [r.getMessage() for r in caplog.records if r.name != "apprise"]
    assert not [message for message in ours if TOKEN in message]


def test_apprise_still_forwards_its_warnings_outside_a_url_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert url_problem("json://127.0.0.1:9/hook") is None  # loads Apprise and its forwarder
    with caplog.at_level(logging.WARNING):
        logging.getLogger("apprise").warning("something Apprise says")
    forwarded = [r.getMessage() for r in caplog.records if r.name == "alerting.apprise"]
    assert forwarded == ["something Apprise says"]


@pytest.mark.parametrize(
    ("url", "shown", "secrets"),
    [
        ("slack://T1JJ3T3L2/A1BRTD4JD/TOKENC/#ops", "slack://***/***", ["T1JJ3T3L2", "TOKENC"]),
        (
            "json://user:pass@hooks.example.com:8080/p/a?key=v4lue",
            "json://***@hooks.example.com:8080/***",
            ["user", "pass", "v4lue"],
        ),
        ("tgram://123456789:AAbotTOKEN/", "tgram://***", ["123456789", "AAbotTOKEN"]),
        ("nosuchservice://s3cret@[::1]:80", "nosuchservice://***@[::1]:80", ["s3cret"]),
        ("mailto://localhost", "mailto://localhost", []),
    ],
)
def test_a_url_is_shown_with_scheme_and_host_name_only(
    url: str, shown: str, secrets: list[str]
) -> None:
    assert redact_url(url) == shown
    for secret in secrets:
        assert secret not in redact_url(url)


def test_apprises_reason_is_scrubbed_of_every_secret_part() -> None:
    reason = url_problem("nosuchservice://s3cret:p%40ss@example.com/path-token?k=qvalue")
    assert reason is not None and "example.com" in reason
    for secret in ("s3cret", "p%40ss", "p@ss", "path-token", "qvalue"):
        assert secret not in reason


def test_fallback_and_heartbeat_channels_must_be_defined(tmp_path: Path) -> None:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "alerting:\n"
        "  channels: {ops: ['json://127.0.0.1:1/ops']}\n"
        "  fallback_channels: [pager]\n"
        "  heartbeat: {channels: [watchdog], every: 12h}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    text = str(caught.value)
    assert f"{config}:3: alerting.fallback_channels: unknown channel 'pager'" in text
    assert f"{config}:4: alerting.heartbeat.channels: unknown channel 'watchdog'" in text


def test_the_heartbeat_and_fallback_load_as_written(tmp_path: Path) -> None:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "alerting:\n"
        "  channels: {ops: ['json://127.0.0.1:1/ops'], mail: ['json://127.0.0.1:1/m']}\n"
        "  fallback_channels: [mail]\n"
        "  heartbeat: {channels: [ops], every: 12h}\n"
        "  listen: 127.0.0.1:9186\n"
    )
    alerting = load_config(config).alerting
    assert alerting.fallback_channels == ("mail",)
    assert alerting.heartbeat is not None
    assert (alerting.heartbeat.channels, alerting.heartbeat.every) == (("ops",), 43_200.0)
    assert str(alerting.listen) == "127.0.0.1:9186"

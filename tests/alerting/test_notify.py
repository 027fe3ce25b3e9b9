"""Channels: URLs checked at config load, Apprise failures as exceptions with the reason,
Apprise config files with tags, and `fleetpulse notify test`."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from alerting.notify import DeliveryFailed, UnknownChannel, send_test
from alerting.settings import AlertingSettings, ChannelSettings
from fleetpulse.app.config import load_config
from fleetpulse.core.errors import ConfigError
from tests.alerting.recorders import HttpRecorder
from tests.support.cli import run_cli
from tests.support.servers import free_port


def test_a_url_apprise_refuses_is_a_config_error_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "alerting:\n"
        "  channels:\n"
        "    ops:\n"
        '      - "json://127.0.0.1:9/hook"\n'
        '      - "nosuchservice://s3cret@example.com"\n'
        "  default_channels: [ops, pager]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    text = str(caught.value)
    assert (
        f"{config}:5: alerting.channels.ops: Apprise does not accept this nosuchservice://" in text
    )
    assert f"{config}:6: alerting.default_channels: unknown channel 'pager'" in text
    assert "s3cret" not in text


def test_channel_settings_take_urls_an_apprise_config_and_tags(tmp_path: Path) -> None:
    (tmp_path / "apprise.yaml").write_text("urls:\n  - json://127.0.0.1:9/x:\n      tag: oncall\n")
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "alerting:\n  channels:\n    oncall: {config: apprise.yaml, tags: [oncall]}\n"
        "    nothing: {}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert [str(p) for p in caught.value.problems] == [
        f"{config}:4: alerting.channels.nothing: expected a list of Apprise URLs or urls/config"
    ]
    config.write_text(
        "alerting:\n  channels:\n    oncall: {config: apprise.yaml, tags: [oncall]}\n"
    )
    (channel,) = load_config(config).alerting.channels
    assert channel.config == tmp_path / "apprise.yaml" and channel.tags == ("oncall",)

    (tmp_path / "apprise.yaml").write_text("urls:\n  - nosuchservice://x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value) == (
        f"{config}:3: alerting.channels.oncall.config: Apprise finds no valid URL in this "
        "file; check its YAML or text format"
    )


async def test_an_apprise_config_file_delivers_to_its_tagged_urls(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    port = webhook.base.rsplit(":", 1)[1]
    (tmp_path / "apprise.yaml").write_text(
        "urls:\n"
        f"  - json://127.0.0.1:{port}/oncall:\n      tag: oncall\n"
        f"  - json://127.0.0.1:{port}/other:\n      tag: other\n"
    )
    channel = ChannelSettings("pager", config=tmp_path / "apprise.yaml", tags=("oncall",))
    await send_test(AlertingSettings(channels=(channel,)), "pager")
    assert [r.path for r in webhook.received] == ["/oncall"]


async def test_a_refused_delivery_raises_with_apprises_reason() -> None:
    channel = ChannelSettings("dead", (f"json://127.0.0.1:{free_port()}/x",))
    with pytest.raises(DeliveryFailed) as caught:
        await send_test(AlertingSettings(channels=(channel,)), "dead")
    assert "Connection refused" in str(caught.value)


@pytest.mark.parametrize("from_config_file", [False, True])
async def test_a_failed_delivery_never_shows_the_channels_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, from_config_file: bool
) -> None:
    """requests quotes the URL it posted to ("Max retries exceeded with url: /hook/<token>"),
    and Apprise passes that on: the reason we log and store as an alert event must not."""
    url = f"json://user:pa55word@127.0.0.1:{free_port()}/hook/s3cr3t-t0ken?x=abcd1234"
    if from_config_file:
        (tmp_path / "apprise.yaml").write_text(f"urls:\n  - {url}\n")
        channel = ChannelSettings("dead", config=tmp_path / "apprise.yaml")
    else:
        channel = ChannelSettings("dead", (url,))
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryFailed) as caught:
        await send_test(AlertingSettings(channels=(channel,)), "dead")
    reason = str(caught.value)
    assert "Connection refused" in reason and "***" in reason
    # pytest hooks its capture onto Apprise's own logger too, which propagates nowhere
    logged = [r.getMessage() for r in caplog.records if r.name != "apprise"]
    assert "A Connection error occurred sending JSON notification to 127.0.0.1." in logged
    shown = [reason, *logged]
    for secret in ("pa55word", "s3cr3t-t0ken", "abcd1234"):
        assert not [text for text in shown if secret in text], secret


async def test_an_unknown_channel_names_the_known_ones() -> None:
    settings = AlertingSettings(channels=(ChannelSettings("ops", ("json://127.0.0.1:9/x",)),))
    with pytest.raises(
        UnknownChannel, match=r"unknown channel 'pager'; alerting\.channels defines: ops"
    ):
        await send_test(settings, "pager")


async def test_notify_test_reports_success_and_the_channels_error(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    port = webhook.base.rsplit(":", 1)[1]
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "alerting:\n  channels:\n"
        f"    ops: ['json://127.0.0.1:{port}/ops']\n"
        f"    dead: ['json://127.0.0.1:{free_port()}/x']\n"
    )
    code, out, err = await run_cli("notify", "test", "-c", str(config), "ops")
    assert code == 0, err
    assert out.strip() == "sent a test notification through 'ops'"
    assert "[TEST] FleetPulse notification test" in webhook.received[0].text

    code, out, err = await run_cli("notify", "test", "-c", str(config), "dead")
    assert code == 1
    assert "error: channel 'dead' failed:" in err and "Connection refused" in err

    code, out, err = await run_cli("notify", "test", "-c", str(config), "nope")
    assert code == 1
    assert "unknown channel 'nope'; alerting.channels defines: ops, dead" in err

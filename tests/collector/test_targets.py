"""Targets resolved from settings: auth headers, timeouts, and the stable shard split."""

from collections import Counter

import pytest

from collector.settings import ScrapeSettings, TargetSettings
from collector.targets import Target, in_shard, resolve_target


def fleet(n: int) -> list[Target]:
    scrape = ScrapeSettings()
    return [
        resolve_target(
            TargetSettings(url=f"http://game-{i}:9184/metrics", host=f"game-{i}"), scrape
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_cover_every_target_exactly_once(count: int) -> None:
    targets = fleet(500)
    shards = [in_shard(targets, (i, count)) for i in range(count)]
    keys = Counter(t.key for shard in shards for t in shard)
    assert set(keys) == {t.key for t in targets}
    assert set(keys.values()) == {1}
    # roughly even: no shard gets less than half its fair share
    assert min(len(s) for s in shards) > 500 / count / 2


def test_shard_split_is_stable_across_processes_and_order() -> None:
    targets = fleet(200)
    first = [t.key for t in in_shard(targets, (1, 3))]
    again = [t.key for t in in_shard(list(reversed(fleet(200))), (1, 3))]
    assert sorted(first) == sorted(again)
    # a target keeps its shard when others join or leave the fleet
    assert {t.key for t in in_shard(targets[:50], (1, 3))} == set(first) & {
        t.key for t in targets[:50]
    }
    assert in_shard(targets, None) == targets


def test_auth_headers_and_timeout_come_from_the_target() -> None:
    scrape = ScrapeSettings(interval=10.0, timeout=5.0)
    bearer = resolve_target(TargetSettings(url="http://a/m", host="a", bearer_token="s3"), scrape)
    assert dict(bearer.headers) == {"Authorization": "Bearer s3"}
    basic = resolve_target(
        TargetSettings(
            url="http://a/m", host="a", basic_auth_username="u", basic_auth_password="p"
        ),
        scrape,
    )
    assert dict(basic.headers) == {"Authorization": "Basic dTpw"}
    assert "s3" not in repr(bearer) and "dTpw" not in repr(basic)
    slow = resolve_target(
        TargetSettings(url="http://a/m", host="a", interval=60.0, timeout=30.0), scrape
    )
    assert slow.timeout == 30.0


@pytest.mark.parametrize(("interval", "timeout"), [(None, 5.0), (2.0, 2.0), (60.0, 5.0)])
def test_an_unset_timeout_is_the_scrape_timeout_or_the_interval_if_shorter(
    interval: float | None, timeout: float
) -> None:
    scrape = ScrapeSettings(interval=10.0, timeout=5.0)
    target = resolve_target(TargetSettings(url="http://a/m", host="a", interval=interval), scrape)
    assert target.timeout == timeout

import pytest

from fleetpulse.core.selector import parse_selector


def test_plain_name_has_no_matchers() -> None:
    selector = parse_selector("host_cpu_usage_percent")
    assert selector.metric == "host_cpu_usage_percent"
    assert selector.matchers == ()


def test_all_four_operators_match_like_prometheus() -> None:
    selector = parse_selector(
        'disk{mountpoint="/", device!="tmp", fstype=~"ext.|xfs", host!~"db-.*"}'
    )
    assert [m.op for m in selector.matchers] == ["=", "!=", "=~", "!~"]
    assert selector.matches(
        (("device", "sda"), ("fstype", "ext4"), ("host", "web-1"), ("mountpoint", "/"))
    )
    assert not selector.matches(
        (("device", "sda"), ("fstype", "ext4"), ("host", "db-1"), ("mountpoint", "/"))
    )
    # regexes are anchored: "ext." does not match "ext4x"
    assert not selector.matches((("fstype", "ext4x"), ("mountpoint", "/")))


def test_escapes_in_values_and_round_trip_through_str() -> None:
    selector = parse_selector(r'm{a="x\"y\\z\n"}')
    assert selector.matchers[0].value == 'x"y\\z\n'
    assert parse_selector(str(selector)) == selector


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "metric name"),
        ("9bad", "metric name"),
        ("m{a=1}", "quoted value"),
        ('m{a~"x"}', "=, !=, =~ or !~"),
        ('m{a="x"', "unterminated|expected , or }"),
        ('m{a=~"("}', "bad regular expression"),
        ('m{a="x"} extra', "unexpected"),
    ],
)
def test_bad_selectors_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_selector(text)

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetpulse.core.durations import format_duration, human_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("5m", 300),
        ("48h", 172800),
        ("30d", 2592000),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1w", 604800),
        ("0", 0),
        ("1.5s", 1.5),
    ],
)
def test_parse_duration_reads_prometheus_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "15x", "s", "1h 30m", "-5m", "5m3", "m5"])
def test_parse_duration_refuses_malformed_text_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration like 15s"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_duration_round_trips_whole_milliseconds(ms: int) -> None:
    assert parse_duration(format_duration(ms / 1000)) == pytest.approx(ms / 1000)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (14.999, "15s"),
        (59.6, "1m"),
        (150, "2m30s"),
        (754.2, "12m34s"),
        (3599.6, "1h"),
        (3900, "1h5m"),
        (3929, "1h5m"),
        (86399, "1d"),
        (200_000, "2d8h"),
    ],
)
def test_human_duration_rounds_to_two_units_for_people(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text

"""Prometheus-style durations: `15s`, `5m`, `48h`, `30d`, `1h30m`, `500ms`."""

import re

UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError that says what a duration looks like."""
    text = text.strip()
    if text == "0":
        return 0.0
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"expected a duration like 15s, 5m, 48h or 30d, got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of `seconds`, e.g. 90 -> '1m30s'."""
    if seconds == 0:
        return "0s"
    ms = round(seconds * 1000)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def human_duration(seconds: float) -> str:
    """`seconds` rounded for a person reading a message, in two units at most: 15s, 2m30s,
    1h5m, 3d4h. Each form rounds to its smaller unit, so 14.999s reads 15s and 59.6s 1m."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return _two_units(whole, 60, "m", "s")
    minutes = round(seconds / 60)
    if minutes < 1440:
        return _two_units(minutes, 60, "h", "m")
    return _two_units(round(seconds / 3600), 24, "d", "h")


def _two_units(count: int, per: int, big: str, small: str) -> str:
    high, low = divmod(count, per)
    return f"{high}{big}{low}{small}" if low else f"{high}{big}"

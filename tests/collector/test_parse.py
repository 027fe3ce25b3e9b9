"""Tests for collector.parse: the text-format rules one by one, errors with their line numbers,
and agreement with prometheus_client's parser on generated and on real node_exporter output."""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as reference_openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as reference_families
from prometheus_client.registry import Collector, CollectorRegistry

from collector.errors import CollectorError
from collector.parse import ParsedSample, ParseError, parse_exposition

NODE_EXPORTER_FILE = Path(__file__).resolve().parent.parent / "data" / "node_exporter.prom"

# A sample reduced to something == can compare: NaN never equals itself, so it becomes a marker.
Comparable = tuple[str, tuple[tuple[str, str], ...], float | str, int | None]


def comparable(
    name: str, labels: Iterable[tuple[str, str]], value: float, ts: int | None
) -> Comparable:
    return (name, tuple(labels), "NaN" if math.isnan(value) else value, ts)


def ours(text: str | bytes, *, openmetrics: bool = False) -> list[Comparable]:
    return [comparable(*s) for s in parse_exposition(text, openmetrics=openmetrics)]


def reference(text: str) -> list[Comparable]:
    """prometheus_client's reading of a text-format body, in our shape.

    Its parser renames the samples of a counter whose TYPE line lacks `_total` to `<name>_total`;
    that is undone here, since the exposition did not say so.
    """
    renamed = {
        name + "_total"
        for name in re.findall(r"^# TYPE (\S+) counter$", text, re.MULTILINE)
        if not name.endswith("_total")
    }
    result = []
    for family in reference_families(text):
        for sample in family.samples:
            name = sample.name[: -len("_total")] if sample.name in renamed else sample.name
            ts = None if sample.timestamp is None else round(float(sample.timestamp) * 1000)
            result.append(comparable(name, sample.labels.items(), sample.value, ts))
    return result


def only(body: str | bytes, *, openmetrics: bool = False) -> ParsedSample:
    """Parse a body that must hold exactly one sample."""
    samples = parse_exposition(body, openmetrics=openmetrics)
    assert len(samples) == 1, samples
    return samples[0]


def parse_error(body: str | bytes, *, openmetrics: bool = False) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_exposition(body, openmetrics=openmetrics)
    return caught.value


# --- the interface ---------------------------------------------------------------------------


def test_sample_is_a_named_tuple_of_name_labels_value_and_timestamp() -> None:
    sample = only('up{job="node"} 1 1700000000000\n')
    assert sample == ParsedSample("up", (("job", "node"),), 1.0, 1700000000000)
    assert (sample.name, sample.labels, sample.value, sample.timestamp_ms) == (
        "up",
        (("job", "node"),),
        1.0,
        1700000000000,
    )
    assert isinstance(sample.value, float)


def test_parse_error_carries_line_and_reason_and_is_caught_as_value_error() -> None:
    error = ParseError(7, "something broke")
    assert str(error) == "parse error at line 7: something broke"
    assert (error.line, error.reason) == (7, "something broke")
    assert isinstance(error, CollectorError)
    assert isinstance(error, ValueError)


def test_parse_error_survives_pickling() -> None:
    copy = pickle.loads(pickle.dumps(ParseError(3, "bad value")))
    assert (copy.line, copy.reason, str(copy)) == (
        3,
        "bad value",
        "parse error at line 3: bad value",
    )


def test_empty_body_has_no_samples() -> None:
    assert parse_exposition("") == []
    assert parse_exposition(b"") == []


# --- lines, comments, labels, whitespace -----------------------------------------------------


def test_help_type_and_other_comments_and_blank_lines_are_skipped() -> None:
    body = (
        "# HELP http_requests_total Requests {by code}, with \\\\ and \\n escapes\n"
        "# TYPE http_requests_total counter\n"
        "\n"
        "#\n"
        '# just a remark with a "quote and a {brace\n'
        "   \t\n"
        "  # an indented comment\n"
        'http_requests_total{code="200"} 1027\n'
        "# TYPE\n"
        "# TYPE broken\n"
        "# TYPE broken nonsense extra words\n"
        "# HELP 1invalid-name help for an invalid name\n"
        "# EOF\n"
        "other 2\n"
    )
    assert ours(body) == [
        ("http_requests_total", (("code", "200"),), 1027.0, None),
        ("other", (), 2.0, None),
    ]


def test_labels_keep_the_order_of_the_exposition() -> None:
    assert only('m{zeta="1",alpha="2",mid="3"} 0\n').labels == (
        ("zeta", "1"),
        ("alpha", "2"),
        ("mid", "3"),
    )


@pytest.mark.parametrize(
    "line",
    ["m 5\n", "m{} 5\n", "m{ } 5\n", "m {}\t5\n"],
)
def test_no_labels_and_an_empty_label_set_are_the_same(line: str) -> None:
    assert only(line) == ("m", (), 5.0, None)


@pytest.mark.parametrize(
    "line",
    ['m{a="1",} 5\n', 'm{a="1" , } 5\n', 'm{a="1",b="2",} 5\n'],
)
def test_trailing_comma_in_label_set_is_allowed(line: str) -> None:
    assert only(line).labels[0] == ("a", "1")


@pytest.mark.parametrize(
    ("escaped", "value"),
    [
        (r"a\\b", "a\\b"),
        (r"say \"hi\"", 'say "hi"'),
        (r"line1\nline2", "line1\nline2"),
        (r"\\n", "\\n"),  # an escaped backslash followed by a plain n
        (r"\\\"", '\\"'),
        (r"ends with \\", "ends with \\"),
        ("", ""),
    ],
)
def test_label_value_escapes_are_decoded(escaped: str, value: str) -> None:
    assert only(f'm{{v="{escaped}"}} 1\n').labels == (("v", value),)


@pytest.mark.parametrize(
    "value",
    ["a,b", "a}b", "x=y", '{"', "} 1", '",', "# EOF", "日本語 🚀", "\t tab and \r cr", "="],
)
def test_label_values_may_hold_separators_braces_and_unicode(value: str) -> None:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    sample = only(f'm{{first="{escaped}",second="ok"}} 3\n')
    assert sample.labels == (("first", value), ("second", "ok"))
    assert sample.value == 3.0


@pytest.mark.parametrize(
    "line",
    [
        'm{a="1",b="2"} 7 99\n',
        '  m{a="1",b="2"} 7 99\n',
        '\tm{a="1",b="2"} 7 99\t \n',
        'm {a="1",b="2"} 7 99\n',
        'm{ a = "1" ,\tb=\t"2" }  7  99\n',
        'm{a="1",b="2"}7 99\n',
        'm{a="1",b="2"}\t7\t99\n',
        'm{a="1",b="2",} 7 99 \n',
    ],
)
def test_blanks_and_tabs_the_spec_allows_between_tokens(line: str) -> None:
    assert only(line) == ("m", (("a", "1"), ("b", "2")), 7.0, 99)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0.0),
        ("-0", -0.0),
        ("42", 42.0),
        ("+3", 3.0),
        ("-17.25", -17.25),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("2.5E-3", 0.0025),
        ("-1.5e+10", -1.5e10),
        ("1.7976931348623157e308", 1.7976931348623157e308),
        ("4.9e-324", 4.9e-324),
        ("+Inf", math.inf),
        ("Inf", math.inf),
        ("-Inf", -math.inf),
        ("inf", math.inf),
        ("+Infinity", math.inf),
        ("-infinity", -math.inf),
    ],
)
def test_values_in_every_spelling_go_accepts(text: str, expected: float) -> None:
    value = only(f"m {text}\n").value
    assert value == expected
    assert math.copysign(1.0, value) == math.copysign(1.0, expected)
    assert only(f'm{{a="b"}} {text}\n').value == expected


@pytest.mark.parametrize("text", ["NaN", "nan", "NAN"])
def test_nan_value(text: str) -> None:
    assert math.isnan(only(f"m {text}\n").value)
    assert math.isnan(only(f'm{{a="b"}} {text} 5\n').value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1700000000123", 1700000000123),
        ("-1", -1),
        ("+5", 5),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_timestamp_is_integer_milliseconds(text: str, expected: int) -> None:
    assert only(f"m 1 {text}\n").timestamp_ms == expected


def test_metric_and_label_names_may_use_every_allowed_character() -> None:
    sample = only('a:b_C9:__x{_l="1",L_9z="2"} 1\n')
    assert sample.name == "a:b_C9:__x"
    assert [name for name, _ in sample.labels] == ["_l", "L_9z"]
    assert only(":leading_colon 1\n").name == ":leading_colon"
    assert only("_ 1\n").name == "_"


def test_bytes_are_decoded_as_utf8() -> None:
    sample = only('m{city="Zürich",emoji="🚀"} 1\n'.encode())
    assert sample.labels == (("city", "Zürich"), ("emoji", "🚀"))


def test_parsing_a_body_twice_gives_the_same_samples() -> None:
    # The label-set cache is shared between calls; a warm cache must not change the answer.
    body = 'a{x="1"} 1\nb{x="1"} 2\na{x="2",} 3\nc{ x="1"} 4\n' + 'long{v="' + "z" * 5000 + '"} 5\n'
    first = ours(body)
    assert first == ours(body)
    assert [s[1] for s in first][:4] == [(("x", "1"),), (("x", "1"),), (("x", "2"),), (("x", "1"),)]


# --- errors, each with its line number -------------------------------------------------------

BAD_LINES = [
    ("1abc 1", "expected a metric name"),
    ("up-1 2", "invalid character '-' in metric name 'up'"),
    ("métrique 1", "invalid character 'é' in metric name 'm'"),
    ('{a="1"} 1', "expected a metric name"),
    ("m", "missing value"),
    ("m{}", "missing value"),
    ("m ", "missing value"),
    ('m{1a="x"} 1', "expected a label name"),
    ('m{a-b="x"} 1', "expected '=' after label name 'a'"),
    ("m{,} 1", "expected a label name or '}'"),
    ('m{a="1",,b="2"} 1', "expected a label name or '}'"),
    ('m{a="1" b="2"} 1', "expected ',' or '}' after the value of label 'a'"),
    ("m{a=1} 1", "expected '\"' to open the value of label 'a'"),
    ("m{a} 1", "expected '=' after label name 'a'"),
    ('m{a="1"', "label set is not closed"),
    ('m{a="1", 1', "expected a label name or '}', found '1'"),
    ('m{a="1} 1', "value of label 'a' is not closed"),
    ('m{a="x\\"} 1', "value of label 'a' is not closed"),
    ('m{a="\\t"} 1', "invalid escape sequence '\\\\t'"),
    ('m{a="\\u00e9"} 1', "invalid escape sequence"),
    ('m{a="1",a="2"} 1', "duplicate label name 'a'"),
    ('m{__name__="x"} 1', "label name '__name__' is reserved"),
    ("m abc", "invalid value 'abc'"),
    ("m 1_000", "invalid value '1_000'"),
    ("m 0x10", "invalid value '0x10'"),
    ("m 1e999", "invalid value '1e999'"),
    ("m +NaN", "invalid value '+NaN'"),
    ("m Infinit", "invalid value 'Infinit'"),
    ("m ١٢", "invalid value"),  # Arabic-Indic digits: float() takes them, the spec does not
    ("m 1\r", "invalid value '1\\r'; lines must end with a line feed alone, not CRLF"),
    ("m 1 5\r", "invalid timestamp '5\\r'"),
    ("m 1\x0b", "invalid value"),
    ("m --1", "invalid value '--1'"),
    ("m 1 1.5", "invalid timestamp '1.5'"),
    ("m 1 1_000", "invalid timestamp '1_000'"),
    ("m 1 ٣", "invalid timestamp"),
    ("m 1 9223372036854775808", "invalid timestamp"),
    ("m 1 NaN", "invalid timestamp"),
    ("m 1 2 3", "unexpected text after the timestamp: '3'"),
    ('m{a="b"} 1 # {trace_id="x"} 1', "invalid timestamp '#'"),  # exemplars are OpenMetrics
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[repr(line) for line, _ in BAD_LINES])
def test_malformed_line_is_reported_with_its_line_number(line: str, reason: str) -> None:
    body = "# HELP m fine so far\n\nok 1\n" + line + "\nok 2\n"
    error = parse_error(body)
    assert error.line == 4
    assert reason in error.reason
    assert str(error) == f"parse error at line 4: {error.reason}"


def test_first_of_several_bad_lines_is_reported() -> None:
    assert parse_error("a 1\nb x\nc y\n").line == 2


def test_line_numbers_stay_right_deep_into_a_large_body() -> None:
    # Large bodies are cut into chunks internally; count lines across all of them.
    filler = "".join(f'filler_metric{{index="{i}",kind="padding"}} {i}\n' for i in range(20_000))
    tricky = 'm{ v="a\\"b" } 1\n'  # off the fast path
    body = filler + tricky + "# comment\n\n" + filler + "m{v=oops} 1\n"
    error = parse_error(body)
    assert error.line == 2 * 20_000 + 4
    parsed = parse_exposition(filler + tricky + filler)
    assert len(parsed) == 40_001
    assert parsed[20_000] == ("m", (("v", 'a"b'),), 1.0, None)
    assert parsed[-1] == ("filler_metric", (("index", "19999"), ("kind", "padding")), 19999.0, None)


def test_missing_final_line_feed_is_an_error() -> None:
    error = parse_error("a 1\nb 2")
    assert (error.line, error.reason) == (2, "the last line does not end with a line feed")
    assert parse_error("# only a comment").line == 1


def test_invalid_utf8_is_reported_on_its_line() -> None:
    error = parse_error(b'a 1\nb 2\nc{v="\xff\xfe"} 3\n')
    assert error.line == 3
    assert "invalid UTF-8" in error.reason
    assert parse_error(b"a 1\n\xc3(\n").line == 2
    assert parse_error(b'm{v="\xed\xa0\x80"} 1\n').line == 1  # an encoded surrogate


def test_text_with_lone_surrogates_is_not_valid_utf8() -> None:
    body = b'a 1\nb{v="\xff"} 2\n'.decode("utf-8", errors="surrogateescape")
    error = parse_error(body)
    assert (error.line, error.reason) == (2, "invalid UTF-8 text")


# --- OpenMetrics ------------------------------------------------------------------------------


def test_openmetrics_timestamps_are_seconds_converted_to_milliseconds() -> None:
    body = "a 1 1700000000.123\nb 2 1700000000\nc 3 -1.5\nd 4 1.5e3\n# EOF\n"
    assert [s.timestamp_ms for s in parse_exposition(body, openmetrics=True)] == [
        1700000000123,
        1700000000000,
        -1500,
        1500000,
    ]


def test_openmetrics_eof_ends_the_body_with_or_without_line_feed() -> None:
    assert ours("# TYPE a gauge\na 1\n# EOF\n", openmetrics=True) == [("a", (), 1.0, None)]
    assert ours("a 1\n# EOF", openmetrics=True) == [("a", (), 1.0, None)]
    assert ours("# EOF\n", openmetrics=True) == []


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("a 1\n", 2, "missing '# EOF'"),
        ("a 1", 2, "missing '# EOF'"),
        ("", 1, "missing '# EOF'"),
        ("a 1\n# EOF \n", 3, "missing '# EOF'"),
        ("a 1\n# EOF\nb 2\n", 3, "content after '# EOF'"),
        ("a 1\n# EOF\n\n", 3, "content after '# EOF'"),
        ("# EOF\n# EOF\n", 2, "content after '# EOF'"),
        ("a 1 NaN\n# EOF\n", 1, "invalid timestamp 'NaN'"),
        ("a 1 1e400\n# EOF\n", 1, "invalid timestamp '1e400'"),
        ("a 1 x\n# EOF\n", 1, "invalid timestamp 'x'"),
        ('c_total 1 # {id="x"}\n# EOF\n', 1, "missing exemplar value"),
        ("c_total 1 # 1\n# EOF\n", 1, "expected '{' to open the exemplar's label set"),
        ('c_total 1 # {id="x"} 1 2 3\n# EOF\n', 1, "unexpected text after the exemplar"),
        ("c_total 1 # {id=x} 1\n# EOF\n", 1, "expected '\"' to open the value of label 'id'"),
    ],
)
def test_openmetrics_errors(body: str, line: int, reason: str) -> None:
    error = parse_error(body, openmetrics=True)
    assert error.line == line
    assert reason in error.reason


def test_openmetrics_exemplars_are_checked_and_dropped() -> None:
    body = (
        'req_bucket{le="0.5"} 7 # {trace_id="abc\\"}"} 0.31 1700000000.5\n'
        'req_bucket{le="+Inf"} 9 1700000001 # {trace_id="def"} 2\n'
        "# EOF\n"
    )
    assert ours(body, openmetrics=True) == [
        ("req_bucket", (("le", "0.5"),), 7.0, None),
        ("req_bucket", (("le", "+Inf"),), 9.0, 1700000001000),
    ]


def test_a_text_format_body_is_not_cut_at_eof_comment() -> None:
    assert ours("a 1\n# EOF\nb 2\n") == [("a", (), 1.0, None), ("b", (), 2.0, None)]


# --- the real thing: node_exporter output ----------------------------------------------------


def test_node_exporter_output_parses_like_prometheus_client() -> None:
    text = NODE_EXPORTER_FILE.read_text(encoding="utf-8")
    parsed = ours(NODE_EXPORTER_FILE.read_bytes())
    sample_lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(parsed) == len(sample_lines) > 400
    assert parsed == reference(text)
    series = {(name, labels) for name, labels, _, _ in parsed}
    assert ("node_cpu_seconds_total", (("cpu", "0"), ("mode", "idle"))) in series


# --- generated expositions: compare with prometheus_client -----------------------------------

# Label values that stress the escaping and the quote-aware scanning.
NASTY_PIECES = ['"', "\\", "\n", "{", "}", ",", "=", " ", "\t", "\r", "#", '\\"', '",', '="', "} 1"]
label_values = st.lists(
    st.one_of(
        st.sampled_from(NASTY_PIECES),
        st.characters(codec="utf-8"),  # any Unicode scalar value (no lone surrogates)
        st.text(alphabet="abcxyz019_-.", max_size=6),
    ),
    max_size=8,
).map("".join)
metric_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,24}", fullmatch=True)
# prometheus_client refuses label names starting with "__" (reserved); so does our generator.
label_names = st.from_regex(r"(?!__)[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
label_sets = st.dictionaries(label_names, label_values, max_size=5)
sample_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**53), max_value=2**53).map(float),
    st.sampled_from([0.0, -0.0, 1.0, 1e-300, 5e-324, 1.7976931348623157e308]),
)
timestamps_ms = st.one_of(st.none(), st.integers(min_value=-(10**13), max_value=10**13))

SUFFIXES = {
    "gauge": [""],
    "untyped": [""],
    "counter": ["_total"],
    "summary": ["", "_sum", "_count"],
    "histogram": ["_bucket", "_sum", "_count"],
}


@st.composite
def families(draw: st.DrawFn) -> Metric:
    kind = draw(st.sampled_from(sorted(SUFFIXES)))
    family = Metric(draw(metric_names), draw(st.text(alphabet="abc XYZ.", max_size=20)), kind)
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        ts = draw(timestamps_ms)
        family.add_sample(
            family.name + draw(st.sampled_from(SUFFIXES[kind])),
            draw(label_sets),
            draw(sample_values),
            None if ts is None else ts / 1000,
        )
    return family


class FixedCollector(Collector):
    """A prometheus_client collector that yields the families it was given."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return iter(self.metrics)


def render(metrics: list[Metric], *, openmetrics: bool = False) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FixedCollector(metrics))
    if openmetrics:
        body: bytes = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
    else:
        body = generate_latest(registry)
    return body.decode("utf-8")


def expected_samples(metrics: list[Metric]) -> list[Comparable]:
    """What the generated families hold (bar timestamps), with labels as rendered: sorted."""
    return [
        comparable(s.name, sorted(s.labels.items()), s.value, None)
        for family in metrics
        for s in family.samples
    ]


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.lists(families(), max_size=6))
def test_generated_exposition_parses_like_prometheus_client(metrics: list[Metric]) -> None:
    text = render(metrics)
    parsed = ours(text)
    assert parsed == reference(text)
    assert [(*sample[:3], None) for sample in parsed] == expected_samples(metrics)
    assert ours(text.encode("utf-8")) == parsed


# --- generated expositions in every legal layout ---------------------------------------------

blanks = st.sampled_from(["", " ", "\t", "  ", " \t "])
some_blanks = st.sampled_from([" ", "\t", "  ", "\t \t"])


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def spellings(value: float) -> list[str]:
    """Ways of writing a value that Go's ParseFloat (and so the format) accepts."""
    if math.isnan(value):
        return ["NaN", "nan", "NAN"]
    if math.isinf(value):
        return ["+Inf", "Inf", "inf", "+infinity"] if value > 0 else ["-Inf", "-inf", "-Infinity"]
    text = repr(value)
    forms = [text, text.upper()]
    if value > 0 or (value == 0 and math.copysign(1, value) > 0):
        forms.append("+" + text)
    if text.endswith(".0"):
        forms.append(text[:-1])  # "5." is a float to Go too
    return forms


@st.composite
def sample_lines(draw: st.DrawFn) -> tuple[str, Comparable]:
    name = draw(metric_names)
    labels = list(draw(label_sets).items())
    value = draw(sample_values)
    ts = draw(timestamps_ms)
    line = draw(blanks) + name
    empty_braces = draw(st.booleans())
    trailing_comma = draw(st.booleans())
    if labels or empty_braces:
        pairs = [
            draw(blanks)
            + key
            + draw(blanks)
            + "="
            + draw(blanks)
            + f'"{escape(val)}"'
            + draw(blanks)
            for key, val in labels
        ]
        comma = "," if labels and trailing_comma else ""
        line += draw(blanks) + "{" + ",".join(pairs) + comma + draw(blanks) + "}" + draw(blanks)
    else:
        line += draw(some_blanks)
    line += draw(st.sampled_from(spellings(value)))
    if ts is not None:
        sign = "+" if ts >= 0 and draw(st.booleans()) else ""
        line += draw(some_blanks) + sign + str(ts)
    line += draw(blanks)
    return line, comparable(name, labels, value, ts)


noise_lines = st.sampled_from(
    [
        "",
        "  ",
        "\t",
        "#",
        '# HELP m a {help} with "quotes", \\\\ and \\n',
        "# TYPE m counter",
        "# TYPE m",
        "  # indented comment } 1",
        "# EOF",
        '#m{a="1"} 1',
    ]
)


@PROPERTY
@given(st.lists(st.one_of(sample_lines(), noise_lines), max_size=12))
def test_every_legal_layout_parses_to_the_same_samples(
    lines: list[tuple[str, Comparable] | str],
) -> None:
    text = "".join((item if isinstance(item, str) else item[0]) + "\n" for item in lines)
    expected = [item[1] for item in lines if not isinstance(item, str)]
    assert ours(text) == expected


def outcome(body: str) -> list[Comparable] | str:
    try:
        return ours(body)
    except ParseError as error:
        return f"error at line {error.line}: {error.reason}"


# Lines near the canonical shape `name{a="x",b="y"} value timestamp`: mostly almost right, often
# subtly wrong (a raw quote or lone backslash in a value, a doubled comma, a reserved or repeated
# label name, a value float() takes but the spec does not).
VALUE_PIECES = [
    "a",
    "é",
    " ",
    ",",
    "}",
    "{",
    "=",
    '\\"',
    "\\\\",
    "\\n",
    "\\t",
    '"',
    "\\",
    '",',
    '="',
]
near_label_pairs = st.builds(
    lambda name, pieces, spaced: f'{name}{spaced}="{"".join(pieces)}"',
    st.sampled_from(["x", "x", "x", "y", "_", "__name__", "1a", "é", ""]),
    st.lists(st.sampled_from(VALUE_PIECES), max_size=3),
    st.sampled_from(["", "", "", " "]),
)
near_label_sets = st.builds(
    lambda pairs, separator, trailer: "{" + separator.join(pairs) + trailer + "}",
    st.lists(near_label_pairs, max_size=3),
    st.sampled_from([",", ",", ",", ", ", ",,", ""]),
    st.sampled_from(["", "", ",", " "]),
)
near_lines = st.builds(
    lambda name, labels, value, tail: name + labels + value + tail,
    st.sampled_from(["m", "a_b:c", "m", "1m", "m-", ""]),
    st.one_of(st.just(" "), near_label_sets.map(lambda labels: labels + " ")),
    st.sampled_from(
        ["1", "-2.5", "1e3", "NaN", "+Inf", "Inf", "1e999", "+nan", "1_0", "x", "", "."]
    ),
    st.sampled_from(["", " 1700000000000", " -5", " 1.5", " 07", " 7 ", " # x", "\t9", " 1 2"]),
)


@settings(max_examples=1500, deadline=None)
@given(near_lines)
def test_fast_path_agrees_with_the_careful_parser(line: str) -> None:
    # Leading blanks are ignored by the spec but keep a line off the fast path, so the pair
    # compares the fast path (with whatever the shared label cache holds) with the careful one.
    assert outcome(line + "\n") == outcome(" " + line + "\n")


@PROPERTY
@given(st.lists(families(), max_size=4), st.data())
def test_error_line_numbers_point_at_the_corrupted_line(
    metrics: list[Metric], data: st.DataObject
) -> None:
    lines = render(metrics).split("\n")[:-1]
    candidates = [i for i, line in enumerate(lines) if not line.startswith("#")]
    assume(candidates)
    bad = data.draw(st.sampled_from(candidates))
    lines[bad] += data.draw(st.sampled_from([" x", " 1 2", "{", '"', " 1.5"]))
    error = parse_error("\n".join(lines) + "\n")
    assert error.line == bad + 1


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet='m{}"=, \t\n#\\1.eE+-NaInf_x:')))
def test_arbitrary_text_either_parses_or_raises_parse_error(text: str) -> None:
    try:
        samples = parse_exposition(text)
    except ParseError as error:
        assert 1 <= error.line <= text.count("\n") + 1
    else:
        assert all(isinstance(s, ParsedSample) for s in samples)


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_either_parse_or_raise_parse_error(body: bytes) -> None:
    try:
        parse_exposition(body)
    except ParseError as error:
        assert 1 <= error.line <= body.count(b"\n") + 1


# --- OpenMetrics, generated -------------------------------------------------------------------


@st.composite
def openmetrics_families(draw: st.DrawFn) -> tuple[Metric, list[int | None]]:
    """A gauge or counter family, and the ms timestamps its samples were given."""
    kind = draw(st.sampled_from(["gauge", "counter"]))
    # prometheus_client, the reference here, cannot take a family named only of `_` and `:`
    # beside others: its registry calls them clashing and its parser misgroups its own output
    name = draw(
        metric_names.filter(
            lambda n: not n.endswith(("_total", "_created")) and n.strip("_:") != ""
        )
    )
    family = Metric(name, "help", kind)
    stamps: list[int | None] = []
    for labels in draw(
        st.lists(label_sets, max_size=4, unique_by=lambda d: tuple(sorted(d.items())))
    ):
        ts = draw(timestamps_ms)
        stamps.append(ts)
        value = draw(sample_values) if kind == "gauge" else draw(st.integers(0, 2**50)) * 1.0
        suffix = "_total" if kind == "counter" else ""
        family.add_sample(name + suffix, labels, value, None if ts is None else ts / 1000)
    return family, stamps


@PROPERTY
@given(st.lists(openmetrics_families(), max_size=4, unique_by=lambda f: f[0].name))
def test_generated_openmetrics_parses_like_prometheus_client(
    generated: list[tuple[Metric, list[int | None]]],
) -> None:
    metrics = [family for family, _ in generated]
    text = render(metrics, openmetrics=True)
    parsed = ours(text, openmetrics=True)
    assert [s[:3] for s in parsed] == [
        comparable(s.name, s.labels.items(), s.value, None)[:3]
        for family in reference_openmetrics_families(text)  # type: ignore[no-untyped-call]
        for s in family.samples
    ]
    assert [s[3] for s in parsed] == [ts for _, stamps in generated for ts in stamps]


def test_metric_names_are_one_shared_string_across_bodies() -> None:
    """A sample keeps its name until the store has it: one string per name, not per sample."""
    first = parse_exposition(b'fp_shared_name_total 1\nfp_shared_name_total{a="b"} 2\n')
    second = parse_exposition("fp_shared_name_total 3\n")
    assert first[0].name == "fp_shared_name_total"
    assert first[0].name is first[1].name is second[0].name

"""Parse a scraped exposition body (Prometheus text format 0.0.4, or OpenMetrics) into samples.

The scrape loop runs this for every target on every interval, so it is built for speed: one
regular expression cuts every line of the canonical shape into fields and parsed label sets are
cached; anything unusual falls through to a careful parser that also words every error message.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from collector.errors import CollectorError

__all__ = ["ParseError", "ParsedSample", "parse_exposition"]

Labels = tuple[tuple[str, str], ...]


class ParseError(CollectorError, ValueError):
    """The body is not valid exposition text.

    ``line`` is the 1-based number of the offending line; ``reason`` says what was wrong.
    """

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"parse error at line {line}: {reason}")
        self.line = line
        self.reason = reason

    def __reduce__(self) -> tuple[type[ParseError], tuple[int, str]]:
        # The default would rebuild the error from its message alone, which __init__ rejects;
        # pickling matters once errors cross a process boundary.
        return (type(self), (self.line, self.reason))


class ParsedSample(NamedTuple):
    """One sample line: labels keep the order of the exposition, timestamp is in ms or None."""

    name: str
    labels: Labels
    value: float
    timestamp_ms: int | None


_METRIC_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_BLANKS_RE: Final = re.compile(r"[ \t]*")  # the only whitespace the spec allows between tokens
_TOKEN_RE: Final = re.compile(r"[^ \t]*")
_LABEL_VALUE_RUN_RE: Final = re.compile(r'[^"\\]*')

_ESCAPES: Final = {"\\": "\\", '"': '"', "n": "\n"}
# float() also yields nan/inf for "+nan" or "1e999"; Go's ParseFloat, which defines the format in
# practice, accepts only these spellings (compared lower-cased) for the non-finite values.
_NON_FINITE_SPELLINGS: Final = frozenset(
    {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
_NON_FINITE_LITERALS: Final = frozenset({"NaN", "+Inf", "-Inf", "Inf"})  # as exporters write them

# One line per match, each ending at its "\n" (the caller guarantees a final one), so the n-th
# match is line n. Groups: (1) metric name, (2) label-set text, (3) value, (4) timestamp, all
# of the canonical shape `name{a="x"} value timestamp` with single spaces; or (5) any other line
# that is not a comment, for the careful path. Comments and empty lines leave all groups empty.
# The value alternatives are the common spellings Go's ParseFloat takes (others, like "nan" or
# "+Infinity", go the careful way); label text is checked by _parse_simple_label_set; a
# timestamp of up to 18 digits always fits in int64.
_ROW_RE: Final = re.compile(
    r"""
    (?:
        ([a-zA-Z_:][a-zA-Z0-9_:]*)
        (?:\{([^}\n]*)\})?
        [ ]
        ( [-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)? | NaN | [-+]?Inf )
        (?:[ ]([0-9]{1,18}))?
      | \#[^\n]*
      | ([^\n]*)
    )
    \n
    """,
    re.VERBOSE,
)
_CHUNK_CHARS: Final = 65_536  # text per regex pass; see parse_exposition
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_MS_PER_SECOND: Final = 1000
_EOF_LINE: Final = "# EOF"

# Label names and whole label sets repeat within a body and across scrapes, so validated ones
# are remembered module-wide (on node_exporter output this makes the parser ~1.5x faster). Each
# entry is a pure function of its key, so sharing between callers and threads is safe; the
# bounds keep a hostile target from growing them without limit, and a full cache is emptied.
_CACHE_MAX_ENTRIES: Final = 65_536
_CACHE_MAX_KEY_CHARS: Final = 512
_VALID_LABEL_NAMES: set[str] = set()
_LABEL_SETS: dict[str, Labels] = {}  # text between the braces -> parsed labels
# Metric names, one shared string each: a sample keeps its name until it is written, and a
# fresh string per sample was ~70 of its ~170 bytes while samples wait for the store (a
# first scrape of 500k new series piled up 700k of them). A shared string also keeps its
# hash, which the store's series lookup would otherwise compute again for every sample.
_NAMES: dict[str, str] = {}
_NO_LABELS: Final[Labels] = ()


def parse_exposition(body: bytes | str, *, openmetrics: bool = False) -> list[ParsedSample]:
    """Parse a whole exposition body into samples, in the order they appear.

    Comments (``# HELP``, ``# TYPE`` and any other) and blank lines are skipped. Bytes are decoded
    as strict UTF-8. With ``openmetrics`` the body must end with ``# EOF``, timestamps are float
    seconds (converted to whole ms) and exemplars are checked and dropped. Raises ParseError on
    the first malformed line.
    """
    text = _decode(body)
    if openmetrics:
        text = _cut_at_eof_marker(text)
    elif text and text[-1] != "\n":
        # The spec wants a line feed after the last line; a body without one was probably cut
        # off in transit, and its last value may be truncated too.
        raise ParseError(text.count("\n") + 1, "the last line does not end with a line feed")

    known_label_set = _LABEL_SETS.get
    known_name = _NAMES.get
    samples: list[ParsedSample] = []
    append = samples.append
    # Building the tuple directly skips NamedTuple's Python-level __new__: half the cost.
    new_tuple = tuple.__new__
    lines: list[str] | None = None  # split only if some line needs the careful path

    # Regex passes cut every line into fields in C; see _ROW_RE for what each group holds.
    # Working chunk by chunk keeps each list of rows small enough to stay in the CPU caches,
    # which makes big bodies ~1.3x faster than one pass over everything.
    find_rows = _ROW_RE.findall
    first_line = 1
    start = 0
    while start < len(text):
        stop = text.find("\n", start + _CHUNK_CHARS) + 1 or len(text)  # a chunk of whole lines
        rows = find_rows(text, start, stop)
        for lineno, (name, content, value_text, stamp, other) in enumerate(rows, first_line):
            if name:
                name = known_name(name) or _remember_name(name)
                labels = known_label_set(content) if content else _NO_LABELS
                if labels is None:
                    labels = _parse_simple_label_set(content)
                if labels is not None:
                    value = float(value_text)  # the pattern admits only what float() takes
                    # value - value is 0.0 unless value is nan or ±inf; "1e999" overflows to
                    # inf and is invalid (out of range), so non-finite values must be spelled out.
                    if value - value == 0.0 or value_text in _NON_FINITE_LITERALS:
                        if not stamp:
                            append(new_tuple(ParsedSample, (name, labels, value, None)))
                            continue
                        if not openmetrics:  # OpenMetrics stamps are seconds: the slow path
                            append(new_tuple(ParsedSample, (name, labels, value, int(stamp))))
                            continue
            elif not other:
                continue  # a comment or an empty line
            if lines is None:
                lines = text.split("\n")
            sample = _parse_line(lines[lineno - 1], lineno, openmetrics)
            if sample is not None:
                append(sample)
        first_line += len(rows)
        start = stop
    return samples


def _decode(body: bytes | str) -> str:
    """Return the body as text, or raise ParseError on the line holding invalid UTF-8."""
    if isinstance(body, str):
        if body.isascii():  # O(1) in CPython: the flag is stored on the string
            return body
        try:
            body.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates, e.g. from errors="surrogateescape"
            raise ParseError(body.count("\n", 0, exc.start) + 1, "invalid UTF-8 text") from exc
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise ParseError(line, f"invalid UTF-8 at byte offset {exc.start}") from exc


def _cut_at_eof_marker(text: str) -> str:
    """Return the OpenMetrics body before its `# EOF` line; raise if it is missing or not last."""
    probe = "\n" + text  # so that every line, the first included, starts after a "\n"
    start = 0
    while True:
        newline = probe.find("\n" + _EOF_LINE, start)
        if newline < 0:
            # A missing marker means the body was cut short; say where it was expected.
            lines = text.count("\n") + (1 if text and text[-1] != "\n" else 0)
            raise ParseError(lines + 1, "missing '# EOF' at the end of an OpenMetrics body")
        after = newline + 1 + len(_EOF_LINE)
        if after == len(probe) or probe[after] == "\n":
            break
        start = newline + 1  # a line that merely starts with "# EOF"
    if probe[after + 1 :]:
        raise ParseError(probe.count("\n", 0, after) + 1, "content after '# EOF'")
    return text[:newline]


def _is_label_name(name: str) -> bool:
    """Is this a valid label name (other than the reserved ``__name__``)?"""
    if name in _VALID_LABEL_NAMES:
        return True
    if _LABEL_NAME_RE.fullmatch(name) is None or name == "__name__":
        return False
    if len(_VALID_LABEL_NAMES) >= _CACHE_MAX_ENTRIES:
        _VALID_LABEL_NAMES.clear()
    if len(name) <= _CACHE_MAX_KEY_CHARS:
        _VALID_LABEL_NAMES.add(name)
    return True


def _remember_name(name: str) -> str:
    if len(name) <= _CACHE_MAX_KEY_CHARS:
        if len(_NAMES) >= _CACHE_MAX_ENTRIES:
            _NAMES.clear()
        _NAMES[name] = name
    return name


def _remember_label_set(content: str, labels: Labels) -> None:
    if len(content) <= _CACHE_MAX_KEY_CHARS:
        if len(_LABEL_SETS) >= _CACHE_MAX_ENTRIES:
            _LABEL_SETS.clear()
        _LABEL_SETS[content] = labels


def _parse_simple_label_set(content: str) -> Labels | None:
    """Parse label-set text of the canonical shape `a="x",b="y"`; None means "use the slow path".

    Without backslashes a value cannot hold a quote, so splitting on `",` is exact. Blanks,
    escapes and a trailing comma are all legal but rare, and the slow path handles them.
    """
    if content[-1] != '"' or "\\" in content:
        return None
    pairs = []
    for item in content[:-1].split('",'):
        label_name, equals_quote, label_value = item.partition('="')
        if not equals_quote or '"' in label_value or not _is_label_name(label_name):
            return None
        pairs.append((label_name, label_value))
    if len(pairs) > 1 and len({pair[0] for pair in pairs}) != len(pairs):
        return None  # a duplicate label name: the slow path reports it
    labels = tuple(pairs)
    _remember_label_set(content, labels)
    return labels


# --- the careful path: every rule of the grammar, with a reason for each failure -------------


def _skip_blanks(line: str, pos: int) -> int:
    match = _BLANKS_RE.match(line, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _token_at(line: str, pos: int) -> tuple[str, int]:
    """Return the token (up to the next blank or the end of line) at pos and its end."""
    match = _TOKEN_RE.match(line, pos)
    assert match is not None  # the pattern matches the empty string
    return match.group(), match.end()


def _parse_line(line: str, lineno: int, openmetrics: bool) -> ParsedSample | None:
    """Parse one line of any legal shape; None for a blank or comment line."""
    end = len(line)
    pos = _skip_blanks(line, 0)  # "leading and trailing whitespace is ignored"
    if pos == end or line[pos] == "#":
        return None
    match = _METRIC_NAME_RE.match(line, pos)
    if match is None:
        raise ParseError(lineno, f"expected a metric name, found {line[pos]!r}")
    name = match.group()
    pos = _skip_blanks(line, match.end())
    labels = _NO_LABELS
    if pos < end and line[pos] == "{":
        labels, pos = _parse_label_set(line, pos, lineno, remember=True)
        pos = _skip_blanks(line, pos)
    elif pos == match.end() and pos < end:
        # `up-1 2` is most likely a bad name, not `up` with value -1 and timestamp 2.
        raise ParseError(lineno, f"invalid character {line[pos]!r} in metric name {name!r}")
    if pos == end:
        raise ParseError(lineno, f"missing value for metric {name!r}")
    text, pos = _token_at(line, pos)
    value = _parse_float(text, lineno, "value")
    pos = _skip_blanks(line, pos)

    timestamp_ms = None
    if pos < end and not (openmetrics and line[pos] == "#"):
        text, pos = _token_at(line, pos)
        timestamp_ms = _parse_timestamp(text, lineno, openmetrics)
        pos = _skip_blanks(line, pos)
    if pos < end:
        if openmetrics and line[pos] == "#":
            _check_exemplar(line, pos, lineno)
        else:
            what = "value" if timestamp_ms is None else "timestamp"
            raise ParseError(lineno, f"unexpected text after the {what}: {line[pos:]!r}")
    return ParsedSample(name, labels, value, timestamp_ms)


def _parse_label_set(line: str, pos: int, lineno: int, *, remember: bool) -> tuple[Labels, int]:
    """Parse the label set whose "{" is at pos; return the labels and the position after "}"."""
    opening = pos
    end = len(line)
    pairs: list[tuple[str, str]] = []
    pos += 1
    while True:
        pos = _skip_blanks(line, pos)
        if pos == end:
            raise ParseError(lineno, "label set is not closed with '}'")
        if line[pos] == "}":  # an empty set, or a trailing comma
            break
        match = _LABEL_NAME_RE.match(line, pos)
        if match is None:
            raise ParseError(lineno, f"expected a label name or '}}', found {line[pos]!r}")
        label_name = match.group()
        if label_name == "__name__":
            raise ParseError(lineno, "label name '__name__' is reserved")
        if any(label_name == seen for seen, _ in pairs):
            raise ParseError(lineno, f"duplicate label name {label_name!r}")
        pos = _skip_blanks(line, match.end())
        if pos == end or line[pos] != "=":
            found = repr(line[pos]) if pos < end else "end of line"
            raise ParseError(lineno, f"expected '=' after label name {label_name!r}, found {found}")
        pos = _skip_blanks(line, pos + 1)
        if pos == end or line[pos] != '"':
            found = repr(line[pos]) if pos < end else "end of line"
            raise ParseError(
                lineno, f"expected '\"' to open the value of label {label_name!r}, found {found}"
            )
        label_value, pos = _read_label_value(line, pos + 1, lineno, label_name)
        pairs.append((label_name, label_value))
        pos = _skip_blanks(line, pos)
        if pos == end:
            raise ParseError(lineno, "label set is not closed with '}'")
        if line[pos] == "}":
            break
        if line[pos] != ",":
            raise ParseError(
                lineno,
                f"expected ',' or '}}' after the value of label {label_name!r}, "
                f"found {line[pos]!r}",
            )
        pos += 1
    labels = tuple(pairs)
    if remember:
        _remember_label_set(line[opening + 1 : pos], labels)
    return labels, pos + 1


def _read_label_value(line: str, pos: int, lineno: int, label_name: str) -> tuple[str, int]:
    """Read a quoted label value starting after its opening quote; return it and the end."""
    chunks: list[str] = []
    end = len(line)
    while True:
        match = _LABEL_VALUE_RUN_RE.match(line, pos)
        assert match is not None  # the pattern matches the empty string
        chunks.append(match.group())
        pos = match.end()
        if pos == end:
            raise ParseError(lineno, f"value of label {label_name!r} is not closed with '\"'")
        if line[pos] == '"':
            return "".join(chunks), pos + 1
        escaped = line[pos + 1 : pos + 2]  # after a backslash
        replacement = _ESCAPES.get(escaped)
        if replacement is None:
            sequence = "\\" + escaped
            raise ParseError(
                lineno, f"invalid escape sequence {sequence!r} in the value of label {label_name!r}"
            )
        chunks.append(replacement)
        pos += 2


def _parse_float(text: str, lineno: int, what: str) -> float:
    """Parse a sample value as Go's ParseFloat would (the format's reference behaviour)."""
    if text.isascii() and text.isprintable() and "_" not in text:
        try:
            value = float(text)
        except ValueError:
            pass
        else:
            if value - value == 0.0 or text.lower() in _NON_FINITE_SPELLINGS:
                return value
    raise ParseError(lineno, f"invalid {what} {text!r}{_crlf_hint(text)}")


def _parse_timestamp(text: str, lineno: int, openmetrics: bool) -> int:
    """Parse a timestamp to ms: int64 ms in the text format, float seconds in OpenMetrics."""
    if openmetrics:
        seconds = _parse_float(text, lineno, "timestamp")
        if seconds - seconds == 0.0:  # finite; round() would raise on nan or inf
            milliseconds = round(seconds * _MS_PER_SECOND)
            if _INT64_MIN <= milliseconds <= _INT64_MAX:
                return milliseconds
        raise ParseError(lineno, f"invalid timestamp {text!r} (expected seconds in int64 ms range)")
    # int() is as lax as float() ("_", non-ASCII digits, surrounding whitespace); refuse those.
    if text.isascii() and text.isprintable() and "_" not in text:
        try:
            milliseconds = int(text)
        except ValueError:
            pass
        else:
            if _INT64_MIN <= milliseconds <= _INT64_MAX:
                return milliseconds
    raise ParseError(
        lineno, f"invalid timestamp {text!r} (expected integer milliseconds){_crlf_hint(text)}"
    )


def _crlf_hint(text: str) -> str:
    # A token ending in "\r" almost always means a body written with CRLF line ends.
    return "; lines must end with a line feed alone, not CRLF" if text.endswith("\r") else ""


def _check_exemplar(line: str, pos: int, lineno: int) -> None:
    """Validate an OpenMetrics exemplar (`# {labels} value [timestamp]`) at pos; we drop it."""
    end = len(line)
    pos = _skip_blanks(line, pos + 1)
    if pos == end or line[pos] != "{":
        raise ParseError(lineno, "expected '{' to open the exemplar's label set")
    _, pos = _parse_label_set(line, pos, lineno, remember=False)
    pos = _skip_blanks(line, pos)
    if pos == end:
        raise ParseError(lineno, "missing exemplar value")
    text, pos = _token_at(line, pos)
    _parse_float(text, lineno, "exemplar value")
    pos = _skip_blanks(line, pos)
    if pos < end:
        text, pos = _token_at(line, pos)
        _parse_timestamp(text, lineno, openmetrics=True)
        pos = _skip_blanks(line, pos)
    if pos < end:
        raise ParseError(lineno, f"unexpected text after the exemplar: {line[pos:]!r}")

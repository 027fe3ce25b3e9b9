"""Listen addresses (`host:port`, `[v6]:port`, `:port`) as typed values."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from fleetpulse.core.yamlfile import MapView


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def loopback(self) -> Listen:
        """Where this process reaches its own listener: a wildcard address is loopback."""
        if self.host in ("", "0.0.0.0"):
            return Listen("127.0.0.1", self.port)
        if self.host == "::":
            return Listen("::1", self.port)
        return self


def parse_listen(text: str) -> Listen:
    """`host:port`, `[v6]:port` or `:port` (all interfaces)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"expected host:port, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected a port from 0 to 65535, got {port_text!r}")
    return Listen(host, int(port_text))


def listen_arg(text: str) -> Listen:
    """parse_listen as an argparse type: a bad address is a usage error."""
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def listen_value(view: MapView, key: str, default: Listen) -> Listen:
    text = view.text(key)
    if not text:
        return default
    try:
        return parse_listen(text)
    except ValueError as exc:
        view.reader.problem(view.line_of(key), view.key_path(key), str(exc))
        return default

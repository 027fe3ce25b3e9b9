"""A throw-away TLS certificate for servers on 127.0.0.1, made with the openssl CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from exporter.settings import TlsSettings
from tests.support.require import missing


def self_signed(directory: Path) -> TlsSettings:
    """cert.pem and key.pem in `directory` for 127.0.0.1 (its own CA), valid for a day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("the openssl command is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [str(openssl), "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return TlsSettings(cert, key)

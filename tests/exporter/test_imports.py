"""What `fleetpulse exporter` loads. Imported code is most of the exporter's resident memory
(docs/exporter.md, Performance): the collector and the alert engine (with Apprise) cost ~5 MiB
and the docker SDK with requests ~8 MiB, so a stray import would quietly break the 50 MB
budget. This checks the modules, not the memory, so it cannot be fooled by a noisy machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("apprise", "jinja2", "influxdb_client", "sqlite3", "docker", "requests", "urllib3",
         "charset_normalizer")  # fmt: skip
# fleetpulse.app.config validates every section of the file, and the parser knows every command's
# flags: those modules are small and import nothing heavy
OTHER_SERVICES_ALLOWED = {"collector", "collector.flags", "collector.settings",
                          "collector.storage", "collector.storage.settings", "alerting",
                          "alerting.settings"}  # fmt: skip

PROBE = """
import json, sys
from fleetpulse.app.cli import build_parser
args = build_parser().parse_args(["exporter", "--listen", "127.0.0.1:0"])
import fleetpulse.app.exporter_main, exporter.service, exporter.sources.containers
print(json.dumps(sorted(sys.modules)))
"""


def test_the_exporter_loads_no_other_service_and_no_docker_sdk() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout)
    assert "exporter.sources.containers" in modules, "the probe imported the exporter"
    loaded = sorted(
        m
        for m in modules
        if m.split(".")[0] in HEAVY
        or (m.split(".")[0] in ("collector", "alerting") and m not in OTHER_SERVICES_ALLOWED)
    )
    assert not loaded, f"the exporter process imports {loaded}"

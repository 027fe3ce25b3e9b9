"""Write (or with --check, verify) the dashboards and provisioning files under grafana/.

python -m grafana.generate            # after changing the built-in thresholds or the code
python -m grafana.generate --thresholds rules/thresholds.yaml --out /srv/grafana   # your levels
python -m grafana.generate --check    # exit 1 when a committed file is stale
python -m grafana.generate -c fleetpulse.yaml --out /srv/grafana   # your retention, bucket
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from alerting.thresholds import load_thresholds
from fleetpulse.config import load_config
from fleetpulse.errors import ConfigError
from grafana import alerts, containers, host, logs, overview
from grafana.contract import DEFAULT_THRESHOLDS_FILE, GRAFANA_DIR, Buckets, Inputs
from grafana.panels import JSON
from grafana.provisioning import dashboards_yaml, datasource_yaml

BUILDERS: dict[str, Callable[[Inputs], JSON]] = {
    "overview": overview.build,
    "host": host.build,
    "containers": containers.build,
    "alerts": alerts.build,
    "logs": logs.build,
}
STALE_HINT = "run python -m grafana.generate"


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def render(
    config_path: Path | None = None, thresholds_path: Path = DEFAULT_THRESHOLDS_FILE
) -> dict[str, str]:
    """Every generated file's text, keyed by its path under grafana/."""
    config = load_config(config_path)
    inputs = Inputs(
        Buckets(config.storage.influxdb.bucket, config.retention),
        load_thresholds(thresholds_path),
    )
    files = {
        f"dashboards/{name}.json": json.dumps(build(inputs), indent=2, ensure_ascii=False) + "\n"
        for name, build in BUILDERS.items()
    }
    files["provisioning/datasources/fleetpulse.yaml"] = datasource_yaml(
        org=config.storage.influxdb.org,
        bucket=config.storage.influxdb.bucket,
        scrape_interval=_duration(config.scrape.interval),
    )
    files["provisioning/dashboards/fleetpulse.yaml"] = dashboards_yaml()
    return files


def stale_files(files: dict[str, str], out: Path) -> list[str]:
    stale = []
    for name, text in files.items():
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grafana.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "-c", "--config", type=Path, help="fleetpulse.yaml (retention, bucket, org)"
    )
    parser.add_argument(
        "--thresholds",
        type=Path,
        default=DEFAULT_THRESHOLDS_FILE,
        help="the thresholds.yaml to draw (default: the built-in rules' one)",
    )
    parser.add_argument("--out", type=Path, default=GRAFANA_DIR, help="default: grafana/")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    args = parser.parse_args(argv)
    try:
        files = render(args.config, args.thresholds)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        stale = stale_files(files, args.out)
        for name in stale:
            print(f"stale: {args.out / name}; {STALE_HINT}", file=sys.stderr)
        return 1 if stale else 0
    for name, text in files.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

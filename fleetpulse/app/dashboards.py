"""`fleetpulse dashboards`: write, or with --check verify, the Grafana dashboards and
provisioning files for this installation's retention, bucket, org and thresholds."""

from __future__ import annotations

import argparse
import sys

from fleetpulse.app.config import load_config
from fleetpulse.core.errors import ConfigError
from grafana.contract import DEFAULT_THRESHOLDS_FILE, GRAFANA_DIR
from grafana.generate import STALE_HINT, Site, render, stale_files, write_files

EXIT_OK, EXIT_ERROR = 0, 1


def run_dashboards(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        site = Site(
            org=config.storage.influxdb.org,
            bucket=config.storage.influxdb.bucket,
            retention=config.retention,
            scrape_interval=config.scrape.interval,
        )
        files = render(site, args.thresholds or DEFAULT_THRESHOLDS_FILE)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    out = args.out or GRAFANA_DIR
    if args.check:
        stale = stale_files(files, out)
        for name in stale:
            print(f"stale: {out / name}; {STALE_HINT}", file=sys.stderr)
        return EXIT_ERROR if stale else EXIT_OK
    for path in write_files(files, out):
        print(f"wrote {path}")
    return EXIT_OK

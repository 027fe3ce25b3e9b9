"""Screenshots of the console's pages for the README: `make screenshots` writes
docs/img/console-{fleet,host,alerts,logs}.png.

`fleetpulse up` scrapes a few synthetic hosts (one warning, one critical, one down) whose
exporter also has log lines, over a store holding eight days of one host's history (the same
fill as bench/console.py), and Debian's chromium takes each page at 1280x860 in the light
theme. Run: `.venv/bin/python -m bench.screenshots [--out docs/img]`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

# bench/ holds scripts named like our packages: put the repository, not this folder, first
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from playwright.async_api import Page  # noqa: E402

from bench.console import DRAWN, fill_history  # noqa: E402
from tests.console.harness import Usage, api_json, launch, running_up, up_config  # noqa: E402
from tests.console.logsource import serve_logging_fleet  # noqa: E402
from tests.support.poll import eventually  # noqa: E402

HISTORY_HOST = "web-01"
HOSTS = {
    HISTORY_HOST: Usage(cpu=34, memory=52, disk={"/": 41, "/data": 63}),
    "web-02": Usage(cpu=78, memory=61, disk={"/": 55}),
    "db-01": Usage(cpu=93, memory=64, disk={"/": 71, "/var/lib/postgresql": 78}),
    "cache-01": Usage(cpu=12, memory=35, disk={"/": 22}),
    "backup-01": Usage(cpu=5, memory=20, disk={"/": 48}, up=False),
}
LOG_LINES = (
    ("info", "exporter", "exporter started listen=0.0.0.0:9100 sources=cpu,memory,disk,network"),
    ("info", "exporter.docker", "docker engine found containers=7"),
    ("warning", "exporter.disk", "slow collection source=disk took=1.8s interval=15s"),
    ("info", "exporter", "scrape from 10.0.0.5 served in 4ms"),
    ("error", "exporter.docker", "docker API failed error=connection refused; retrying in 30s"),
    (
        "warning",
        "exporter.http",
        "auth failed remote=10.0.0.9 path=/metrics reason=wrong credentials",
    ),
    ("info", "exporter.docker", "docker engine back containers=7"),
)


async def shoot(page: Page, url: str, ready: str, out: Path) -> None:
    await page.goto("about:blank")
    await page.goto(url)
    await page.wait_for_function(ready)
    await page.wait_for_timeout(500)  # let late sparklines and fonts settle
    await page.screenshot(path=str(out))
    print(f"wrote {out}")


async def run(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        for name, usage in HOSTS.items():
            # eight days behind the host page, a day behind each sparkline, near today's usage
            days = 8 if name == HISTORY_HOST else 1
            levels = {
                "host_cpu_usage_percent": usage.cpu - 6,
                "host_memory_usage_percent": usage.memory - 6,
                "host_disk_usage_percent": max(usage.disk.values()) - 12,
            }
            await fill_history(work / "data" / "metrics.db", name, days, levels)
        async with serve_logging_fleet(HOSTS) as fleet:
            for level, logger, message in LOG_LINES:
                fleet.log(HISTORY_HOST, level, message, logger)
            async with running_up(work, up_config(fleet)) as up:

                async def scraped() -> bool:
                    doc = await api_json(up.base, "/api/v1/hosts")
                    return sum(1 for h in doc["hosts"] if h["cpu"] is not None) >= len(HOSTS) - 1

                await eventually(scraped, "the hosts scraped", within=60, every=0.5)
                async with launch() as browser:
                    context = await browser.new_context(
                        viewport={"width": 1280, "height": 860}, color_scheme="light"
                    )
                    page = await context.new_page()
                    host = f"{up.base}/#/host/{HISTORY_HOST}"
                    drawn = f"() => {DRAWN} > 0"
                    await shoot(page, f"{up.base}/#/", drawn, out / "console-fleet.png")
                    await shoot(page, host, drawn, out / "console-host.png")
                    await shoot(
                        page,
                        f"{up.base}/#/alerts",
                        "() => !document.querySelector('main').textContent.includes('Loading')",
                        out / "console-alerts.png",
                    )
                    await shoot(
                        page,
                        f"{host}/logs",
                        f"() => document.querySelectorAll('ol.logs li').length >= {len(LOG_LINES)}",
                        out / "console-logs.png",
                    )
                    await context.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "img")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.out))


if __name__ == "__main__":
    main()

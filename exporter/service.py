"""The exporter service: sources → collection loop → cache → HTTP."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field

from aiohttp import web

from exporter.collect import ExpositionCache, SourceSchedule, run_collection
from exporter.logbuffer import LogBuffer
from exporter.logbuffer import install as install_log_buffer
from exporter.server import make_app
from exporter.settings import ExporterSettings, TlsSettings
from exporter.sources.base import FLAG_OFF_HINT, Source
from fleetpulse.core.errors import ConfigError, Problem
from fleetpulse.core.listen import Listen
from fleetpulse.core.site import start_site

log = logging.getLogger(__name__)
LOG_BUFFER_LINES = 10_000
OWN_LOGGERS = "exporter"  # the parent of every logger of the exporter's own code
# Under `fleetpulse up` a failing source's warning names the config key, since `up` has no
# --disable flag (FLAG_OFF_HINT is the exporter's own words).
CONFIG_OFF_HINT = "exporter.{source}.enabled: false in the config"


def build_sources(settings: ExporterSettings, off_hint: str = FLAG_OFF_HINT) -> tuple[Source, ...]:
    """The enabled sources; each module is imported only when its source is on."""
    sources: list[Source] = []
    if settings.host.enabled:
        from exporter.sources.host import HostSource

        sources.append(HostSource(temperatures=settings.temperatures))
    if settings.disk.enabled:
        from exporter.sources.disk import DiskSource

        sources.append(DiskSource(settings.disk_filter))
    if settings.network.enabled:
        from exporter.sources.network import NetworkSource

        sources.append(NetworkSource(settings.interfaces))
    if settings.containers.enabled:
        from exporter.sources.containers import ContainerSource

        # the fan-out of stats calls must end before the loop's own timeout for the source
        deadline = max(0.5, settings.timeout_of("containers") - 0.5)
        sources.append(
            ContainerSource(
                settings.docker,
                settings.container_names,
                deadline,
                off_hint.format(source=ContainerSource.name),
            )
        )
    return tuple(sources)


def close_sources(sources: tuple[Source, ...]) -> None:
    for source in sources:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """The server's context; a file that cannot be read or used is a ConfigError naming it and
    the flag or key that named it (ssl's own errors name neither)."""
    problems = []
    for path, origin in ((tls.cert_file, tls.cert_origin), (tls.key_file, tls.key_origin)):
        try:
            path.read_bytes()
        except OSError as exc:
            problems.append(Problem(*origin, f"cannot read {path}: {exc.strerror}"))
    if problems:
        raise ConfigError(problems)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except ssl.SSLError as exc:
        why = exc.reason.lower().replace("_", " ") if exc.reason else "not PEM"
        message = f"cannot use {tls.cert_file} with the key {tls.key_file}: {why}"
        raise ConfigError([Problem(*tls.cert_origin, message)]) from None
    return context


@dataclass
class RunningExporter:
    listen: Listen
    runner: web.AppRunner
    collection: asyncio.Task[None]
    cache: ExpositionCache
    sources: tuple[Source, ...] = ()
    scheme: str = "http"
    logs: LogBuffer | None = None
    log_source: logging.Logger = field(default_factory=logging.getLogger)  # where `logs` listens

    @property
    def url(self) -> str:
        host = self.listen.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"{self.scheme}://{Listen(host, self.listen.port)}/metrics"

    async def stop(self) -> None:
        self.collection.cancel()
        await asyncio.gather(self.collection, return_exceptions=True)
        await self.runner.cleanup()
        await asyncio.to_thread(close_sources, self.sources)
        log.info("exporter stopped")
        if self.logs is not None:
            self.log_source.removeHandler(self.logs)


async def start_exporter(
    settings: ExporterSettings,
    listen: Listen | None = None,
    *,
    shares_process: bool = False,
) -> RunningExporter:
    """Start collecting and serving; auth and TLS come from `settings`. Alone in its process,
    every log line of the process is the exporter's and /logs keeps them all; when it
    `shares_process` with other services (`fleetpulse up`), /logs keeps only the `exporter.*`
    loggers' lines, not the collector's or the API's, and a failing source's hint names the
    config key rather than the exporter's flag."""
    # a bad cert or key is a config error: fail before anything runs
    context = tls_context(settings.tls) if settings.tls else None
    sources = build_sources(settings, CONFIG_OFF_HINT if shares_process else FLAG_OFF_HINT)
    cache = ExpositionCache([s.name for s in sources])
    schedules = [
        SourceSchedule(s, settings.interval_of(s.name), settings.timeout_of(s.name))
        for s in sources
    ]
    # the exporter's own log lines, for /logs: secrets it knows are masked before storing
    logs = LogBuffer(LOG_BUFFER_LINES, secrets=(settings.auth.bearer_token, settings.auth.password))
    log_source = logging.getLogger(OWN_LOGGERS if shares_process else None)
    install_log_buffer(logs, log_source)
    # bind before collecting: a busy port then fails at once, with no collection to unwind
    try:
        runner, bound = await start_site(
            make_app(cache, settings.auth, logs), listen or settings.listen, context
        )
    except BaseException:
        log_source.removeHandler(logs)
        close_sources(sources)
        raise
    collection = asyncio.create_task(run_collection(schedules, cache), name="exporter-collection")
    log.info(
        "exporter listening address=%s sources=%s interval=%gs tls=%s auth=%s",
        bound,
        ",".join(f"{s.name}:{settings.interval_of(s.name):g}s" for s in sources),
        settings.interval,
        context is not None,
        "bearer" if settings.auth.bearer_token else "basic" if settings.auth.username else "none",
    )
    return RunningExporter(
        bound, runner, collection, cache, sources, "https" if context else "http", logs, log_source
    )

"""The global-configuration publisher (PR-GCONF §9.2; default port 80).

Serves, as static bytes held in memory (never generated per request):

- ``GET /internalconf`` and ``GET /externalconf``: the newest signed
  directories, ``multipart/related`` with their boundary;
- ``GET /V6/<version id>/<file>``: the files those directories list, for the
  last ``[publisher] keep_versions`` generations.

PR-GCONF: "The server returns 404 for versions it does not serve", so
``?version=N`` other than 6 is answered 404 and a client steps down.

A background task (``cleanup_ctx``) regenerates when the registry changed
(the newest audit-log id moved, which every change and every signing-key
operation writes) and at least every ``refresh_seconds`` (60 s), so the
published ``Expire-date`` (``now + confExpireIntervalSeconds``) never lapses
while the server runs. A failed generation keeps the previous one published
and is logged; nothing half-built is ever served.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from jplink.errors import JPLinkError
from jplink.storage import Database
from jplink.tasks import cancel_and_wait

from .appkeys import CLOCK, CONFIG
from .confgen.build import CONF_VERSION, GeneratedConfiguration
from .confgen.service import generate_configuration
from .confgen.snapshot import change_marker
from .config import CentralConfig
from .db import open_database

__all__ = [
    "STORE",
    "ConfigurationStore",
    "StaticFile",
    "make_publisher_app",
    "start_publisher",
]

log = logging.getLogger(__name__)

_XML = "application/xml"


@dataclass(frozen=True, slots=True)
class StaticFile:
    """A response body with its content type, built once per generation."""

    content_type: str
    body: bytes


class ConfigurationStore:
    """The published generations, in memory.

    :meth:`publish` swaps in a whole generation at once (single-threaded
    asyncio: a request sees either the old or the new generation, never a mix).
    """

    def __init__(self, keep_versions: int = 5) -> None:
        if keep_versions < 1:
            raise ValueError("keep_versions must be at least 1")
        self._keep = keep_versions
        self._files: OrderedDict[str, dict[str, StaticFile]] = OrderedDict()
        self._directories: dict[str, StaticFile] = {}
        self.current: GeneratedConfiguration | None = None

    def publish(self, generated: GeneratedConfiguration) -> None:
        """Make ``generated`` the served generation; keep the last few files."""
        self._files[generated.version_id] = {
            location: StaticFile(_XML, data)
            for location, data in generated.files.items()
        }
        self._files.move_to_end(generated.version_id)
        while len(self._files) > self._keep:
            self._files.popitem(last=False)
        self._directories = {
            "internalconf": StaticFile(
                generated.internal.content_type, generated.internal.body
            ),
            "externalconf": StaticFile(
                generated.external.content_type, generated.external.body
            ),
        }
        self.current = generated

    def directory(self, name: str) -> StaticFile | None:
        """The newest ``internalconf`` or ``externalconf``, if any."""
        return self._directories.get(name)

    def file(self, location: str) -> StaticFile | None:
        """A listed file by its ``Content-location`` (``/V6/<id>/<name>``)."""
        parts = location.split("/")
        if len(parts) != 4 or parts[0] or parts[1] != f"V{CONF_VERSION}":
            return None
        files = self._files.get(parts[2])
        return None if files is None else files.get(location)

    @property
    def versions(self) -> tuple[str, ...]:
        """Version ids whose files are served, oldest first."""
        return tuple(self._files)


#: The store a publisher app serves from (tests may publish into it).
STORE = web.AppKey("conf_store", ConfigurationStore)

_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _respond(found: StaticFile | None) -> web.Response:
    if found is None:
        raise web.HTTPNotFound(text="Not found\n")
    return web.Response(
        body=found.body, headers={"Content-Type": found.content_type, **_HEADERS}
    )


async def _directory(request: web.Request) -> web.Response:
    wanted = request.query.get("version")
    if wanted is not None and wanted != str(CONF_VERSION):
        raise web.HTTPNotFound(text=f"Configuration version {wanted[:10]} not served\n")
    found = request.app[STORE].directory(request.match_info["name"])
    if found is None:
        raise web.HTTPServiceUnavailable(
            text="No configuration has been generated yet\n",
            headers={"Retry-After": "10"},
        )
    return _respond(found)


async def _file(request: web.Request) -> web.Response:
    return _respond(request.app[STORE].file(request.path))


class _Refresher:
    """Regenerates on registry change and at least every ``refresh_seconds``."""

    def __init__(self, app: web.Application) -> None:
        self.config: CentralConfig = app[CONFIG]
        self.store = app[STORE]
        self.clock: Callable[[], dt.datetime] = app[CLOCK]
        self.last_marker: int | None = None
        self.last_time: dt.datetime | None = None
        self.last_error: str | None = None

    async def step(self, db: Database) -> None:
        settings = self.config.publisher
        try:
            marker = await change_marker(db)
            now = self.clock()
            due = (
                self.last_time is None
                or marker != self.last_marker
                or (now - self.last_time).total_seconds() >= settings.refresh_seconds
            )
            if not due:
                return
            if self.last_time is not None and now <= self.last_time:
                # Version ids must be unique: never reuse a generation time
                # (a clock that stands still or steps back).
                now = self.last_time + dt.timedelta(microseconds=1)
            generated = await generate_configuration(db, self.config, now=now)
            self.store.publish(generated)
            self.last_marker, self.last_time = generated.change_marker, now
            self.last_error = None
            log.info("Published configuration %s", generated.version_id)
        except JPLinkError as exc:
            # Keep serving the previous generation (it expires on its own);
            # log each distinct failure once, not every poll.
            text = f"{exc.code}: {exc.message}"
            if text != self.last_error:
                log.error("Configuration not generated: %s", text)
                self.last_error = text


async def _refresh(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    db = await open_database(config.db_url)
    refresher = _Refresher(app)
    await refresher.step(db)  # serve a generation from the first request on

    async def loop() -> None:
        while True:
            await asyncio.sleep(config.publisher.poll_seconds)
            await refresher.step(db)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        await cancel_and_wait(task)
        await db.dispose()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_publisher_app(
    config: CentralConfig,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    store: ConfigurationStore | None = None,
    refresh: bool = True,
) -> web.Application:
    """The configuration publisher.

    Args:
        config: the instance configuration (``[publisher]``, database, home).
        clock: the time source (default: the system clock, UTC).
        store: serve from this store (default: a new one).
        refresh: generate from the registry in the background; ``False``
            serves only what is published into ``store`` (no database).

    Returns:
        The application.
    """
    app = web.Application(client_max_size=1024)
    app[CONFIG] = config
    app[CLOCK] = clock or _utcnow
    app[STORE] = store or ConfigurationStore(config.publisher.keep_versions)
    app.router.add_get("/{name:internalconf|externalconf}", _directory)
    app.router.add_get(f"/V{CONF_VERSION}/{{version:[0-9]+}}/{{file}}", _file)
    if refresh:
        app.cleanup_ctx.append(_refresh)
    return app


async def start_publisher(config: CentralConfig) -> web.AppRunner:
    """Start :func:`make_publisher_app` on ``[publisher] host:port``.

    Returns:
        The running runner; the caller cleans it up.

    Raises:
        OSError: the address cannot be bound (port 80 needs privileges:
            ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` in the unit).
    """
    runner = web.AppRunner(make_publisher_app(config))
    await runner.setup()
    try:
        await web.TCPSite(runner, config.publisher.host, config.publisher.port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner

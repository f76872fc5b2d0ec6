"""The message-log hook: both proxies record every signed request and response.

PROTOCOLS.md §12.1: "Both SSs log every request and every response". What
a record holds, and how it is built from a signed message, is
:mod:`.messagelog_entry` (its names are importable from here too).

Modes: the proxies build each entry with the writer's capture :attr:`mode`
(the widest of ``[message_log] mode`` and the ``[[message_log.subsystems]]``
overrides); :meth:`MessageLogWriter.write` then applies the mode of the
record's local client (the consumer on the client proxy, the provider on the
server proxy): ``full`` keeps the message, ``metadata`` drops its bytes,
``none`` stores no record. With ``encryption_keystore`` the kept message is
encrypted with AES-GCM (:mod:`.logcrypt`) and the key id stored on the record.

Time-stamping (:mod:`.timestamper`): the writer refuses nothing itself, but
:meth:`MessageLogWriter.check_healthy` is what both proxies call before they
accept a message, and with ``timestamp_immediately`` a write returns only
after its records are time-stamped.

Throughput: :class:`MessageLogWriter` owns one writer task. Callers hand
over their records and wait; the task takes every record that is waiting,
inserts them in ONE transaction and then wakes each caller, so an exchange
is acknowledged only after its records are committed, while the database
sees a few large commits instead of one per message. The insert is a Core
``INSERT`` (no ORM session); on a SQLite file the whole transaction runs on
the event loop on a plain ``sqlite3`` connection (:mod:`._messagelog_sqlite`
says why not in a thread), on PostgreSQL one ``executemany`` on an engine
connection (:mod:`._messagelog_engine`). The same transaction first stores
each signature document the records name that this writer has not stored
recently (``message_signature``; :mod:`.messagelog_signatures`): a batch's
records share one.

Outcome: the ``fault``/``fault_code`` columns are set when the record is
written. The proxies pass them (they parsed the message and only log
non-fault messages); for entries that do not say, the writer classifies the
message in clear before a mode or encryption hides it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.exc import SQLAlchemyError

from jplink.errors import ConfigurationError, JPLinkError, StorageError
from jplink.storage import Database
from jplink.tasks import cancel_and_wait

from ._messagelog_engine import EngineSink
from ._messagelog_sqlite import SqliteSink
from ._sqlite_writes import sqlite_file
from .config import MessageLogMode, MessageLogSettings
from .logcrypt import LogKeystore, load_keystore, record_aad
from .messagelog_entry import LogEntry, entry_for, log_entry, received_entry
from .messagelog_query import Outcome, message_outcome
from .messagelog_signatures import SignatureIds
from .timestamper import Timestamper
from .timestamping_health import PendingRecordsHealth

__all__ = [
    "DEFAULT_MAX_RECORDS_PER_COMMIT",
    "LogEntry",
    "MessageLogWriter",
    "entry_for",
    "log_entry",
    "open_message_log_writer",
    "received_entry",
]

_log = logging.getLogger(__name__)

#: Upper bound of records written in one transaction.
DEFAULT_MAX_RECORDS_PER_COMMIT = 1000


def _outcome(message: bytes) -> tuple[bool, str | None]:
    """``fault``/``fault_code`` of a message whose caller did not say.

    A Fault element spells ``Fault`` in the bytes of an ASCII-compatible
    encoding; UTF-16/32 put NUL bytes between ASCII characters. Anything
    else is parsed (:func:`.messagelog_query.message_outcome`).
    """
    if b"Fault" not in message and b"\x00" not in message:
        return False, None
    outcome, code = message_outcome(message)
    return outcome is Outcome.FAULT, code


@dataclass(slots=True)
class _Batch:
    rows: list[dict[str, object]]
    #: signature_hash -> signature document, for the documents ``rows`` name.
    signatures: dict[str, str]
    future: asyncio.Future[None]


#: Modes from the widest to the narrowest.
_WIDTH = (MessageLogMode.FULL, MessageLogMode.METADATA, MessageLogMode.NONE)


class MessageLogWriter:
    """Writes message-log records in batched transactions.

    Args:
        db: the security server's database.
        mode: the default message-log mode; ``none`` stores nothing.
        max_records: upper bound of records per transaction.
        overrides: local client (text form) -> its own mode.
        keystore: encrypt kept messages with its current key.
        timestamper: the time-stamper whose health :meth:`check_healthy`
            reports.
        stamp_immediately: after each commit, time-stamp the new records
            before :meth:`write` returns.
    """

    def __init__(
        self,
        db: Database,
        mode: MessageLogMode,
        *,
        max_records: int = DEFAULT_MAX_RECORDS_PER_COMMIT,
        overrides: Mapping[str, MessageLogMode] | None = None,
        keystore: LogKeystore | None = None,
        timestamper: Timestamper | None = None,
        stamp_immediately: bool = False,
        health: PendingRecordsHealth | None = None,
    ) -> None:
        if stamp_immediately and timestamper is None:
            raise ValueError("stamp_immediately needs a timestamper")
        self._db = db
        self._default = mode
        self._overrides = dict(overrides or {})
        self._mode = min((mode, *self._overrides.values()), key=_WIDTH.index)
        self._keystore = keystore
        self._timestamper = timestamper
        self._health = health
        self._immediately = stamp_immediately
        self._max = max_records
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        sqlite = sqlite_file(db)
        self._sink: SqliteSink | EngineSink = (
            EngineSink(db) if sqlite is None else SqliteSink(sqlite, db.engine.dialect)
        )
        self._ids = SignatureIds()
        self.commits = 0

    @property
    def mode(self) -> MessageLogMode:
        """The capture mode: the widest of the default and the overrides.

        The proxies build entries with it; :meth:`write` narrows each record
        to its own client's mode.
        """
        return self._mode

    def mode_for(self, local_client: str) -> MessageLogMode:
        """The mode that applies to records of ``local_client``."""
        return self._overrides.get(local_client, self._default)

    def check_healthy(self, now: dt.datetime) -> None:
        """Refuse new messages while time-stamping has failed for too long.

        Both proxies call this before accepting a message.

        Raises:
            TimestampError: code ``timestamper_failed`` (see
                :meth:`.timestamper.TimestampingHealth.check`).
        """
        if self._timestamper is not None:
            self._timestamper.health.check(now)
        elif self._health is not None:  # a worker process
            self._health.check(now)

    def _prepare(self, entry: LogEntry) -> dict[str, object] | None:
        mode = self.mode_for(entry.local_client)
        if mode is MessageLogMode.NONE:
            return None
        if entry.fault is None and entry.message is not None:
            # The caller did not say (the proxies always do): classify the
            # message in clear, before a mode or encryption hides it.
            fault, code = _outcome(entry.message)
            entry = replace(entry, fault=fault, fault_code=code)
        if mode is MessageLogMode.METADATA and entry.message is not None:
            entry = replace(entry, message=None)
        if self._keystore is not None and entry.message is not None:
            aad = record_aad(
                entry.query_id, entry.direction.value, entry.side.value, entry.client
            )
            entry = replace(
                entry,
                message=self._keystore.encrypt(entry.message, aad),
                message_key_id=self._keystore.current_id,
            )
        return entry.row()

    async def write(self, entries: Sequence[LogEntry]) -> None:
        """Store ``entries`` (in one transaction with others that wait).

        Returns only after the commit (and, with ``stamp_immediately``, after
        the records are time-stamped).

        Raises:
            StorageError: code ``LoggingFailed``; nothing of the batch was stored.
            TimestampError: code ``timestamper_failed``: stored, but the
                immediate time-stamp failed (the background run retries).
        """
        if self._mode is MessageLogMode.NONE or not entries:
            return
        rows: list[dict[str, object]] = []
        signatures: dict[str, str] = {}
        for entry in entries:
            row = self._prepare(entry)
            if row is not None:
                rows.append(row)
                signatures[entry.signature_hash] = entry.signature_xml
        if not rows:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Batch(rows, signatures, future))
        await future
        if self._immediately and self._timestamper is not None:
            # A batch line per exchange would flood the log: DEBUG.
            await self._timestamper.run_once(raise_errors=True, log_level=logging.DEBUG)

    async def _run(self) -> None:
        while True:
            batches = [await self._queue.get()]
            self._busy = True
            size = len(batches[0].rows)
            while size < self._max and not self._queue.empty():
                batch = self._queue.get_nowait()
                batches.append(batch)
                size += len(batch.rows)
            error: JPLinkError | None = None
            try:
                signatures: dict[str, str] = {}
                for batch in batches:
                    signatures.update(batch.signatures)
                await self._insert(
                    [row for batch in batches for row in batch.rows], signatures
                )
                self.commits += 1
            except (SQLAlchemyError, sqlite3.Error, JPLinkError, OSError) as exc:
                _log.error("message log write failed: %s", exc)
                error = StorageError(
                    f"Cannot write the message log: {exc}", code="LoggingFailed"
                )
            finally:
                self._busy = False
            for batch in batches:
                if batch.future.done():
                    continue
                if error is None:
                    batch.future.set_result(None)
                else:
                    batch.future.set_exception(error)

    async def _insert(
        self, rows: list[dict[str, object]], documents: Mapping[str, str]
    ) -> None:
        """One transaction: the documents not stored yet, then the rows.

        All or nothing: a record is never stored without its signature.
        """
        known = self._ids.known(documents)
        new = [(h, xml) for h, xml in documents.items() if h not in known]
        try:
            ids = await self._sink.insert(rows, known, new)
        except BaseException:
            # Nothing is assumed after a failure (not even what was known).
            self._ids.forget()
            raise
        self._ids.remember(ids)

    async def close(self) -> None:
        """Finish what is queued, then stop the writer task."""
        while (
            self._task is not None
            and not self._task.done()
            and (self._busy or not self._queue.empty())
        ):
            await asyncio.sleep(0.01)
        await cancel_and_wait(self._task)
        await self._sink.close()


def open_message_log_writer(
    db: Database,
    settings: MessageLogSettings,
    *,
    timestamper: Timestamper | None = None,
    health: PendingRecordsHealth | None = None,
) -> MessageLogWriter:
    """The writer for ``[message_log]``: modes, encryption, time-stamping.

    Args:
        db: the security server's database.
        settings: the ``[message_log]`` table.
        timestamper: the running time-stamper (needed for
            ``timestamp_immediately``; its health is checked per message).
        health: a worker process's view of time-stamping health (used
            when there is no time-stamper).

    Returns:
        The writer (call :meth:`MessageLogWriter.close` when done).

    Raises:
        ConfigurationError: the keystore is missing, readable by others or
            malformed; ``timestamp_immediately`` without a time-stamper.
    """
    if settings.timestamp_immediately and timestamper is None:
        raise ConfigurationError("timestamp_immediately needs the time-stamper")
    keystore = (
        None
        if settings.encryption_keystore is None
        else load_keystore(settings.encryption_keystore)
    )
    return MessageLogWriter(
        db,
        settings.log_mode,
        overrides={s.client: MessageLogMode(s.mode) for s in settings.subsystems},
        keystore=keystore,
        timestamper=timestamper,
        stamp_immediately=settings.timestamp_immediately,
        health=health,
    )

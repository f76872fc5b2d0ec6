"""The client proxy's signed-document download: ``GET /asic`` (UG-SIGDOC).

PROTOCOLS.md §12.4: ``GET /asic?queryId=…&xRoadInstance=…&memberClass=…
&memberCode=…&subsystemCode=…`` with optional ``requestOnly`` or
``responseOnly`` and ``unique``. The client must be a client of this server.

Replies: ``application/zip`` named ``<queryId>.zip`` holding
``<queryId>-request|response-<seq>.asice`` containers; with ``unique``, the
single container (``application/vnd.etsi.asic-e+zip``), or 400 when several
records match. 400 for bad parameters or a foreign client, 404 when nothing
matches or a match is not time-stamped yet, 500 otherwise.

``force`` (time-stamp missing records now) is not offered: the records are
time-stamped by the next batch; the reply says so.

Bodies encrypted at rest are decrypted with the message-log keystore, which is
read only when an encrypted record is exported (:func:`deferred_decryptor`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from sqlalchemy import select

from jplink.asic._zip import write_zip
from jplink.errors import Conflict, InvalidRequest, JPLinkError, NotFound
from jplink.http11_server import HttpReply
from jplink.identifiers import ClientId
from jplink.storage import Database

from .evidence import (
    ASIC_CONTENT_TYPE,
    BodyDecryptor,
    Evidence,
    export_records,
)
from .models import Client, MessageLogRecord
from .states import ClientState, LogDirection

__all__ = [
    "ASIC_PATH",
    "asic_download",
    "deferred_decryptor",
    "find_evidence",
]

#: Route of the download on the client proxy.
ASIC_PATH = "/asic"


def deferred_decryptor(load: Callable[[], BodyDecryptor | None]) -> BodyDecryptor:
    """A decryptor that calls ``load`` (reads the keystore) on first use only.

    A server without encryption at rest needs no keystore, and one that
    rotated its keystore is read afresh for each export.

    Args:
        load: gives the configured decryptor, or None without encryption.

    Returns:
        The decryptor.

    Raises:
        Conflict: (when used) code ``EncryptedRecord``: a record is encrypted
            but no keystore is configured.
        ConfigurationError: (when used) the keystore cannot be loaded.
    """
    loaded: list[BodyDecryptor | None] = []

    def decrypt(record: MessageLogRecord) -> tuple[bytes | None, bytes | None]:
        if not loaded:
            loaded.append(load())
        decryptor = loaded[0]
        if decryptor is None:
            raise Conflict(
                f"Record {record.id} is encrypted (key {record.message_key_id}) "
                "but no message-log keystore is configured "
                "([message_log] encryption_keystore)",
                code="EncryptedRecord",
            )
        return decryptor(record)

    return decrypt


def _client(query: Mapping[str, str]) -> ClientId:
    missing = [
        name
        for name in ("queryId", "xRoadInstance", "memberClass", "memberCode")
        if not query.get(name)
    ]
    if missing:
        raise InvalidRequest(f"Missing parameter(s): {', '.join(missing)}")
    try:
        return ClientId(
            query["xRoadInstance"],
            query["memberClass"],
            query["memberCode"],
            query.get("subsystemCode") or None,
        )
    except (TypeError, ValueError, JPLinkError) as exc:
        raise InvalidRequest(f"Invalid client identifier: {exc}") from None


async def find_evidence(
    db: Database,
    query_id: str,
    client: ClientId,
    *,
    direction: LogDirection | None = None,
    decrypt: BodyDecryptor | None = None,
) -> tuple[Evidence, ...]:
    """The containers of a query for one of this server's clients.

    Args:
        db: the security server's database.
        query_id: the exchange's query id.
        client: the client that the records belong to.
        direction: only requests or only responses.
        decrypt: decrypts bodies encrypted at rest.

    Returns:
        The containers, oldest first.

    Raises:
        InvalidRequest: code ``InvalidClient``: not a client of this server.
        NotFound: ``RecordNotFound`` (none) or ``NotTimestamped`` (a match is
            not time-stamped yet).
    """
    async with db.transaction() as session:
        known = await session.scalar(
            select(Client.id).where(
                Client.identifier == str(client),
                Client.state != ClientState.DELETION_IN_PROGRESS.value,
            )
        )
        if known is None:
            raise InvalidRequest(
                f"{client} is not a client of this security server",
                code="InvalidClient",
            )
        stmt = select(MessageLogRecord.id).where(
            MessageLogRecord.query_id == query_id,
            MessageLogRecord.client == str(client),
        )
        if direction is not None:
            stmt = stmt.where(MessageLogRecord.direction == direction.value)
        ids = list((await session.scalars(stmt.order_by(MessageLogRecord.id))).all())
    if not ids:
        raise NotFound(
            f"No signed documents for query {query_id!r} of {client}",
            code="RecordNotFound",
        )
    try:
        return await export_records(db, ids, decrypt=decrypt)
    except JPLinkError as exc:
        if exc.code == "NotTimestamped":
            raise NotFound(exc.message, code=exc.code) from None
        raise


def _reply(found: tuple[Evidence, ...], unique: bool) -> HttpReply:
    if unique:
        if len(found) != 1:
            raise InvalidRequest(
                f"{len(found)} signed documents match; 'unique' needs exactly one",
                code="NotUnique",
            )
        return HttpReply(
            200,
            found[0].data,
            (
                ("Content-Type", ASIC_CONTENT_TYPE),
                ("Content-Disposition", f'attachment; filename="{found[0].file_name}"'),
            ),
        )
    body = write_zip([(e.file_name, e.data, False) for e in found])
    name = found[0].file_name.rsplit("-", 2)[0]
    return HttpReply(
        200,
        body,
        (
            ("Content-Type", "application/zip"),
            ("Content-Disposition", f'attachment; filename="{name}.zip"'),
        ),
    )


def _problem(status: int, exc: JPLinkError) -> HttpReply:
    body = json.dumps({"code": exc.code, "message": exc.message}).encode()
    return HttpReply(
        status, body, (("Content-Type", "application/json; charset=utf-8"),)
    )


async def asic_download(
    query: Mapping[str, str],
    db: Database,
    decrypt: BodyDecryptor | None = None,
) -> HttpReply:
    """Answer ``GET /asic`` (see the module docstring).

    Args:
        query: the query parameters.
        db: the security server's database.
        decrypt: decrypts bodies encrypted at rest.

    Returns:
        The container(s), or a JSON problem with the status of the error.
    """
    try:
        client = _client(query)
        if "force" in query:
            raise InvalidRequest(
                "'force' is not supported: records are time-stamped by the "
                "next batch; retry then",
                code="ForceNotSupported",
            )
        if "requestOnly" in query and "responseOnly" in query:
            raise InvalidRequest("Give requestOnly or responseOnly, not both")
        direction = (
            LogDirection.REQUEST
            if "requestOnly" in query
            else LogDirection.RESPONSE
            if "responseOnly" in query
            else None
        )
        found = await find_evidence(
            db, query["queryId"], client, direction=direction, decrypt=decrypt
        )
        return _reply(found, "unique" in query)
    except InvalidRequest as exc:
        return _problem(400, exc)
    except NotFound as exc:
        return _problem(404, exc)
    except JPLinkError as exc:
        return _problem(500, exc)

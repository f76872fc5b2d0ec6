"""HTTP handlers of the adapter: SOAP, WSDL, REST, OpenAPI. Thin by design.

Each handler reads the request, calls the runtime, writes the response; the
middleware in :mod:`adapter_server.app` turns every :class:`JPLinkError` into
a SOAP fault or a JSON problem. One structured log line per call records the
service, outcome, row count and duration, never parameter values.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from jplink.errors import InvalidRequest, JPLinkError, NotFound

from .appkeys import CONFIG, SERVICE_CODE, STATE
from .definitions import ColumnSpec, ParamType
from .interfaces import subsystem_openapi, subsystem_wsdl
from .runtime import CallResult, check_offset, find_service, run_call
from .soap import ROWS_PER_CHUNK, read_soap_call, soap_response_chunks
from .values import render_json

__all__ = ["openapi", "rest_call", "soap_call", "wsdl_document"]

log = logging.getLogger("adapter_server.calls")


def log_call(service: str, outcome: str, rows: int, started: float) -> None:
    """The per-call log line (no parameter values)."""
    ms = (time.perf_counter() - started) * 1000
    log.info(
        "call service=%s outcome=%s rows=%d duration_ms=%.2f",
        service,
        outcome,
        rows,
        ms,
        extra={"service": service, "outcome": outcome, "rows": rows, "ms": ms},
    )


#: Results with more rows than this are streamed in chunks.
STREAM_ROWS = ROWS_PER_CHUNK


async def _send(
    request: web.Request, chunks: Iterator[bytes], content_type: str, rows: int
) -> web.StreamResponse:
    """Send a small answer in one piece, a large one chunk by chunk.

    The first row chunk is rendered before anything is sent, so a value that
    does not fit its column still becomes a proper fault. A failure after
    that aborts the connection: the caller sees a broken transfer, never a
    complete-looking document with rows missing.
    """
    if rows <= STREAM_ROWS:
        body = b"".join(chunks)
        return web.Response(body=body, content_type=content_type, charset="utf-8")
    first = next(chunks) + next(chunks)
    response = web.StreamResponse()
    response.content_type = content_type
    response.charset = "utf-8"
    await response.prepare(request)
    await response.write(first)
    try:
        for chunk in chunks:
            await response.write(chunk)
    except JPLinkError as err:
        log.error("response to %s aborted mid-stream: %s", request.path, err.code)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


async def soap_call(request: web.Request) -> web.StreamResponse:
    """``POST /soap``: one X-Road SOAP request."""
    started = time.perf_counter()
    config, state = request.app[CONFIG], request.app[STATE]
    catalog = await state.cache.get()
    call = read_soap_call(
        await request.read(),
        request.headers.get("Content-Type", ""),
        lambda code: find_service(catalog, code),
        config.namespace,
    )
    request[SERVICE_CODE] = call.service.code
    result = await run_call(catalog, state.pool, call.service, call.values, call.offset)
    namespace = config.namespace(call.service.subsystem)
    chunks = soap_response_chunks(call, result, namespace)
    response = await _send(request, chunks, "text/xml", len(result.rows))
    log_call(call.service.code, "ok", len(result.rows), started)
    return response


def _json_cell(column: ColumnSpec) -> Callable[[object], Any]:
    # Exact str/int values are already their JSON value (as render_json says).
    kinds: dict[ParamType, type] = {ParamType.STRING: str, ParamType.INTEGER: int}
    kind = kinds.get(column.type)
    if kind is None:
        return lambda value: render_json(column, value)
    return lambda value: value if type(value) is kind else render_json(column, value)


def _json_chunks(result: CallResult) -> Iterator[bytes]:
    cells = [(c.name, _json_cell(c)) for c in result.service.columns]
    rows = result.rows
    yield b'{"rows": ['
    for first in range(0, len(rows), ROWS_PER_CHUNK):
        page = [
            {name: render(v) for (name, render), v in zip(cells, row, strict=False)}
            for row in rows[first : first + ROWS_PER_CHUNK]
        ]
        text = json.dumps(page, ensure_ascii=False)[1:-1]
        yield (", " + text if first else text).encode("utf-8")
    yield f'], "next": {json.dumps(result.next_offset)}}}'.encode("ascii")


async def rest_call(request: web.Request) -> web.StreamResponse:
    """``POST /rest/{serviceCode}``: JSON parameters in, rows and next offset out."""
    started = time.perf_counter()
    state = request.app[STATE]
    code = request.match_info["serviceCode"]
    request[SERVICE_CODE] = code
    catalog = await state.cache.get()
    service = find_service(catalog, code)
    raw = await request.read()
    try:
        params: Any = json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest(
            "The body must be a JSON object", code="InvalidBody"
        ) from None
    if not isinstance(params, dict):
        raise InvalidRequest("The body must be a JSON object", code="InvalidBody")
    offset = check_offset(request.query.get("offset", "0"))
    result = await run_call(catalog, state.pool, service, params, offset)
    chunks = _json_chunks(result)
    response = await _send(request, chunks, "application/json", len(result.rows))
    log_call(code, "ok", len(result.rows), started)
    return response


async def wsdl_document(request: web.Request) -> web.Response:
    """``GET /wsdl/{subsystem}``: the WSDL of a subsystem's services."""
    subsystem = request.match_info["subsystem"]
    catalog = await request.app[STATE].cache.get()
    services = [s for s in catalog.services.values() if s.subsystem == subsystem]
    if not any(s.enabled for s in services):
        raise NotFound(f"No services are published for subsystem {subsystem!r}")
    body = subsystem_wsdl(request.app[CONFIG], subsystem, services)
    return web.Response(body=body, content_type="text/xml", charset="utf-8")


async def openapi(request: web.Request) -> web.Response:
    """``GET /openapi/{subsystem}``: the OpenAPI 3.1 document of a subsystem."""
    subsystem = request.match_info["subsystem"]
    catalog = await request.app[STATE].cache.get()
    services = [s for s in catalog.services.values() if s.subsystem == subsystem]
    if not any(s.enabled for s in services):
        raise NotFound(f"No services are published for subsystem {subsystem!r}")
    return web.json_response(
        subsystem_openapi(request.app[CONFIG], subsystem, services)
    )

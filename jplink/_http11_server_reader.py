"""Reading requests off one server connection, within limits.

The httptools (llhttp) callbacks of :class:`jplink.http11_server.Http11Server`'s
connections: they collect a request's target, header fields and body,
enforce the size limits, refuse upgrades and unknown expectations, and hand
each whole request (or the refusal that ends the connection) on in order.
"""

from __future__ import annotations

from http import HTTPStatus

import httptools

from ._http11_server_types import HttpRequest, Refused, ServerLimits

__all__ = ["Item", "RequestReader"]

#: A request with (keep-alive, HTTP/1.0), or the refusal that ends the
#: connection.
Item = tuple[HttpRequest, bool, bool] | Refused


class RequestReader:
    """The parser's callbacks; subclasses say where requests go."""

    def __init__(self, limits: ServerLimits) -> None:
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._tls = False
        self._peer: bytes | None = None
        self._begun = 0  # messages begun in the read being parsed
        self._reset()

    def _push(self, item: Item) -> None:
        """Take a whole request, or the refusal that ends the connection."""
        raise NotImplementedError

    def _send_continue(self) -> None:
        """Answer ``Expect: 100-continue`` (when the connection may)."""
        raise NotImplementedError

    def _feed(self, data: bytes) -> None:
        """Parse one read; a refusal or a parse error is pushed in order."""
        start, self._begun = self._phase, 0
        try:
            self._parser.feed_data(data)
            if self._phase == "head":
                self._count_head(start, len(data))
        except Refused as exc:
            self._push(exc)
        except httptools.HttpParserUpgrade:
            self._push(
                Refused(HTTPStatus.BAD_REQUEST, "protocol upgrades are not supported")
            )
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, Refused):  # raised in a callback
                self._push(cause)
            else:
                self._push(
                    Refused(HTTPStatus.BAD_REQUEST, f"invalid HTTP request: {exc}")
                )

    def _reset(self) -> None:
        self._phase = "idle"  # or "head", "body": where the parser is
        self._head_seen = 0  # bytes of an unfinished header section
        self._url: list[bytes] = []
        self._fields: dict[str, str] = {}
        self._field_bytes = 0
        self._body: list[bytes] = []
        self._size = 0

    # -- httptools callbacks (raising Refused aborts the parse)

    def on_message_begin(self) -> None:
        self._phase = "head"
        self._head_seen = 0
        self._begun += 1

    def on_url(self, url: bytes) -> None:
        self._field_bytes += len(url)
        self._check_header_size()
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._field_bytes += len(name) + len(value) + 4
        self._check_header_size()
        if self._phase == "body":
            # A trailer field (chunked coding): RFC 9110 §6.5.1 forbids
            # merging it into the header section; nothing here needs one.
            return
        key = name.decode("latin-1").lower()
        text = value.decode("utf-8", "surrogateescape")
        old = self._fields.get(key)
        self._fields[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        self._phase = "body"
        parser = self._parser
        if parser.should_upgrade() or parser.get_method() == b"CONNECT":
            # llhttp would complete the message first and report the upgrade
            # after: refuse before anything reaches the handler.
            raise Refused(HTTPStatus.BAD_REQUEST, "protocol upgrades are not supported")
        length = self._fields.get("content-length")
        if (
            length is not None
            and length.isdigit()
            and int(length) > self._limits.max_body
        ):
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
        expect = self._fields.get("expect")
        if expect is not None:
            # RFC 9110 §10.1.1: 100-continue is the only expectation defined;
            # a server answers any other with 417.
            if expect.lower() != "100-continue":
                raise Refused(HTTPStatus.EXPECTATION_FAILED, "unknown expectation")
            if self._parser.get_http_version() == "1.1":  # 1.0 knows no 1xx
                self._send_continue()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._limits.max_body:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        request = HttpRequest(
            method=parser.get_method().decode("ascii", "replace"),
            target=b"".join(self._url).decode("latin-1"),
            headers=self._fields,
            body=b"".join(self._body),
            tls=self._tls,
            peer_cert_der=self._peer,
        )
        self._reset()
        self._push(
            (request, parser.should_keep_alive(), parser.get_http_version() == "1.0")
        )

    def _count_head(self, start: str, size: int) -> None:
        """Bound an unfinished header section (httptools reports a field
        only once its line has ended, so a line that never ends would grow
        unchecked).

        The whole read counts when the section was under way before it, or
        began with it (the only message begun in a read that started between
        messages). A read that also finished a body is not counted: the
        section's share of it is unknown, and it is at most one read.
        """
        if start == "head" and self._begun == 0:
            self._head_seen += size
        elif start == "idle" and self._begun == 1:
            self._head_seen = size
        if self._head_seen > self._limits.max_header_bytes:
            raise Refused(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header section too large"
            )

    def _check_header_size(self) -> None:
        if self._field_bytes > self._limits.max_header_bytes:
            raise Refused(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header section too large"
            )

"""The server proxy's metaservice port, answered by :mod:`.metaservices`.

:class:`Metaservices` adapts :func:`~.metaservices.answer_metaservice` (which
returns the whole HTTP answer, multipart for ``getWsdl``) to the server
proxy's :class:`~.server_proxy.MetaserviceHandler`: the SOAP part and the
attachments travel separately in the transport message, and the server proxy
adds ``requestHash`` and signs them like any service response
(PROTOCOLS.md §11: "metaservice responses are signed by the provider's
security server").
"""

from __future__ import annotations

import datetime as dt

from jplink.protocol.soap import SoapMessage
from jplink.storage import Database

from .exchange_ports import ConfProvider
from .metaservices import WsdlFetcher, answer_metaservice, is_metaservice
from .server_proxy import ServiceAnswer

__all__ = ["Metaservices"]


class Metaservices:
    """Answers listClients, listMethods, allowedMethods and getWsdl.

    Args:
        db: the security server's database.
        conf: the global configuration in force.
        fetch: downloads a service description (default: HTTP(S)).
    """

    def __init__(
        self, db: Database, conf: ConfProvider, *, fetch: WsdlFetcher | None = None
    ) -> None:
        self._db = db
        self._conf = conf
        self._fetch = fetch

    def handles(self, request: SoapMessage) -> bool:
        """Whether ``request`` calls a metaservice."""
        return is_metaservice(request.service)

    async def answer(self, request: SoapMessage, *, now: dt.datetime) -> ServiceAnswer:
        """The metaservice's response, to be hashed and signed by the proxy.

        Raises:
            GlobalConfExpired: the global configuration has expired.
            NotFound, AccessDenied, MalformedMessage, TransportError,
            XmlSecurityError: see :func:`~.metaservices.answer_metaservice`.
        """
        conf = self._conf.current(now=now)
        reply = await answer_metaservice(
            self._db, conf, request, now=now, fetch=self._fetch
        )
        soap_type = "text/xml; charset=UTF-8"
        return ServiceAnswer(reply.soap, soap_type, reply.attachments)

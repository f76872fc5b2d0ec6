"""The message signer: one queue per member, batch signatures when busy.

PROTOCOLS.md §6.3: when several messages wait for the same signing key, X-Road
signs them together: a hash tree over the messages is signed once and each
message travels with its own hash chain. :class:`BatchSigner` does the same:
each member has a queue and a worker task; the worker takes every request
that is waiting, signs them with one :func:`~jplink.security.signature.sign_batch`
(or :func:`~jplink.security.signature.sign_message` for a lone message) and
hands each caller its share.

The key comes from the certificate-status service, which holds it decrypted
since the token login; it is never read from disk per message. If the key,
the certificate or its OCSP response is not usable, every waiting request
fails (fail closed, ``CannotCreateSignature`` or the service's own code).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jplink.errors import JPLinkError, LocalProtocolError
from jplink.identifiers import ClientId
from jplink.security.certs import certificate_der
from jplink.security.signature import (
    BatchSignature,
    SignedPart,
    sign_batch,
    sign_message,
)
from jplink.tasks import cancel_and_wait

from .exchange_ports import SigningMaterialSource

__all__ = ["DEFAULT_MAX_BATCH", "BatchSigner", "SignedMessage"]

#: Largest number of messages signed with one signature.
DEFAULT_MAX_BATCH = 128


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """One message's signature with what travels and is logged with it.

    Attributes:
        signature: the signature document (and hash chains of a batch).
        signer_cert_der: the signing certificate (DER).
        ocsp_ders: the OCSP responses embedded in the signature.
        batch_size: how many messages the signature covered.
    """

    signature: BatchSignature
    signer_cert_der: bytes
    ocsp_ders: tuple[bytes, ...]
    batch_size: int


@dataclass(slots=True)
class _Job:
    parts: tuple[SignedPart, ...]
    future: asyncio.Future[SignedMessage]


class _MemberQueue:
    def __init__(self) -> None:
        self.jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


class BatchSigner:
    """Signs messages per member, batching those that wait together.

    Args:
        certstatus: supplies the member's key, certificate and OCSP responses.
        clock: returns the current time (aware); used for SigningTime.
        batching: sign waiting messages together (hash chains); when False
            every message gets its own signature.
        max_batch: upper bound of a batch.
    """

    def __init__(
        self,
        certstatus: SigningMaterialSource,
        *,
        clock: Callable[[], dt.datetime],
        batching: bool = True,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._certstatus = certstatus
        self._clock = clock
        self._batching = batching
        self._max_batch = max_batch
        self._queues: dict[ClientId, _MemberQueue] = {}
        self._closed = False

    async def sign(
        self, member: ClientId, parts: Sequence[SignedPart]
    ) -> SignedMessage:
        """Sign one message (its SOAP part, then its attachments).

        Args:
            member: the member whose key signs (a subsystem's member is used).
            parts: the signed parts in message order.

        Returns:
            The signature share of this message.

        Raises:
            JPLinkError: no usable signing material (the certificate-status
                service's error), or ``CannotCreateSignature``.
        """
        if self._closed:
            raise LocalProtocolError(
                "The signer is closed", code="CannotCreateSignature"
            )
        member = member.member
        queue = self._queues.get(member)
        if queue is None:
            queue = self._queues[member] = _MemberQueue()
        if queue.task is None or queue.task.done():
            queue.task = asyncio.create_task(self._work(member, queue))
        future: asyncio.Future[SignedMessage] = (
            asyncio.get_running_loop().create_future()
        )
        queue.jobs.put_nowait(_Job(tuple(parts), future))
        return await future

    async def _work(self, member: ClientId, queue: _MemberQueue) -> None:
        while True:
            jobs = [await queue.jobs.get()]
            while len(jobs) < self._max_batch and not queue.jobs.empty():
                jobs.append(queue.jobs.get_nowait())
            jobs = [job for job in jobs if not job.future.done()]
            if not jobs:
                continue
            try:
                results = await self._sign_jobs(member, jobs)
            except JPLinkError as exc:
                for job in jobs:
                    job.future.set_exception(exc)
                continue
            except Exception as exc:  # a bug in signing: fail closed, keep serving
                error = LocalProtocolError(
                    f"Cannot sign: {exc}", code="CannotCreateSignature"
                )
                for job in jobs:
                    job.future.set_exception(error)
                continue
            for job, result in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    async def _sign_jobs(
        self, member: ClientId, jobs: list[_Job]
    ) -> list[SignedMessage]:
        now = self._clock()
        material = await self._certstatus.signing_material(member, now=now)
        ocsp = tuple(material.ocsp_ders)
        chain = tuple(material.chain)
        if self._batching and len(jobs) > 1:
            shares = sign_batch(
                [job.parts for job in jobs],
                key=material.key,
                cert=material.cert,
                ocsp_responses=ocsp,
                signing_time=now,
                extra_certificates=chain,
            )
        else:
            shares = tuple(
                BatchSignature(
                    sign_message(
                        job.parts,
                        key=material.key,
                        cert=material.cert,
                        ocsp_responses=ocsp,
                        signing_time=now,
                        extra_certificates=chain,
                    ),
                    None,
                    None,
                )
                for job in jobs
            )
        cert_der = certificate_der(material.cert)
        size = len(jobs) if self._batching else 1
        return [SignedMessage(share, cert_der, ocsp, size) for share in shares]

    async def close(self) -> None:
        """Stop the workers; waiting callers get ``CannotCreateSignature``."""
        self._closed = True
        for queue in self._queues.values():
            await cancel_and_wait(queue.task)
            while not queue.jobs.empty():
                job = queue.jobs.get_nowait()
                if not job.future.done():
                    job.future.set_exception(
                        LocalProtocolError(
                            "The signer is closed", code="CannotCreateSignature"
                        )
                    )
        self._queues.clear()

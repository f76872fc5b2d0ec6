"""Verified batch-signature documents, remembered by their exact bytes.

A batch signature (PROTOCOLS.md §6.3) is one ``asic:XAdESSignatures``
document over one ``HashChainResult``; every message of the batch travels
with the same two documents and its own hash chain. The expensive part of
verifying such a message (parsing the document, the SignedProperties digest,
the SignatureValue over canonical SignedInfo, the XAdES signing-certificate
binding) depends only on those two documents and the policy, so
:func:`jplink.security.signature.verify_signature` can do it once per batch
and, for the other messages, only evaluate their hash chains.

What a hit is worth, and its bound:

- the key is the signature document and the hash-chain result themselves,
  with the policy: the dictionary finds an entry by their hash and takes it
  only when the stored bytes are equal to the given ones, so a hit is for
  the exact same bytes (a hash collision is a miss, never a false hit);
- what is stored does not depend on time: the document checks are a pure
  function of (bytes, policy). The one time-dependent check of the
  document, "SigningTime does not lie in the future", is run again on every
  hit with the caller's ``now``, exactly as a fresh check runs it;
- the signer certificate's chain and OCSP status are not part of this
  verification in either case: callers check them per message;
- only documents that passed every check are stored; only batch signatures
  (a single reference to ``/sig-hashchainresult.xml``) are stored, since a
  direct signature covers one message only.

The cache is bounded (least recently used entries go first) and safe to
share between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from cryptography import x509

from ._signature_model import SignaturePolicy, VerifiedReference
from .c14n import SignatureMethod
from .xades import XadesProperties

__all__ = ["DEFAULT_MAX_BATCH_SIGNATURES", "BatchSignatureCache", "CheckedDocument"]

_Key = tuple[bytes, bytes, SignaturePolicy]

#: Default number of batch-signature documents remembered.
DEFAULT_MAX_BATCH_SIGNATURES = 256


@dataclass(frozen=True, slots=True)
class CheckedDocument:
    """A signature document whose references, value and XAdES binding verified.

    Attributes:
        references: every verified reference, in SignedInfo order.
        data_uris: the URIs referenced directly (for a batch signature only
            the hash-chain result).
        signer_certificate: the KeyInfo certificate.
        signature_method: the SignatureMethod used.
        signature_value: the raw signature value.
        properties: the signed XAdES properties.
    """

    references: tuple[VerifiedReference, ...]
    data_uris: frozenset[str]
    signer_certificate: x509.Certificate
    signature_method: SignatureMethod
    signature_value: bytes
    properties: XadesProperties


class BatchSignatureCache:
    """Batch-signature documents that verified, by their exact bytes.

    Args:
        max_entries: how many documents to remember (least recently used
            ones are forgotten first).

    Raises:
        ValueError: ``max_entries`` below 1.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_BATCH_SIGNATURES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        # Keyed by the exact bytes: the dict finds an entry by their hash and
        # takes it only when the stored bytes compare equal to the given ones.
        self._entries: OrderedDict[_Key, CheckedDocument] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self, signature_xml: bytes, hash_chain_result: bytes, policy: SignaturePolicy
    ) -> CheckedDocument | None:
        """The checked document for exactly these bytes and policy, if stored.

        Args:
            signature_xml: the signature document as received.
            hash_chain_result: the hash-chain result as received.
            policy: the policy of this verification.

        Returns:
            The stored result, or None (verify afresh).
        """
        key = (bytes(signature_xml), bytes(hash_chain_result), policy)
        with self._lock:
            document = self._entries.get(key)
            if document is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return document

    def put(
        self,
        signature_xml: bytes,
        hash_chain_result: bytes,
        policy: SignaturePolicy,
        document: CheckedDocument,
    ) -> None:
        """Remember a document that passed every check under ``policy``.

        Args:
            signature_xml, hash_chain_result: the exact bytes verified.
            policy: the policy they verified under.
            document: the result of the document checks.
        """
        key = (bytes(signature_xml), bytes(hash_chain_result), policy)
        with self._lock:
            self._entries[key] = document
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every document."""
        with self._lock:
            self._entries.clear()

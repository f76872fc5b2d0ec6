"""Which signature documents a message-log writer has stored, and under which id.

A batch's records share one signature document (``message_signature``); the
writer stores it with the first of them and names it by id in the others. It
remembers the ids of documents it stored or named recently, here, rather
than asking the database by digest: an index on the digest takes every
insert at a random place, and that halved the write rate of records whose
documents all differ (measured with ``bench.bench_messagelog --batch 1``).

Why a remembered id is always still there: retention deletes a document only
with the last record that names it, and it deletes no record younger than
``keep_records_for_days`` (at least one day). An id is remembered only after
the commit of a record naming it, and forgotten after :data:`MAX_AGE_SECONDS`,
far less than a day. Another worker process does not share this memory and
may store the same document again under its own id; both are complete.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

__all__ = ["MAX_AGE_SECONDS", "MAX_ENTRIES", "SignatureIds"]

#: How long an id is remembered after the last commit that named it.
MAX_AGE_SECONDS = 600.0
#: How many documents are remembered (the most recently named).
MAX_ENTRIES = 4096


class SignatureIds:
    """signature_hash -> id of the stored document, for recent documents.

    Args:
        max_entries: how many are remembered.
        max_age: seconds an id is remembered after it was last named.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_entries = max_entries
        self._max_age = max_age
        self._clock = clock
        self._ids: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def known(self, hashes: Iterable[str]) -> dict[str, int]:
        """The remembered ids among ``hashes`` (expired ones are forgotten)."""
        now = self._clock()
        found: dict[str, int] = {}
        for signature_hash in hashes:
            entry = self._ids.get(signature_hash)
            if entry is None:
                continue
            if now - entry[1] > self._max_age:
                del self._ids[signature_hash]
                continue
            found[signature_hash] = entry[0]
        return found

    def remember(self, ids: Mapping[str, int]) -> None:
        """Note ``ids`` as named by records just committed."""
        now = self._clock()
        for signature_hash, document_id in ids.items():
            self._ids[signature_hash] = (document_id, now)
            self._ids.move_to_end(signature_hash)
        while len(self._ids) > self._max_entries:
            self._ids.popitem(last=False)

    def forget(self) -> None:
        """Forget everything (after a failed transaction nothing is assumed)."""
        self._ids.clear()

    def __len__(self) -> int:
        return len(self._ids)

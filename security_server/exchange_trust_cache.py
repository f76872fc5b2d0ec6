"""Remembering trust decisions that passed, for as long as they stay true.

Every message carries its signer's certificate and the OCSP responses that
prove it good; the same bytes arrive again with the next message. Checking
them again (path to an approved CA, OCSP signatures, freshness) gives the
same answer until one of the time limits of that answer passes: the
response's freshness limit (``thisUpdate + ocspFreshnessSeconds``), its
``nextUpdate``, a certificate's ``notAfter``. :class:`TrustCache` keeps such
answers:

- only successes are stored (a refusal is recomputed every time);
- the key is the exact input (DER bytes of the certificate and of every
  response, the member it had to belong to), never a hash of a part of it;
- an entry is used only inside its validity window, at the caller's ``now``
  (outside it, the full check runs again and raises what it must);
- every entry belongs to one global configuration (the approved CAs and
  OCSP responders); when the configuration object changes, all entries are
  dropped;
- the number of entries is bounded (the cache is emptied when full: senders
  rotate their OCSP responses every few minutes, so old keys are dead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["DEFAULT_MAX_ENTRIES", "TrustCache"]

#: Upper bound of remembered decisions.
DEFAULT_MAX_ENTRIES = 4096

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[_T]):
    value: _T
    not_before: dt.datetime
    not_after: dt.datetime


class TrustCache(Generic[_T]):
    """Verified results, each valid between two instants, for one configuration.

    Args:
        max_entries: the bound; the cache is emptied when it is reached.
    """

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._entries: dict[Hashable, _Entry[_T]] = {}
        self._generation: object | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, *, generation: object, now: dt.datetime) -> _T | None:
        """The remembered result for ``key`` if it holds at ``now``.

        Args:
            key: the exact input of the check.
            generation: the configuration the check ran against (compared by
                identity; a different object empties the cache).
            now: the validation time (aware).

        Returns:
            The result, or None when the check must run.
        """
        if generation is not self._generation:
            self._entries.clear()
            self._generation = generation
            return None
        entry = self._entries.get(key)
        if entry is None or not entry.not_before <= now <= entry.not_after:
            return None
        return entry.value

    def put(
        self,
        key: Hashable,
        value: _T,
        *,
        generation: object,
        window: tuple[dt.datetime, dt.datetime],
    ) -> None:
        """Remember a successful check.

        Args:
            key: the exact input of the check.
            value: its verified result.
            generation: the configuration the check ran against.
            window: the instants between which the result holds.
        """
        if generation is not self._generation:
            self._entries.clear()
            self._generation = generation
        if window[0] > window[1]:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = _Entry(value, window[0], window[1])

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()

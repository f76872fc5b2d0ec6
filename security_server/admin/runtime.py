"""What the admin API shares with the serving process: login and exchange state.

X-Road keeps a token's PIN in the memory of the signer process once an
operator logs in, never on disk. :class:`ServerRuntime` is that memory for
``jplink ss serve``: the admin API's token login/logout changes its
:class:`~security_server.softtoken.TokenLogin`, and the supervisor in
:mod:`security_server.serve` reads it to decide whether the exchange
listeners (client proxy, server proxy, OCSP for peers, OCSP refresher) may
start. The supervisor reports why they run or not with :meth:`report`, which
the status endpoint shows; the admin API calls :meth:`poke` after a change
that may make them startable (login, certificate import, configuration
download), so nobody waits for the next periodic check.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
from dataclasses import dataclass

from ..softtoken import TokenLogin

__all__ = ["ExchangeState", "ExchangeStatus", "ServerRuntime"]


class ExchangeState(enum.Enum):
    """Whether the exchange listeners run; the value is the API word."""

    #: ``jplink ss serve`` is not supervising them (the admin app runs alone).
    NOT_SUPERVISED = "not-supervised"
    #: A precondition is missing; ``reason`` says which.
    WAITING = "waiting"
    #: Client proxy, server proxy, OCSP for peers and refresher are listening.
    RUNNING = "running"


@dataclass(frozen=True, slots=True)
class ExchangeStatus:
    """The exchange listeners' state, why, and since when."""

    state: ExchangeState
    reason: str
    since: dt.datetime


class ServerRuntime:
    """The in-memory state one serving process shares with its admin API.

    Args:
        now: the time the runtime is created (the first status's ``since``).
        login: the token login to share; a fresh one by default.
    """

    def __init__(self, *, now: dt.datetime, login: TokenLogin | None = None) -> None:
        self.login = login if login is not None else TokenLogin()
        self._status = ExchangeStatus(
            ExchangeState.NOT_SUPERVISED, "the exchange is not supervised", now
        )
        self._wake = asyncio.Event()

    @property
    def status(self) -> ExchangeStatus:
        """The exchange listeners' state as last reported."""
        return self._status

    def report(self, state: ExchangeState, reason: str, *, now: dt.datetime) -> bool:
        """Record the exchange state.

        Returns:
            True when the state or reason changed (worth logging).
        """
        if (state, reason) == (self._status.state, self._status.reason):
            return False
        self._status = ExchangeStatus(state, reason, now)
        return True

    def poke(self) -> None:
        """Ask the supervisor to check its preconditions again now."""
        self._wake.set()

    async def wait(self, seconds: float) -> None:
        """Sleep until :meth:`poke` or ``seconds`` passed, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

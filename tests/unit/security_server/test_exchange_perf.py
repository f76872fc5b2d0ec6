"""The exchange's caches of trust decisions never outlive what they cache."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from security_server.exchange_trust_cache import TrustCache


def _window(now: dt.datetime, seconds: int) -> tuple[dt.datetime, dt.datetime]:
    return now - dt.timedelta(seconds=1), now + dt.timedelta(seconds=seconds)


def test_hit_only_inside_the_window(now: dt.datetime) -> None:
    conf = object()
    cache: TrustCache[str] = TrustCache()
    cache.put(b"cert+ocsp", "verified", generation=conf, window=_window(now, 60))

    assert cache.get(b"cert+ocsp", generation=conf, now=now) == "verified"
    limit = now + dt.timedelta(seconds=60)
    assert cache.get(b"cert+ocsp", generation=conf, now=limit) == "verified"
    # One microsecond past the freshness limit the check must run again.
    later = limit + dt.timedelta(microseconds=1)
    assert cache.get(b"cert+ocsp", generation=conf, now=later) is None
    # Before the window opens (a clock set back) as well.
    earlier = now - dt.timedelta(seconds=2)
    assert cache.get(b"cert+ocsp", generation=conf, now=earlier) is None


def test_the_key_is_the_exact_input(now: dt.datetime) -> None:
    conf = object()
    cache: TrustCache[str] = TrustCache()
    key = (b"cert", (b"ocsp-good",), "COM/1111")
    cache.put(key, "verified", generation=conf, window=_window(now, 60))

    # Another response list (say, with a revoked answer added) is not a hit.
    other = (b"cert", (b"ocsp-good", b"ocsp-revoked"), "COM/1111")
    assert cache.get(other, generation=conf, now=now) is None
    # Nor is the same certificate for another member.
    assert (
        cache.get((b"cert", (b"ocsp-good",), "COM/2222"), generation=conf, now=now)
        is None
    )
    assert cache.get(key, generation=conf, now=now) == "verified"


def test_a_new_configuration_forgets_everything(now: dt.datetime) -> None:
    old, new = object(), object()
    cache: TrustCache[str] = TrustCache()
    cache.put(b"k", "verified", generation=old, window=_window(now, 60))

    assert cache.get(b"k", generation=new, now=now) is None
    assert len(cache) == 0
    # ... and the old configuration's entries do not come back.
    assert cache.get(b"k", generation=old, now=now) is None


def test_bounded_and_clearable(now: dt.datetime) -> None:
    conf = object()
    cache: TrustCache[int] = TrustCache(max_entries=3)
    for i in range(3):
        cache.put(i, i, generation=conf, window=_window(now, 60))
    assert len(cache) == 3
    cache.put(3, 3, generation=conf, window=_window(now, 60))
    assert len(cache) == 1
    assert cache.get(3, generation=conf, now=now) == 3
    cache.clear()
    assert cache.get(3, generation=conf, now=now) is None


def test_an_empty_window_is_not_stored(now: dt.datetime) -> None:
    conf = object()
    cache: TrustCache[str] = TrustCache()
    cache.put(b"k", "v", generation=conf, window=(now, now - dt.timedelta(seconds=1)))
    assert len(cache) == 0


def test_misuse() -> None:
    with pytest.raises(ValueError):
        TrustCache(max_entries=0)


class _Clock:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def test_saved_configuration_is_looked_at_once_per_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from security_server import exchange_ports

    reads: list[int] = []

    def fake_read(directory: Path, instance: str) -> object:
        reads.append(1)
        return object()

    clock = _Clock()
    monkeypatch.setattr(exchange_ports, "read_saved", fake_read)
    monkeypatch.setattr(exchange_ports.time, "monotonic", clock)
    saved = tmp_path / "JP" / "current.json"
    saved.parent.mkdir()
    saved.write_text("{}")
    provider = exchange_ports.SavedConfProvider(tmp_path, "JP", check_seconds=1.0)
    stats: list[int] = []
    changed = provider._changed

    def counting() -> int | None:
        stats.append(1)
        return changed()

    monkeypatch.setattr(provider, "_changed", counting)

    first = provider.loaded()
    os.utime(saved, ns=(1, 1))  # a new copy is saved
    for _ in range(50):
        assert provider.loaded() is first
    assert (len(reads), len(stats)) == (1, 1)  # no stat per call
    clock.value += 1.0
    second = provider.loaded()
    assert second is not first  # taken up once the period is over
    assert len(reads) == 2
    clock.value += 1.0
    assert provider.loaded() is second  # unchanged file: not read again
    assert len(reads) == 2


def test_without_a_period_every_call_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from security_server import exchange_ports

    monkeypatch.setattr(exchange_ports, "read_saved", lambda d, i: object())
    saved = tmp_path / "JP" / "current.json"
    saved.parent.mkdir()
    saved.write_text("{}")
    provider = exchange_ports.SavedConfProvider(tmp_path, "JP")
    first = provider.loaded()
    os.utime(saved, ns=(1, 1))
    assert provider.loaded() is not first
    with pytest.raises(ValueError):
        exchange_ports.SavedConfProvider(tmp_path, "JP", check_seconds=-1)


class _PeerChecks:
    """A certificate-status stand-in that counts peer checks (refuses on demand)."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, object]] = []
        self.refuse = False

    async def verify_peer(
        self, cert_der: bytes, *, now: dt.datetime, expected_server: object = None
    ) -> object:
        from jplink.errors import CertificateValidationError

        self.calls.append((cert_der, expected_server))
        if self.refuse:
            raise CertificateValidationError("revoked", code="SslAuthenticationFailed")
        return object()


def _transport(
    checks: _PeerChecks, now: dt.datetime, seconds: float
) -> tuple[object, _Clock]:
    from security_server import peer_client

    clock = _Clock()
    transport = peer_client.PeerTransport(
        checks,  # type: ignore[arg-type]
        clock=lambda: now,
        peer_cache_seconds=seconds,
    )
    return transport, clock


async def test_new_connections_to_a_verified_peer_skip_the_check(
    now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jplink.errors import CertificateValidationError
    from security_server import peer_client

    checks = _PeerChecks()
    transport, clock = _transport(checks, now, 60.0)
    monkeypatch.setattr(peer_client.time, "monotonic", clock)
    verify = transport.verify_peer_certificate  # type: ignore[attr-defined]

    # 64 connections opened at once to the same peer: one check.
    for _ in range(64):
        await verify(b"peer-cert", None)
    assert len(checks.calls) == 1
    # Other bytes are another certificate: checked.
    await verify(b"other-cert", None)
    assert len(checks.calls) == 2
    # Once the period is over the check runs again, and a refusal is final.
    clock.value += 60.0
    checks.refuse = True
    for _ in range(2):
        with pytest.raises(CertificateValidationError):
            await verify(b"peer-cert", None)
    assert len(checks.calls) == 4  # refusals are never remembered


async def test_peer_memo_off_and_bounded(
    now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from security_server import peer_client

    checks = _PeerChecks()
    transport, _ = _transport(checks, now, 0.0)
    for _ in range(3):
        await transport.verify_peer_certificate(b"c", None)  # type: ignore[attr-defined]
    assert len(checks.calls) == 3  # 0: every connection is checked

    monkeypatch.setattr(peer_client, "MAX_VERIFIED_PEERS", 4)
    checks = _PeerChecks()
    transport, _ = _transport(checks, now, 60.0)
    for n in range(10):
        await transport.verify_peer_certificate(bytes([n]), None)  # type: ignore[attr-defined]
    assert len(transport._verified) <= 4  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        _transport(checks, now, -1.0)

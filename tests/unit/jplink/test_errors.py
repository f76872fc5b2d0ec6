"""The error tree: codes, prefixes, typed attributes, abstract base."""

from __future__ import annotations

import datetime as dt

import pytest

from jplink import errors
from jplink.errors import (
    InvalidSignature,
    JPLinkError,
    MalformedMessage,
    OcspStale,
    ProtocolError,
    RemoteProtocolError,
    SecurityError,
    SoapFault,
    TimestampRejected,
    TransportError,
)


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError):
        ProtocolError("x")
    assert isinstance(MalformedMessage("x"), RemoteProtocolError)


def test_code_defaults_and_override_and_prefix() -> None:
    err = MalformedMessage("no body", code="MissingBody")
    assert err.code == "MissingBody"
    assert MalformedMessage("x").code == "InvalidMessage"  # class default unchanged
    assert err.with_prefix("Client") == "Client.MissingBody"
    assert InvalidSignature("bad").with_prefix("Server.ServerProxy") == (
        "Server.ServerProxy.InvalidSignatureValue"
    )
    assert str(err) == "no body"


def test_typed_attributes() -> None:
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    stale = OcspStale("old", produced_at=t, max_age=dt.timedelta(seconds=60))
    assert isinstance(stale, SecurityError)
    assert stale.produced_at == t and stale.max_age.total_seconds() == 60
    rej = TimestampRejected("no", status=2, fail_info=("badAlg",))
    assert rej.status == 2 and rej.fail_info == ("badAlg",)
    tr = TransportError("down", url="http://127.0.0.1:1/", status=None)
    assert tr.url.endswith(":1/") and tr.http_status == 502
    fault = SoapFault("Server.ServerProxy.AccessDenied", "denied", faultactor="a")
    assert fault.code == "Server.ServerProxy.AccessDenied" and fault.faultactor == "a"


def test_every_exported_error_is_a_jplink_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, JPLinkError), name
        assert isinstance(cls.code, str) and cls.code

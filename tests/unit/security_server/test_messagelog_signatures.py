"""What a message-log writer remembers of the signature documents it stored."""

from __future__ import annotations

from security_server.messagelog_signatures import SignatureIds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_id_is_forgotten_after_max_age_unless_named_again() -> None:
    clock = Clock()
    ids = SignatureIds(max_age=600, clock=clock)
    ids.remember({"a": 1, "b": 2})
    clock.now += 400
    ids.remember({"b": 2})  # b named again by a committed record
    clock.now += 300  # a: 700 s since named; b: 300 s
    assert ids.known(["a", "b", "c"]) == {"b": 2}
    assert len(ids) == 1  # the expired one is dropped, not kept around


def test_only_the_most_recently_named_are_kept() -> None:
    ids = SignatureIds(max_entries=2, clock=Clock())
    ids.remember({"a": 1, "b": 2})
    ids.remember({"a": 1})  # a is now more recent than b
    ids.remember({"c": 3})
    assert ids.known(["a", "b", "c"]) == {"a": 1, "c": 3}


def test_forget_drops_everything() -> None:
    ids = SignatureIds(clock=Clock())
    ids.remember({"a": 1})
    ids.forget()
    assert ids.known(["a"]) == {}

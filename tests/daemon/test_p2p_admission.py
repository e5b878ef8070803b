"""Inbound stream slots and per-peer message tokens, driven with a hand-held clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from daemon.p2p.admission import MAX_TRACKED_PEERS, Admission, AdmissionLimits

PEERS = st.sampled_from(["a", "b", "c"])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class AdmissionMachine(RuleBasedStateMachine):
    """Slots never exceed either limit; release gives exactly one back."""

    def __init__(self) -> None:
        super().__init__()
        self.limits = AdmissionLimits(
            max_streams_per_peer=3,
            max_streams=5,
            rate_per_second=2,
            burst=4,
            max_buffered_bytes=100,
        )
        self.clock = Clock()
        self.admission = Admission(self.limits, self.clock)
        self.held: dict[str, int] = {}
        self.reservations: list[int] = []

    @rule(peer=PEERS)
    def acquire(self, peer: str) -> None:
        expected = self.held.get(peer, 0) < 3 and sum(self.held.values()) < 5
        assert self.admission.acquire_stream(peer) is expected
        if expected:
            self.held[peer] = self.held.get(peer, 0) + 1

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from([p for p, n in self.held.items() if n]))
        self.admission.release_stream(peer)
        self.held[peer] -= 1

    @rule(count=st.integers(min_value=0, max_value=60))
    def reserve(self, count: int) -> None:
        expected = sum(self.reservations) + count <= 100
        assert self.admission.reserve_bytes(count) is expected
        if expected:
            self.reservations.append(count)

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def release_bytes(self, data: st.DataObject) -> None:
        count = self.reservations.pop(data.draw(st.integers(0, len(self.reservations) - 1)))
        self.admission.release_bytes(count)

    @rule(dt=st.floats(min_value=0, max_value=3))
    def tick(self, dt: float) -> None:
        self.clock.now += dt

    @invariant()
    def counts_agree(self) -> None:
        assert self.admission.buffered_bytes == sum(self.reservations) <= 100
        assert self.admission.open_streams == sum(self.held.values())
        for peer, n in self.held.items():
            assert self.admission.open_streams_of(peer) == n


TestAdmissionMachine = AdmissionMachine.TestCase


@given(st.lists(st.floats(min_value=0, max_value=1), max_size=200))
def test_tokens_never_exceed_burst_plus_rate(gaps: list[float]) -> None:
    clock = Clock()
    admission = Admission(AdmissionLimits(rate_per_second=10, burst=5), clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        allowed += admission.take_message_token("p")
    assert allowed <= 5 + 10 * clock.now + 1e-6


def test_bucket_refills() -> None:
    clock = Clock()
    admission = Admission(AdmissionLimits(rate_per_second=1, burst=2), clock)
    assert [admission.take_message_token("p") for _ in range(3)] == [True, True, False]
    assert admission.take_message_token("q")  # other peers have their own bucket
    clock.now += 1.0
    assert admission.take_message_token("p")
    assert not admission.take_message_token("p")


def test_memory_is_bounded() -> None:
    admission = Admission(AdmissionLimits(), Clock())
    for i in range(MAX_TRACKED_PEERS + 50):
        admission.take_message_token(str(i))
    assert len(admission._buckets) == MAX_TRACKED_PEERS


def test_release_without_acquire_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        Admission(AdmissionLimits(), Clock()).release_stream("p")


def test_releasing_unreserved_bytes_is_a_bug() -> None:
    admission = Admission(AdmissionLimits(), Clock())
    assert admission.reserve_bytes(10)
    with pytest.raises(RuntimeError):
        admission.release_bytes(11)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        AdmissionLimits(max_streams=0)
    with pytest.raises(ValueError):
        AdmissionLimits(rate_per_second=0)

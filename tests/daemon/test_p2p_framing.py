"""Frames, multistream messages and the fast path's wire format, without a network."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.p2p import deliver, multistream
from daemon.p2p.errors import FrameError, FrameTooLargeError, MalformedFrameError
from daemon.p2p.framing import MAX_VARINT_BYTES, FrameDecoder, encode_frame, encode_uvarint

frames = st.lists(st.binary(max_size=300), max_size=20)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for p in [*points, len(data)]:
        pieces.append(data[start:p])
        start = p
    return pieces


def decode_all(decoder: FrameDecoder, pieces: list[bytes]) -> list[bytes]:
    out = []
    for piece in pieces:
        decoder.feed(piece)
        while (frame := decoder.next_frame()) is not None:
            out.append(frame)
    return out


@given(frames, st.lists(st.integers(min_value=0), max_size=30))
def test_frames_survive_any_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(b) for b in bodies)
    decoder = FrameDecoder(max_frame_bytes=300)
    out, wire_sizes = [], []
    for piece in chunked(wire, cuts):
        decoder.feed(piece)
        while (frame := decoder.next_frame()) is not None:
            out.append(frame)
            wire_sizes.append(decoder.last_wire_bytes)
    assert out == bodies
    assert sum(wire_sizes) == len(wire)  # what a reader releases adds up
    assert decoder.at_boundary


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_uvarint_roundtrip_and_minimal(value: int) -> None:
    encoded = encode_uvarint(value)
    assert len(encoded) <= MAX_VARINT_BYTES
    assert encoded[-1] < 0x80 and all(b & 0x80 for b in encoded[:-1])
    decoder = FrameDecoder(max_frame_bytes=2**63)
    decoder.feed(encoded)
    assert decoder._read_prefix() and decoder._body_len == value


def test_four_gib_claim_is_refused_after_five_bytes() -> None:
    prefix = encode_uvarint(4 * 1024**3)
    assert len(prefix) == 5
    decoder = FrameDecoder(max_frame_bytes=4 * 1024 * 1024)
    decoder.feed(prefix[:4])  # 2**32 has four 0x80 bytes first: nothing known yet
    assert decoder.next_frame() is None
    decoder.feed(prefix[4:5])
    with pytest.raises(FrameTooLargeError) as caught:
        decoder.next_frame()
    assert caught.value.limit == 4 * 1024 * 1024


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=10_000))
def test_limit_is_exact(limit: int, size: int) -> None:
    decoder = FrameDecoder(max_frame_bytes=limit)
    decoder.feed(encode_uvarint(size))
    if size > limit:
        with pytest.raises(FrameTooLargeError):
            decoder.next_frame()
    else:
        assert decoder.next_frame() is None or size == 0


def test_partial_value_is_a_lower_bound() -> None:
    decoder = FrameDecoder(max_frame_bytes=100)
    decoder.feed(b"\xff")  # 127 + more to come: already over 100
    with pytest.raises(FrameTooLargeError):
        decoder.next_frame()


def test_overlong_prefix_is_malformed() -> None:
    decoder = FrameDecoder(max_frame_bytes=2**70)
    decoder.feed(b"\x80" * MAX_VARINT_BYTES)
    with pytest.raises(MalformedFrameError):
        decoder.next_frame()


@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_untyped(garbage: bytes) -> None:
    decoder = FrameDecoder(max_frame_bytes=64)
    decoder.feed(garbage)
    frames = []
    with contextlib.suppress(FrameError):
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    assert sum(len(f) for f in frames) <= len(garbage)


def test_buffer_is_compacted() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    for _ in range(100_000):
        decoder.feed(encode_frame(b"0123456789"))
        assert decoder.next_frame() == b"0123456789"
    assert len(decoder._buf) < 200_000


def test_take_buffered_hands_over_the_rest() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    decoder.feed(encode_frame(b"ab") + b"rest")
    assert decoder.next_frame() == b"ab"
    assert decoder.take_buffered() == b"rest"
    assert decoder.at_boundary


def test_multistream_messages() -> None:
    assert multistream.HEADER == b"\x13/multistream/1.0.0\n"
    assert multistream.propose("didcomm/v2") == multistream.HEADER + b"\x0bdidcomm/v2\n"
    assert multistream.decode_message(b"na\n") == "na"
    with pytest.raises(FrameError):
        multistream.decode_message(b"na")
    with pytest.raises(FrameError):
        multistream.decode_message(b"\xff\n")


@given(st.integers(min_value=0, max_value=2**62), st.binary(max_size=100))
def test_deliver_message_roundtrip(seq: int, message: bytes) -> None:
    body = deliver.encode_message(seq, message)
    assert len(body) - len(message) <= deliver.MESSAGE_OVERHEAD_BYTES
    assert deliver.decode_message(body) == (seq, message)


@given(st.integers(min_value=0, max_value=2**62), st.integers(min_value=0, max_value=255))
def test_deliver_ack_roundtrip(seq: int, status: int) -> None:
    body = deliver.encode_ack(seq, status)
    assert len(body) <= deliver.MAX_ACK_BYTES
    assert deliver.decode_ack(body) == (seq, status)


@given(st.binary(max_size=20))
def test_deliver_garbage_is_a_frame_error(garbage: bytes) -> None:
    for decode in (deliver.decode_ack, deliver.decode_message):
        with contextlib.suppress(FrameError):
            decode(garbage)

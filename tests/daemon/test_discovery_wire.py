"""The sans-I/O halves of discovery: the DNS codec and the libp2p mDNS rules.

- :mod:`daemon.p2p.dnswire`: what it encodes it decodes to the same message
  (property), and no byte string makes it raise anything but DNSFormatError
  (property); compression pointers are followed backwards only.
- :mod:`daemon.p2p.mdns`: an answer in js-libp2p's form (PTR + TXT only), in
  py-libp2p's current form (PTR, SRV, TXT ``dnsaddr=``, A) and its older form
  (TXT ``id=``, SRV port, A records) all yield the peer and its addresses;
  loopback, non-TCP and other-peer addresses are dropped; our own query is
  recognised.
(DID records, :mod:`daemon.p2p.dht`, are in ``test_dht_records``.)
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.p2p import dnswire, mdns
from daemon.p2p.dnswire import Message, Question, Record
from daemon.p2p.errors import IdentityError
from daemon.p2p.identity import PeerIdentity

PEER = PeerIdentity.generate().peer_id
OTHER = PeerIdentity.generate().peer_id

labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
names = st.lists(labels, min_size=1, max_size=4).map(".".join)
ttls = st.integers(min_value=0, max_value=2**32 - 1)
records = st.one_of(
    st.builds(lambda n, t, d: Record(n, dnswire.TYPE_PTR, t, d), names, ttls, names),
    st.builds(lambda n, t, d: Record(n, dnswire.TYPE_TXT, t, tuple(d), flush=True), names, ttls,
              st.lists(st.binary(min_size=1, max_size=60), min_size=1, max_size=4)),
    st.builds(lambda n, t, p, tg: Record(n, dnswire.TYPE_SRV, t, (0, 0, p, tg)), names, ttls,
              st.integers(0, 65535), names),
    st.builds(lambda n, t, a: Record(n, dnswire.TYPE_A, t, a), names, ttls, st.ip_addresses(v=4).map(str)),
    st.builds(lambda n, t, a: Record(n, dnswire.TYPE_AAAA, t, a), names, ttls, st.ip_addresses(v=6).map(str)),
    st.builds(lambda n, t, d: Record(n, 99, t, d), names, ttls, st.binary(max_size=30)),
)


@given(
    st.integers(0, 0xFFFF),
    st.lists(st.builds(Question, names, st.sampled_from([1, 12, 16, 255]), st.booleans()), max_size=3),
    st.lists(records, max_size=5),
    st.lists(records, max_size=5),
)
@settings(max_examples=200, deadline=None)
def test_encode_then_decode_is_identity(msg_id: int, questions: list[Question], answers: list[Record],
                                        additionals: list[Record]) -> None:
    message = Message(id=msg_id, flags=dnswire.FLAG_QR, questions=questions, answers=answers,
                      additionals=additionals)
    assert dnswire.decode(dnswire.encode(message)) == message


@given(st.binary(max_size=600))
@settings(max_examples=500, deadline=None)
def test_any_bytes_decode_or_raise_format_error(data: bytes) -> None:
    with contextlib.suppress(dnswire.DNSFormatError):
        dnswire.decode(data)


@given(st.integers(0, 400), st.integers(0, 255))
@settings(max_examples=300, deadline=None)
def test_mutated_valid_packets_never_crash(index: int, value: int) -> None:
    packet = bytearray(mdns.response_packet("a" * 32, [f"/ip4/10.0.0.2/tcp/4001/p2p/{PEER}"]))
    packet[index % len(packet)] = value
    with contextlib.suppress(dnswire.DNSFormatError):
        mdns.announcements(dnswire.decode(bytes(packet)))


def test_pointer_loops_and_forward_pointers_are_refused() -> None:
    header = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0)
    loop = header + b"\xc0\x0c" + b"\x00\x0c\x00\x01"  # a pointer to itself
    with pytest.raises(dnswire.DNSFormatError, match="forwards"):
        dnswire.decode(loop)
    huge = struct.pack("!HHHHHH", 0, 0, 60000, 0, 0, 0)
    with pytest.raises(dnswire.DNSFormatError, match="more than"):
        dnswire.decode(huge)
    with pytest.raises(dnswire.DNSFormatError):
        dnswire.decode(b"\x00" * (dnswire.MAX_PACKET_BYTES + 1))


def test_compressed_names_are_followed() -> None:
    # A PTR whose target reuses "_p2p._udp.local" by pointer, as zeroconf writes it.
    header = struct.pack("!HHHHHH", 0, dnswire.FLAG_QR, 0, 1, 0, 0)
    service = b"\x04_p2p\x04_udp\x05local\x00"
    rdata = b"\x05peer1\xc0\x0c"
    packet = header + service + struct.pack("!HHIH", dnswire.TYPE_PTR, 1, 120, len(rdata)) + rdata
    (record,) = dnswire.decode(packet).answers
    assert record.data == "peer1._p2p._udp.local"


def answer(*records: Record) -> Message:
    return Message(flags=dnswire.FLAG_QR, answers=list(records))


def test_js_libp2p_answer_with_ptr_and_txt_only() -> None:
    name = "x" * 40 + "._p2p._udp.local"
    message = answer(
        Record(mdns.SERVICE_NAME, dnswire.TYPE_PTR, 120, name),
        Record(name, dnswire.TYPE_TXT, 120, (
            f"dnsaddr=/ip4/10.1.0.5/tcp/4002/p2p/{PEER}".encode(),
            f"dnsaddr=/ip4/127.0.0.1/tcp/4002/p2p/{PEER}".encode(),
            f"dnsaddr=/ip4/10.1.0.5/tcp/4003/ws/p2p/{PEER}".encode(),
        )),
    )
    (found,) = mdns.announcements(dnswire.decode(dnswire.encode(message)))
    assert found.peer_id == PEER and found.ttl == 120
    # Loopback means nothing on another host; ws is still TCP underneath.
    assert mdns.checked_addrs(found.peer_id, found.addrs) == [
        f"/ip4/10.1.0.5/tcp/4002/p2p/{PEER}", f"/ip4/10.1.0.5/tcp/4003/ws/p2p/{PEER}",
    ]


def test_py_libp2p_answers_current_and_legacy() -> None:
    name = "y" * 63 + "._p2p._udp.local"
    current = answer(
        Record(mdns.SERVICE_NAME, dnswire.TYPE_PTR, 120, name),
        Record(name, dnswire.TYPE_SRV, 120, (0, 0, 4005, "yyy.local")),
        Record(name, dnswire.TYPE_TXT, 120, (f"dnsaddr=/ip4/10.1.0.6/tcp/4005/p2p/{PEER}".encode(),
                                             f"dnsaddr2=/ip4/10.1.0.7/tcp/4005/p2p/{PEER}".encode())),
        Record("yyy.local", dnswire.TYPE_A, 120, "10.1.0.6"),
    )
    (found,) = mdns.announcements(current)
    assert mdns.checked_addrs(PEER, found.addrs) == [
        f"/ip4/10.1.0.6/tcp/4005/p2p/{PEER}", f"/ip4/10.1.0.7/tcp/4005/p2p/{PEER}",
    ]
    legacy = answer(
        Record(mdns.SERVICE_NAME, dnswire.TYPE_PTR, 120, name),
        Record(name, dnswire.TYPE_SRV, 120, (0, 0, 4006, "host.local")),
        Record(name, dnswire.TYPE_TXT, 120, (f"id={PEER}".encode(),)),
        Record("host.local", dnswire.TYPE_A, 120, "10.1.0.8"),
    )
    (found,) = mdns.announcements(legacy)
    assert found.addrs == (f"/ip4/10.1.0.8/tcp/4006/p2p/{PEER}",)


def test_our_own_answer_round_trips_and_goodbye_has_ttl_zero() -> None:
    addrs = [f"/ip4/10.1.0.9/tcp/4001/p2p/{PEER}"]
    (found,) = mdns.announcements(dnswire.decode(mdns.response_packet("z" * 32, addrs)))
    assert (found.peer_id, found.addrs, found.ttl) == (PEER, tuple(addrs), mdns.ANNOUNCE_TTL)
    (bye,) = mdns.announcements(dnswire.decode(mdns.response_packet("z" * 32, addrs, ttl=0)))
    assert bye.ttl == 0
    assert mdns.wants_peers(dnswire.decode(mdns.query_packet()))
    assert not mdns.wants_peers(dnswire.decode(mdns.response_packet("z" * 32, addrs)))


def test_addresses_naming_another_peer_or_not_tcp_are_dropped() -> None:
    assert mdns.checked_addrs(PEER, [f"/ip4/10.0.0.1/tcp/1/p2p/{OTHER}", f"/ip4/10.0.0.1/udp/1/quic/p2p/{PEER}",
                                     "garbage", f"/ip4/0.0.0.0/tcp/1/p2p/{PEER}"]) == []
    with pytest.raises(IdentityError):
        mdns.checked_addrs("not-a-peer-id", [])


# DID records (daemon.p2p.dht) are checked in test_dht_records.

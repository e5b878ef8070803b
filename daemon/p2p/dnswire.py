"""DNS messages as bytes: the small subset multicast DNS discovery needs (RFC 1035, RFC 6762).

Theory of operation
-------------------
Sans-I/O: :func:`decode` turns one datagram into a :class:`Message`,
:func:`encode` turns a :class:`Message` into one datagram.  No sockets, no
clock.  :mod:`daemon.p2p.mdns` puts the libp2p mDNS rules on top.

Only the record types libp2p discovery looks at are decoded into fields
(``PTR``, ``TXT``, ``SRV``, ``A``, ``AAAA``); any other record is kept as its
raw bytes, so a peer that adds ``NSEC`` or ``HINFO`` (zeroconf, Avahi) does not
make the whole packet unreadable.

Everything read comes from strangers on the LAN, so every length is checked
against what is left of the packet before it is used, name compression
pointers may only point backwards (no loops), and the counts in the header are
bounded (:data:`MAX_RECORDS`): a 9 KB packet cannot claim 65,535 records and
make us loop.  Every problem is one :class:`DNSFormatError`.

mDNS sets the top bit of a record's class to mean "cache flush" (answers) or
"unicast response wanted" (questions); it is split off into ``flush`` / ``qu``.
Encoding does not compress names: our packets are a few hundred bytes and a
decoder must handle both forms anyway.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Final

#: Largest mDNS packet (RFC 6762 section 17: 9000 bytes including IP/UDP headers).
MAX_PACKET_BYTES: Final = 9000
#: Most questions + records we read from one packet.
MAX_RECORDS: Final = 256
#: Longest name, in bytes on the wire (RFC 1035 section 2.3.4).
MAX_NAME_BYTES: Final = 255
#: Longest label (RFC 1035 section 2.3.4).
MAX_LABEL_BYTES: Final = 63
#: Compression pointers followed per name at most (each must point backwards
#: anyway; this bounds the work of a chain of them).
MAX_POINTER_JUMPS: Final = 32

TYPE_A: Final = 1
TYPE_PTR: Final = 12
TYPE_TXT: Final = 16
TYPE_AAAA: Final = 28
TYPE_SRV: Final = 33
TYPE_ANY: Final = 255
CLASS_IN: Final = 1
#: The class's top bit: cache-flush in records, unicast-response in questions.
CLASS_TOP_BIT: Final = 0x8000
#: Header flags: this message is a response; it is authoritative.
FLAG_QR: Final = 0x8000
FLAG_AA: Final = 0x0400

_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_RECORD_TAIL = struct.Struct("!HHIH")
_SRV_HEAD = struct.Struct("!HHH")


class DNSFormatError(ValueError):
    """The bytes are not a DNS message we can read (or a message cannot be encoded)."""


@dataclass(frozen=True)
class Question:
    """One entry of the question section."""

    name: str
    type: int
    qu: bool = False


@dataclass(frozen=True)
class Record:
    """One resource record; ``data`` is decoded by type.

    ``PTR``: the target name (str); ``TXT``: a tuple of byte strings; ``SRV``:
    ``(priority, weight, port, target)``; ``A``/``AAAA``: the address as text;
    other types: the raw bytes.
    """

    name: str
    type: int
    ttl: int
    data: object
    flush: bool = False


@dataclass
class Message:
    """A DNS message: header fields that matter to mDNS and the four sections."""

    id: int = 0
    flags: int = 0
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authorities: list[Record] = field(default_factory=list)
    additionals: list[Record] = field(default_factory=list)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)

    def records(self) -> list[Record]:
        """Answers, authorities and additionals, in that order."""
        return [*self.answers, *self.authorities, *self.additionals]


# -- decoding ---------------------------------------------------------------------------------


def _name(packet: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` and the offset just after it (not after a pointer's target)."""
    labels: list[str] = []
    total = 0
    end: int | None = None
    jumps = 0
    pos = offset
    while True:
        if pos >= len(packet):
            raise DNSFormatError("a name runs past the end of the packet")
        length = packet[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(packet):
                raise DNSFormatError("a compression pointer runs past the end of the packet")
            target = ((length & 0x3F) << 8) | packet[pos + 1]
            if target >= pos:
                raise DNSFormatError("a compression pointer points forwards")
            jumps += 1
            if jumps > MAX_POINTER_JUMPS:
                raise DNSFormatError("too many compression pointers in one name")
            if end is None:
                end = pos + 2
            pos = target
            continue
        if length & 0xC0:
            raise DNSFormatError("unknown label type")
        pos += 1
        if length == 0:
            break
        if length > MAX_LABEL_BYTES or pos + length > len(packet):
            raise DNSFormatError("a label is too long or runs past the end of the packet")
        total += length + 1
        if total > MAX_NAME_BYTES:
            raise DNSFormatError(f"a name is longer than {MAX_NAME_BYTES} bytes")
        labels.append(packet[pos : pos + length].decode("utf-8", errors="replace"))
        pos += length
    return ".".join(labels), (end if end is not None else pos)


def _txt(rdata: bytes) -> tuple[bytes, ...]:
    strings = []
    pos = 0
    while pos < len(rdata):
        length = rdata[pos]
        if pos + 1 + length > len(rdata):
            raise DNSFormatError("a TXT string runs past its record")
        strings.append(rdata[pos + 1 : pos + 1 + length])
        pos += 1 + length
    return tuple(strings)


def _record(packet: bytes, offset: int) -> tuple[Record, int]:
    name, pos = _name(packet, offset)
    if pos + _RECORD_TAIL.size > len(packet):
        raise DNSFormatError("a record runs past the end of the packet")
    rtype, rclass, ttl, rdlength = _RECORD_TAIL.unpack_from(packet, pos)
    pos += _RECORD_TAIL.size
    if pos + rdlength > len(packet):
        raise DNSFormatError("a record's data runs past the end of the packet")
    rdata = packet[pos : pos + rdlength]
    data: object
    if rtype == TYPE_PTR:
        target, after = _name(packet, pos)
        if after > pos + rdlength:
            raise DNSFormatError("a PTR target runs past its record")
        data = target
    elif rtype == TYPE_TXT:
        data = _txt(rdata)
    elif rtype == TYPE_SRV:
        if rdlength < _SRV_HEAD.size + 1:
            raise DNSFormatError("an SRV record is too short")
        priority, weight, port = _SRV_HEAD.unpack_from(packet, pos)
        target, after = _name(packet, pos + _SRV_HEAD.size)
        if after > pos + rdlength:
            raise DNSFormatError("an SRV target runs past its record")
        data = (priority, weight, port, target)
    elif rtype == TYPE_A:
        if rdlength != 4:
            raise DNSFormatError("an A record is not 4 bytes")
        data = str(ipaddress.IPv4Address(rdata))
    elif rtype == TYPE_AAAA:
        if rdlength != 16:
            raise DNSFormatError("an AAAA record is not 16 bytes")
        data = str(ipaddress.IPv6Address(rdata))
    else:
        data = bytes(rdata)
    record = Record(name, rtype, ttl, data, flush=bool(rclass & CLASS_TOP_BIT))
    return record, pos + rdlength


def decode(packet: bytes) -> Message:
    """Parse one DNS message; raises :class:`DNSFormatError`."""
    if len(packet) > MAX_PACKET_BYTES:
        raise DNSFormatError(f"packet of {len(packet)} bytes is over {MAX_PACKET_BYTES}")
    if len(packet) < _HEADER.size:
        raise DNSFormatError("packet shorter than a DNS header")
    msg_id, flags, qd, an, ns, ar = _HEADER.unpack_from(packet)
    if qd + an + ns + ar > MAX_RECORDS:
        raise DNSFormatError(f"more than {MAX_RECORDS} questions and records")
    message = Message(id=msg_id, flags=flags)
    pos = _HEADER.size
    for _ in range(qd):
        name, pos = _name(packet, pos)
        if pos + _QUESTION_TAIL.size > len(packet):
            raise DNSFormatError("a question runs past the end of the packet")
        qtype, qclass = _QUESTION_TAIL.unpack_from(packet, pos)
        pos += _QUESTION_TAIL.size
        message.questions.append(Question(name, qtype, qu=bool(qclass & CLASS_TOP_BIT)))
    for count, section in ((an, message.answers), (ns, message.authorities), (ar, message.additionals)):
        for _ in range(count):
            record, pos = _record(packet, pos)
            section.append(record)
    return message


# -- encoding ---------------------------------------------------------------------------------


def _encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split(".") if name.strip(".") else []:
        raw = label.encode()
        if not raw or len(raw) > MAX_LABEL_BYTES:
            raise DNSFormatError(f"bad label {label!r} in {name!r}")
        out += bytes([len(raw)]) + raw
    out.append(0)
    if len(out) > MAX_NAME_BYTES:
        raise DNSFormatError(f"name {name!r} is longer than {MAX_NAME_BYTES} bytes")
    return bytes(out)


def _encode_rdata(record: Record) -> bytes:
    data = record.data
    if record.type == TYPE_PTR and isinstance(data, str):
        return _encode_name(data)
    if record.type == TYPE_TXT and isinstance(data, tuple):
        out = bytearray()
        for item in data:
            if not isinstance(item, bytes) or len(item) > 255:
                raise DNSFormatError("a TXT string must be bytes of at most 255")
            out += bytes([len(item)]) + item
        return bytes(out) or b"\x00"
    if record.type == TYPE_SRV and isinstance(data, tuple) and len(data) == 4:
        priority, weight, port, target = data
        return _SRV_HEAD.pack(priority, weight, port) + _encode_name(target)
    if record.type == TYPE_A and isinstance(data, str):
        return ipaddress.IPv4Address(data).packed
    if record.type == TYPE_AAAA and isinstance(data, str):
        return ipaddress.IPv6Address(data).packed
    if isinstance(data, bytes):
        return data
    raise DNSFormatError(f"cannot encode {type(data).__name__} data for type {record.type}")


def encode(message: Message) -> bytes:
    """The wire form of ``message``; raises :class:`DNSFormatError` (bad name, too large)."""
    sections = (message.answers, message.authorities, message.additionals)
    out = bytearray(
        _HEADER.pack(
            message.id & 0xFFFF,
            message.flags & 0xFFFF,
            len(message.questions),
            *(len(s) for s in sections),
        )
    )
    for q in message.questions:
        out += _encode_name(q.name)
        out += _QUESTION_TAIL.pack(q.type, CLASS_IN | (CLASS_TOP_BIT if q.qu else 0))
    for section in sections:
        for record in section:
            rdata = _encode_rdata(record)
            out += _encode_name(record.name)
            out += _RECORD_TAIL.pack(
                record.type,
                CLASS_IN | (CLASS_TOP_BIT if record.flush else 0),
                record.ttl & 0xFFFFFFFF,
                len(rdata),
            )
            out += rdata
    if len(out) > MAX_PACKET_BYTES:
        raise DNSFormatError(f"message of {len(out)} bytes is over {MAX_PACKET_BYTES}")
    return bytes(out)

"""Status lists (protocols/status_list.py) as a specification.

The draft's own examples first (draft-ietf-oauth-status-list, the editor's
copy of April 2026: section "Compressed Byte Array" and appendix "Test
vectors"; W3C Bitstring Status List v1.0's empty 16 KB list), then the API's
promises: round trips, what a verifier refuses and with which typed error,
and hypothesis for every decoder and verifier on hostile input.
"""

from __future__ import annotations

import contextlib
import copy
import json
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import data_integrity, errors, sd_jwt, status_list
from protocols.codec import b64u_decode, b64u_encode, json_dumps
from protocols.did.did_key import create_did_key
from protocols.did.resolver import default_resolver
from protocols.errors import (
    DIDCommError,
    MalformedStatusListError,
    StatusIndexError,
    StatusListError,
    StatusListExpiredError,
    StatusListIssuerError,
    StatusListMismatchError,
    StatusListSignatureError,
    StatusListTimeError,
    StatusListTooLargeError,
    UnsupportedStatusListError,
)
from protocols.keys import PrivateKey
from protocols.report_problem import is_valid_code
from protocols.status_list import (
    LIST_SIZE,
    MAX_LIST_BYTES,
    REVOKED,
    SUSPENDED,
    TOKEN_TYP,
    VALID,
    StatusList,
    StatusReference,
    bitstring_entry,
    decode_bitstring,
    decode_lst,
    encode_bitstring,
    encode_lst,
    read_bitstring_entry,
    read_token_reference,
    sign_list_credential,
    sign_token,
    status_reference,
    token_reference,
    verify_list_credential,
    verify_status_list,
    verify_token,
)

# -- the draft's examples ---------------------------------------------------------------

# Section "Compressed Byte Array": 16 entries of 1 bit, 12 entries of 2 bits.
DRAFT_1BIT = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
DRAFT_1BIT_BYTES = bytes([0xB9, 0xA3])
DRAFT_1BIT_ZLIB = bytes.fromhex("78dadbb918000217015d")
DRAFT_1BIT_LST = "eNrbuRgAAhcBXQ"
DRAFT_2BIT = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
DRAFT_2BIT_BYTES = bytes([0xC9, 0x44, 0xF9])
DRAFT_2BIT_ZLIB = bytes.fromhex("78da3be9f2130003df0207")
DRAFT_2BIT_LST = "eNo76fITAAPfAgc"

# Appendix "Test vectors": lists of 2**20 entries, every entry not named is 0.
DRAFT_LONG_SIZE = 2**20
# fmt: off
DRAFT_LONG_1_STATUSES = {
    0: 1, 1993: 1, 25460: 1, 159495: 1, 495669: 1, 554353: 1, 645645: 1, 723232: 1, 854545: 1,
    934534: 1, 1000345: 1,
}
DRAFT_LONG_1_LST = (
    "eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogEAAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAA"
    "vhsSAAAAAAAAAAAA7KpLAAAAAAAAAAAAAAAAAAAAAJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAA"
    "AACAZC8L2AEb"
)
DRAFT_LONG_2_STATUSES = {
    0: 1, 1993: 2, 25460: 1, 159495: 3, 495669: 1, 554353: 1, 645645: 2, 723232: 1, 854545: 1,
    934534: 2, 1000345: 3,
}
DRAFT_LONG_2_LST = (
    "eNrt2zENACEQAEEuoaBABP5VIO01fCjIHTMStt9ovGVIAAAAAABAbiEBAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAEB5WwIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAID0ugQAAAAAAAAAAAAAAAAAQG12SgAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAOCSIQEAAAAAAAAAAAAAAAAAAAAAAAD8ExIAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAwJEuAQAAAAAAAAAAAAAAAAAAAAAAAMB9SwIAAAAAAAAAAAAAAAAAAACoYUoA"
    "AAAAAAAAAAAAAEBqH81gAQw"
)
DRAFT_LONG_4_STATUSES = {
    0: 1, 1993: 2, 35460: 3, 459495: 4, 595669: 5, 754353: 6, 845645: 7, 923232: 8, 924445: 9,
    934534: 10, 1004534: 11, 1000345: 12, 1030203: 13, 1030204: 14, 1030205: 15,
}
DRAFT_LONG_4_LST = (
    "eNrt0EENgDAQADAIHwImkIIEJEwCUpCEBBQRHOy35Li1EjoOQGabAgAAAAAAAAAAAAAAAAAAACC1SQEA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAABADrsCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADoxaEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIIoCgAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACArpwKAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAGhqVkAzlwIAAAAAiGVRAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAABx3AoAgLpVAQAAAAAAAAAAAAAAwM89rwMAAAAAAAAAAAjsA9xMBMA"
)
# status[DRAFT_LONG_8_INDEXES[v]] = v for v in 0..255
DRAFT_LONG_8_INDEXES = [
    233478, 52451, 576778, 513575, 468106, 292632, 214947, 182323, 884834, 66653, 62489, 196493,
    458517, 487925, 55649, 416992, 879796, 462297, 942059, 583408, 13628, 334829, 886286,
    713557, 582738, 326064, 451545, 705889, 214350, 194502, 796765, 202828, 752834, 721327,
    554740, 91122, 963483, 261779, 793844, 165255, 614839, 758403, 403258, 145867, 96100,
    477937, 606890, 167335, 488197, 211815, 797182, 582952, 950870, 765108, 341110, 776325,
    745056, 439368, 559893, 149741, 358903, 513405, 342679, 969429, 795775, 566121, 460566,
    680070, 117310, 480348, 67319, 661552, 841303, 561493, 138807, 442463, 659927, 445910,
    1046963, 829700, 962282, 299623, 555493, 292826, 517215, 551009, 898490, 837603, 759161,
    459948, 290102, 1034977, 190650, 98810, 229950, 320531, 335506, 885333, 133227, 806915,
    800313, 981571, 527253, 24077, 240232, 559572, 713399, 233941, 615514, 911768, 331680,
    951527, 6805, 552366, 374660, 223159, 625884, 417146, 320527, 784154, 338792, 1199, 679804,
    1024680, 40845, 234603, 761225, 644903, 502167, 121477, 505144, 165165, 179628, 1019195,
    145149, 263738, 269256, 996739, 346296, 555864, 887384, 444173, 421844, 653716, 836747,
    783119, 918762, 946835, 253764, 519895, 471224, 134272, 709016, 44112, 482585, 461829,
    15080, 148883, 123467, 480125, 141348, 65877, 692958, 148598, 499131, 584009, 1017987,
    449287, 277478, 991262, 509602, 991896, 853666, 399318, 197815, 203278, 903979, 743015,
    888308, 862143, 979421, 113605, 206397, 127113, 844358, 711569, 229153, 521470, 401793,
    398896, 940810, 293983, 884749, 384802, 584151, 970201, 523882, 158093, 929312, 205329,
    106091, 30949, 195586, 495723, 348779, 852312, 1018463, 1009481, 448260, 841042, 122967,
    345269, 794764, 4520, 818773, 556171, 954221, 598210, 887110, 1020623, 324632, 398244,
    622241, 456551, 122648, 127837, 657676, 119884, 105156, 999897, 330160, 119285, 168005,
    389703, 143699, 142524, 493258, 846778, 251420, 516351, 83344, 171931, 879178, 663475,
    546865, 428362, 658891, 500560, 557034, 830023, 274471, 629139, 958869, 663071, 152133,
    19535,
]
DRAFT_LONG_8_LST = (
    "eNrt0WOQM2kYhtGsbdu2bdu2bdu2bdu2bdu2jVnU1my-SWYm6U5enFPVf7ue97orFYAo7CQBAACQuuck"
    "AABStqUEAAAAAAAAtN6wEgAE71QJAAAAAIrwhwQAAAAAAdtAAgAAAAAAACLwkAQAAAAAAAAAAACUaFcJ"
    "AACAeJwkAQAAAAAAAABQvL4kAAAAWmJwCQAAAAAAAAjAwBIAAAB06ywJoDKQBARpfgkAAAAAAAAAAAAA"
    "AAAAAACo50sJAAAAAAAAAOiRcSQAAAAAgAJNKgEAAG23mgQAAAAAAECw3pUAQvegBAAAAAAAAADduE4C"
    "AAAAyjSvBAAQiw8koHjvSABAb-wlARCONyVoxtMSZOd0CQAAAOjWDRKQmLckAAAAAACysLYEQGcnSAAA"
    "AAAQooUlAABI15kSAIH5RAIgLB9LABC4_SUgGZNIAABAmM6RoLbTJIASzCIBAEAhfpcAAAAAAABquk8C"
    "AAAAAAAAaJl9SvvzBOICAFWmkIBgfSgBAAAANOgrCQAAAAAAAADStK8EAAC03gASAAAAAAAAAADFWFUC"
    "AAAAMjOaBEADHpYAQjCIBADduFwCAAAAAGitMSSI3BUSAECOHpAA6IHrJQAAAAAAsjeVBAAAKRpVAorW"
    "vwQAAAAAAAAAkKRtJAAAAAAAgCbcLAF0bXUJAAAAoF02kYDg7CYBAAAAAEB6NpQAAAAAAAAAAAAAAEr1"
    "uQQAAF06VgIAAAAAAAAAqDaeBAAQqgMkAAAAAABogQMlAAAAAAAa87MEAAAQiwslAAAAAAAAAAAAAAAA"
    "MrOyBAAAiekv-hcsY0Sgne6QAAAAAAAgaUtJAAAAAAAAAAAAAAAAAAAAAAAAAADwt-07vjVkAAAAgDy8"
    "KgFAUEaSAAAAAJL3vgQAWdhcAgAAoBHDSUDo1pQAAACI2o4SAABZm14CALoyuwQAAPznGQkgZwdLAAAQ"
    "ukclAAAAAAAAAAAAgKbMKgEAAAAAAAAAAAAAAAAAAECftpYAAAAAAAAAAAAACnaXBAAAAADk7iMJAAAA"
    "AAAAAABqe00CAnGbBBG4TAIAgFDdKgFAXCaWAAAAAAAAAAAAAAAAAKAJQwR72XbGAQAAAKAhh0sAAAAA"
    "AABQgO8kAAAAAAAAAAAAACAaM0kAAAC5W0QCAIJ3mAQAxGwxCQAA6nhSAsjZBRIAANEbWQIAAAAAaJE3"
    "JACAwA0qAUBIVpKAlphbAiAPp0iQnKEkAAAAAAAgBP1KAAAAdOl4CQAAAAAAAPjLZBIAAG10RtrPm8_C"
    "AEBMTpYAAAAAAIjQYBL8z5QSAAAAAEDYPpUAACAsj0gAAADQkHMlAAjHDxIA0Lg9JQAAgHDsLQEAAABA"
    "QS6WAAAAgLjNFs2l_RgLAIAEfCEBlGZZCQAAaIHjJACgtlskAAAozb0SAAAAVFtfAgAAAAAAAAAAAAAA"
    "AAAAAAAAAKDDtxIAAAAAVZaTAKB5W0kAANCAsSUgJ0tL0GqHSNBbL0gAZflRAgCARG0kQXNmlgCABiwk"
    "AQAAAEB25pIAAAAAAAAAAAAAoFh9SwAAAAAAADWNmOSrpjFsEoaRgDKcF9Q1dxsEAAAAAAAAAAAAAAAA"
    "gPZ6SQIAAAAAAAAAgChMLgEAAAAAAAAAqZlQAsK2qQQAAAAAAAD06XUJAAAAqG9bCQAAgLD9IgEAAAAA"
    "AAAAAAAAAAAAAEBNe0gAAAAAAAAAAEBPHSEBAAAAlOZtCYA4fS8B0GFRCQAo0gISAOTgNwmC840EAAAA"
    "AAAAAAAAAAAAAAAAUJydJfjXPBIAAAAAAAAAAAAAAABk6WwJAAAAAAAAAAAAAAAAqG8UCQAAgPpOlAAA"
    "IA83SQAANWwc9HUjGAgAAAAAAACAusaSAAAAAAAAAAAAAAAAAAAAAAAAAAAAqHKVBACQjxklAAAAAAAA"
    "AKBHxpQAAAAAACBME0lAdlaUAACyt7sEAAAA0Nl0EgAAAAAAAAAAAABA-8wgAQAAAAAAAKU4SgKgUtlB"
    "AgAAAAAAAAAAgMCMLwEE51kJICdzSgCJGl2CsE0tAQAA0L11JQAAAAAAAAjUOhIAAAAAAAAAAAAAAGTq"
    "eQkAAAAAAAAAAAAAKM8SEjTrJwkAAAAAAACocqQEULgVJAAAACjDUxJUKgtKAAAAqbpRAgCA0n0mAQAA"
    "AABAGzwmAUCTLpUAAAAAAAAAAEjZNRIAAAAAAAAAAAAAAAAAAAAA8I-vJaAlhpQAAAAAAHrvzjJ-OqCu"
    "uVlLAojP8BJAr70sQZVDJYAgXS0BAAAAAAAAAAAAtMnyEgAAAAAAFONKCQAAAAAAAADorc0kAAAAAAAA"
    "gDqOlgAAAAAAAAAAAADIwv0SAAAAAAAAAAAAAADBuV0CIFVDSwAAAABAAI6RAAAAAGIwrQSEZAsJAABo"
    "uRclAAAAAKDDrxIAAAA0bkkJgFiMKwEAAAAAAHQyhwRk7h4JAAAAAAAAAAAgatdKAACUYj0JAAAAAAAA"
    "AAAAQnORBLTFJRIAAAAAkIaDJAAAAJryngQAAAAAAAAAAAA98oQEAAAAAAAAAEC2zpcgWY9LQKL2kwAg"
    "GK9IAAAAAPHaRQIAAAAAAAAAAADIxyoSAAAAAAAAAAAAAADQFotLAECz_gQ1PX-B"
)
# fmt: on

# W3C Bitstring Status List v1.0's example encodedList: 16 KB of zeros.
W3C_EMPTY_LIST = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"


def _draft_long(bits: int) -> tuple[dict[int, int], str]:
    if bits == 8:
        return {index: value for value, index in enumerate(DRAFT_LONG_8_INDEXES)}, DRAFT_LONG_8_LST
    return globals()[f"DRAFT_LONG_{bits}_STATUSES"], globals()[f"DRAFT_LONG_{bits}_LST"]


def _filled(size: int, bits: int, values: dict[int, int]) -> StatusList:
    out = StatusList(size, bits=bits)
    for index, value in values.items():
        out.set(index, value)
    return out


def test_draft_1bit_example() -> None:
    statuses = _filled(16, 1, dict(enumerate(DRAFT_1BIT)))
    assert statuses.to_bytes() == DRAFT_1BIT_BYTES
    decoded = decode_lst(DRAFT_1BIT_LST, bits=1)
    assert [decoded.get(i) for i in range(16)] == DRAFT_1BIT
    assert decoded == statuses
    # Our zlib at the recommended highest level writes the draft's very bytes.
    assert b64u_decode(encode_lst(statuses)) == DRAFT_1BIT_ZLIB
    assert encode_lst(statuses) == DRAFT_1BIT_LST


def test_draft_2bit_example() -> None:
    statuses = _filled(12, 2, dict(enumerate(DRAFT_2BIT)))
    # 12 entries of 2 bits are 3 bytes; every entry is used, so the sizes agree.
    assert statuses.to_bytes() == DRAFT_2BIT_BYTES
    decoded = decode_lst(DRAFT_2BIT_LST, bits=2)
    assert decoded.size == 12
    assert [decoded.get(i) for i in range(12)] == DRAFT_2BIT
    assert b64u_decode(encode_lst(statuses)) == DRAFT_2BIT_ZLIB
    assert encode_lst(statuses) == DRAFT_2BIT_LST
    assert decoded.get(1) == SUSPENDED and decoded.get(0) == REVOKED and decoded.get(2) == VALID


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_draft_test_vectors(bits: int) -> None:
    values, lst = _draft_long(bits)
    expected = _filled(DRAFT_LONG_SIZE, bits, values)
    decoded = decode_lst(lst, bits=bits)
    assert decoded.size == DRAFT_LONG_SIZE
    assert decoded == expected  # the named entries, and every other one 0
    assert all(decoded.get(i) == v for i, v in values.items())
    # Our encoding decodes to the same list, and is the draft's text byte for byte.
    assert decode_lst(encode_lst(expected), bits=bits) == expected
    assert encode_lst(expected) == lst


def test_w3c_empty_list_example() -> None:
    decoded = decode_bitstring(W3C_EMPTY_LIST)
    assert decoded.size == LIST_SIZE == 131_072 and decoded.bits == 1
    assert decoded.to_bytes() == bytes(LIST_SIZE // 8)
    # Ours decodes the same; its GZIP bytes may differ (header fields), so compare lists.
    ours = encode_bitstring(StatusList())
    assert ours.startswith("u") and decode_bitstring(ours) == decoded


# -- bit order -------------------------------------------------------------------------------


def test_token_packing_puts_entry_0_in_the_low_bit() -> None:
    statuses = StatusList(16)
    statuses.set(0, 1)
    statuses.set(9, 1)
    assert statuses.to_bytes() == bytes([0b0000_0001, 0b0000_0010])
    four = StatusList(4, bits=4)
    four.set(1, 0xA)
    assert four.to_bytes() == bytes([0xA0, 0x00])


def test_bitstring_puts_entry_0_in_the_high_bit() -> None:
    statuses = StatusList(LIST_SIZE)
    statuses.set(0, 1)
    statuses.set(15, 1)
    raw = b64u_decode(encode_bitstring(statuses)[1:])
    data = zlib.decompressobj(31).decompress(raw)
    assert data[:2] == bytes([0b1000_0000, 0b0000_0001]) and len(data) == LIST_SIZE // 8
    assert decode_bitstring(encode_bitstring(statuses)) == statuses


def test_bitstring_is_one_bit_only() -> None:
    with pytest.raises(UnsupportedStatusListError):
        encode_bitstring(StatusList(LIST_SIZE, bits=2))


# -- the list ---------------------------------------------------------------------------------


def test_new_list_is_all_valid_and_bounds_are_typed() -> None:
    statuses = StatusList()
    assert statuses.size == LIST_SIZE and statuses.bits == 1
    assert statuses.get(0) == statuses.get(LIST_SIZE - 1) == VALID
    for index in (-1, LIST_SIZE, True, "1", 1.0):
        with pytest.raises(StatusIndexError):
            statuses.get(index)  # type: ignore[arg-type]
    for value in (2, -1, True, None):
        with pytest.raises(StatusIndexError):
            statuses.set(0, value)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedStatusListError):
        StatusList(8, bits=3)
    with pytest.raises(StatusListTooLargeError):
        StatusList(0)
    with pytest.raises(StatusListTooLargeError):
        StatusList(MAX_LIST_BYTES * 8 + 1)
    with pytest.raises(StatusListTooLargeError):
        StatusList.from_bytes(bytes(MAX_LIST_BYTES + 1))
    with pytest.raises(MalformedStatusListError):
        StatusList.from_bytes(b"")


@settings(max_examples=150)
@given(
    bits=st.sampled_from([1, 2, 4, 8]),
    size=st.integers(1, 300),
    writes=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=40),
)
def test_set_get_round_trip(bits: int, size: int, writes: list[tuple[int, int]]) -> None:
    statuses = StatusList(size, bits=bits)
    model = [0] * size
    for index, value in writes:
        index %= size
        value %= 1 << bits
        statuses.set(index, value)
        model[index] = value
    assert [statuses.get(i) for i in range(size)] == model
    again = StatusList.from_bytes(statuses.to_bytes(), bits=bits)
    assert [again.get(i) for i in range(size)] == model  # from_bytes may add padding entries
    assert decode_lst(encode_lst(statuses), bits=bits) == again


@settings(max_examples=60)
@given(st.lists(st.integers(0, LIST_SIZE - 1), max_size=60), st.integers(0, 3))
def test_bitstring_round_trip(revoked: list[int], extra_bytes: int) -> None:
    statuses = StatusList(LIST_SIZE + 8 * extra_bytes)
    for index in revoked:
        statuses.set(index, REVOKED)
    assert decode_bitstring(encode_bitstring(statuses)) == statuses


# -- bombs and broken compression ---------------------------------------------------------------

_BOMB = zlib.compress(bytes(32 * MAX_LIST_BYTES), 9)  # 32 MiB of zeros in ~32 KB


def test_zlib_bomb_fails_fast_with_a_typed_error() -> None:
    assert len(_BOMB) < 64 * 1024
    with pytest.raises(StatusListTooLargeError):
        decode_lst(b64u_encode(_BOMB), bits=1)


def test_gzip_bomb_fails_fast_with_a_typed_error() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(bytes(32 * MAX_LIST_BYTES)) + packer.flush()
    with pytest.raises(StatusListTooLargeError):
        decode_bitstring("u" + b64u_encode(bomb))


def test_largest_list_is_accepted() -> None:
    full = zlib.compress(bytes(MAX_LIST_BYTES), 9)
    assert decode_lst(b64u_encode(full), bits=8).size == MAX_LIST_BYTES


@pytest.mark.parametrize(
    "lst",
    [
        b64u_encode(zlib.compress(b"\x01\x02", 9)[:-2]),  # truncated
        b64u_encode(zlib.compress(b"\x01\x02", 9) + b"x"),  # trailing bytes
        b64u_encode(zlib.compress(b"", 9)),  # empty list
        b64u_encode(b"not zlib"),
        DRAFT_1BIT_LST + "=",  # padding
        DRAFT_1BIT_LST[:-1] + "R",  # non-canonical last character (same bytes)
        "eNrbuRgAAhcBXQ+",  # not base64url
        "",
    ],
)
def test_broken_lst(lst: str) -> None:
    with pytest.raises(MalformedStatusListError):
        decode_lst(lst, bits=1)


@pytest.mark.parametrize("encoded", ["", "z" + W3C_EMPTY_LIST[1:], W3C_EMPTY_LIST[:-3], 5])
def test_broken_encoded_list(encoded: Any) -> None:
    with pytest.raises(MalformedStatusListError):
        decode_bitstring(encoded)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80), st.none(), st.integers()))
def test_decoders_raise_only_typed_errors(junk: Any) -> None:
    for decode in (lambda: decode_lst(junk, bits=1), lambda: decode_bitstring(junk)):
        with contextlib.suppress(StatusListError):
            decode()


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=200), st.integers(0, 40))
def test_truncated_or_altered_compressed_lists(data: bytes, cut: int) -> None:
    packed = zlib.compress(data, 9)
    for raw in (packed[: max(0, len(packed) - cut)], packed[:cut] + b"\x00" + packed[cut:]):
        try:
            decoded = decode_lst(b64u_encode(raw), bits=8)
        except StatusListError:
            continue
        assert decoded.to_bytes() == zlib.decompress(raw)


# -- references -----------------------------------------------------------------------------------

URI = "did:example:issuer/status/sd-jwt/0"


def test_token_reference_round_trip() -> None:
    reference = token_reference(URI, 42)
    assert reference == {"status_list": {"idx": 42, "uri": URI}}
    assert read_token_reference(reference) == (URI, 42)
    assert status_reference("dc+sd-jwt", URI, 42) == reference
    # Members a later draft may add are ignored.
    extended = {"status_list": {"idx": 1, "uri": URI, "extra": True}, "other": {}}
    assert read_token_reference(extended) == (URI, 1)


def test_bitstring_entry_round_trip() -> None:
    url = "did:example:issuer/status/di/0"
    entry = bitstring_entry(url, 7)
    assert entry == {
        "id": f"{url}#7",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "7",
        "statusListCredential": url,
    }
    assert read_bitstring_entry(entry) == StatusReference(url, 7, "revocation")
    assert status_reference("di_vc", url, 7) == entry
    with pytest.raises(UnsupportedStatusListError):
        status_reference("jwt_vc", url, 7)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"statusPurpose": "message"}, StatusListMismatchError),
        ({"statusPurpose": "refresh"}, StatusListMismatchError),
        ({"statusPurpose": ["revocation"]}, StatusListMismatchError),
        ({"type": "StatusList2021Entry"}, MalformedStatusListError),
        ({"statusListIndex": 7}, MalformedStatusListError),
        ({"statusListIndex": "07"}, MalformedStatusListError),
        ({"statusListIndex": "-1"}, MalformedStatusListError),
        ({"statusListIndex": str(status_list.MAX_ENTRIES)}, StatusIndexError),
        ({"statusListCredential": ""}, MalformedStatusListError),
        ({"statusSize": 2}, UnsupportedStatusListError),
    ],
)
def test_bad_bitstring_entries(change: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        read_bitstring_entry({**bitstring_entry("did:example:i/status/di/0", 7), **change})


@pytest.mark.parametrize(
    "status",
    [
        None,
        {},
        {"status_list": []},
        {"status_list": {"idx": "1", "uri": URI}},
        {"status_list": {"idx": True, "uri": URI}},
        {"status_list": {"idx": -1, "uri": URI}},
        {"status_list": {"idx": 1}},
        {"status_list": {"idx": 1, "uri": "x" * 5000}},
    ],
)
def test_bad_token_references(status: Any) -> None:
    with pytest.raises(StatusListError):
        read_token_reference(status)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(_JSON, st.dictionaries(st.sampled_from(list(bitstring_entry("u", 1))), _JSON, max_size=3))
def test_readers_raise_only_typed_errors(junk: Any, change: dict[str, Any]) -> None:
    for value in (junk, {"status_list": junk}, {**bitstring_entry("did:example:i/s", 3), **change}):
        for read in (read_token_reference, read_bitstring_entry):
            try:
                found = read(value)
            except StatusListError:
                continue
            url, index = (found.uri, found.index) if isinstance(found, StatusReference) else found
            assert isinstance(url, str) and isinstance(index, int) and index >= 0


# -- signing parties -------------------------------------------------------------------------------

NOW = 1_800_000_000
KEY = PrivateKey.generate("Ed25519")
ISSUER = create_did_key(KEY.public)
KID = f"{ISSUER}#{ISSUER.removeprefix('did:key:')}"
OTHER_KEY = PrivateKey.generate("Ed25519")
OTHER = create_did_key(OTHER_KEY.public)
OTHER_KID = f"{OTHER}#{OTHER.removeprefix('did:key:')}"
RESOLVER = default_resolver()
TOKEN_URI = f"{ISSUER}/status/sd-jwt/0"
LIST_URL = f"{ISSUER}/status/di/0"

# A DID whose only key is an authentication key: it may not sign status lists.
AUTH_ONLY = "did:example:auth-only"
AUTH_ONLY_KID = f"{AUTH_ONLY}#key-1"
AUTH_ONLY_RESOLVER = default_resolver(
    [
        {
            "id": AUTH_ONLY,
            "verificationMethod": [
                {
                    "id": AUTH_ONLY_KID,
                    "type": "Multikey",
                    "controller": AUTH_ONLY,
                    "publicKeyMultibase": KEY.public.to_multikey(),
                }
            ],
            "authentication": [AUTH_ONLY_KID],
        }
    ]
)


def _revoked(*indexes: int) -> StatusList:
    statuses = StatusList()
    for index in indexes:
        statuses.set(index, REVOKED)
    return statuses


STATUSES = _revoked(3, 77_777)


def _token(**kwargs: Any) -> str:
    args: dict[str, Any] = {
        "uri": TOKEN_URI,
        "issuer": ISSUER,
        "kid": KID,
        "key": KEY,
        "now": NOW,
    }
    args.update(kwargs)
    return sign_token(args.pop("statuses", STATUSES), **args)


def _raw_token(header: dict[str, Any], payload: dict[str, Any], key: PrivateKey = KEY) -> str:
    """A token signed as sign_token would, with whatever header and payload a test wants."""
    return sd_jwt.sign_jwt(header, payload, key)


def _payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "sub": TOKEN_URI,
        "iss": ISSUER,
        "iat": NOW,
        "status_list": {"bits": 1, "lst": encode_lst(STATUSES)},
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


HEADER = {"typ": TOKEN_TYP, "alg": "EdDSA", "kid": KID}

# -- the Status List Token ----------------------------------------------------------------------------


def test_token_round_trip() -> None:
    token = _token(ttl=3600, expires=NOW + 86_400)
    header = json.loads(b64u_decode(token.split(".")[0]))
    assert header == {"typ": "statuslist+jwt", "alg": "EdDSA", "kid": KID}
    payload = json.loads(b64u_decode(token.split(".")[1]))
    assert payload == {
        "sub": TOKEN_URI,
        "iss": ISSUER,
        "iat": NOW,
        "exp": NOW + 86_400,
        "ttl": 3600,
        "status_list": {"bits": 1, "lst": encode_lst(STATUSES)},
    }
    verified = verify_token(token, resolver=RESOLVER, now=NOW + 10, uri=TOKEN_URI)
    assert (verified.uri, verified.issuer, verified.issued_at) == (TOKEN_URI, ISSUER, NOW)
    assert (verified.expires, verified.ttl) == (NOW + 86_400, 3600)
    assert verified.statuses == STATUSES
    assert verified.status(3) == verified.status(77_777) == REVOKED
    assert verified.status(4) == VALID
    with pytest.raises(StatusIndexError):
        verified.status(LIST_SIZE)
    # Without uri any list verifies; the minimal token has no exp and no ttl.
    plain = verify_token(_token(), resolver=RESOLVER, now=NOW)
    assert (plain.expires, plain.ttl) == (None, None)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_token_with_wider_entries(bits: int) -> None:
    statuses = StatusList(1000, bits=bits)
    statuses.set(999, (1 << bits) - 1)
    statuses.set(1, SUSPENDED)
    verified = verify_token(_token(statuses=statuses), resolver=RESOLVER, now=NOW)
    assert verified.statuses == statuses and verified.status(1) == SUSPENDED


@pytest.mark.parametrize("curve", ["P-256", "secp256k1"])
def test_token_signed_with_other_curves(curve: str) -> None:
    key = PrivateKey.generate(curve)
    did = create_did_key(key.public)
    kid = f"{did}#{did.removeprefix('did:key:')}"
    token = _token(issuer=did, kid=kid, key=key)
    assert verify_token(token, resolver=RESOLVER, now=NOW).issuer == did


def test_token_of_another_issuer() -> None:
    # Signed by OTHER's key but naming ISSUER's key: the signature fails.
    forged = _raw_token(HEADER, _payload(), key=OTHER_KEY)
    with pytest.raises(StatusListSignatureError):
        verify_token(forged, resolver=RESOLVER, now=NOW)
    # OTHER's key named for ISSUER's list: not a key of iss.
    with pytest.raises(StatusListIssuerError):
        verify_token(
            _raw_token({**HEADER, "kid": OTHER_KID}, _payload(), key=OTHER_KEY),
            resolver=RESOLVER,
            now=NOW,
        )
    # OTHER signing its own list is fine, and the result says who signed it.
    theirs = _token(issuer=OTHER, kid=OTHER_KID, key=OTHER_KEY)
    assert verify_token(theirs, resolver=RESOLVER, now=NOW).issuer == OTHER
    # A kid of another DID cannot even be signed.
    with pytest.raises(StatusListIssuerError):
        _token(kid=OTHER_KID)


def test_token_key_not_assertion_method() -> None:
    token = _raw_token(
        {**HEADER, "kid": AUTH_ONLY_KID}, _payload(iss=AUTH_ONLY, sub=f"{AUTH_ONLY}/status/x")
    )
    with pytest.raises(StatusListIssuerError, match="assertionMethod"):
        verify_token(token, resolver=AUTH_ONLY_RESOLVER, now=NOW)
    # A DID nobody can resolve cannot sign either.
    unknown = _raw_token(
        {**HEADER, "kid": "did:example:nobody#key-1"}, _payload(iss="did:example:nobody")
    )
    with pytest.raises(StatusListIssuerError):
        verify_token(unknown, resolver=RESOLVER, now=NOW)


def test_token_for_another_list() -> None:
    with pytest.raises(StatusListMismatchError):
        verify_token(_token(), resolver=RESOLVER, now=NOW, uri=f"{ISSUER}/status/sd-jwt/1")


def test_token_times() -> None:
    leeway = status_list.CLOCK_LEEWAY_S
    token = _token(expires=NOW + 100)
    verify_token(token, resolver=RESOLVER, now=NOW + 100 + leeway - 1)
    with pytest.raises(StatusListExpiredError):
        verify_token(token, resolver=RESOLVER, now=NOW + 100 + leeway)
    verify_token(token, resolver=RESOLVER, now=NOW - leeway)
    with pytest.raises(StatusListTimeError):
        verify_token(token, resolver=RESOLVER, now=NOW - leeway - 1)  # issued in the future
    with pytest.raises(MalformedStatusListError, match="iat"):
        verify_token(_raw_token(HEADER, _payload(iat=None)), resolver=RESOLVER, now=NOW)
    with pytest.raises(MalformedStatusListError):
        verify_token(_raw_token(HEADER, _payload(iat="now")), resolver=RESOLVER, now=NOW)
    for ttl in (-1, 1.5, "60", True):
        with pytest.raises(MalformedStatusListError):
            verify_token(_raw_token(HEADER, _payload(ttl=ttl)), resolver=RESOLVER, now=NOW)
    verify_token(_raw_token(HEADER, _payload(ttl=0)), resolver=RESOLVER, now=NOW)
    # What the issuer is asked to sign is checked the same way.
    for bad in ({"ttl": -1}, {"expires": NOW}, {"now": "x"}, {"now": True}):
        with pytest.raises(StatusListError):
            _token(**bad)


def test_token_typ() -> None:
    for typ in ("JWT", "dc+sd-jwt", None):
        header = {k: v for k, v in {**HEADER, "typ": typ}.items() if v is not None}
        with pytest.raises(MalformedStatusListError, match="typ"):
            verify_token(_raw_token(header, _payload()), resolver=RESOLVER, now=NOW)


@pytest.mark.parametrize(
    ("status_list_claim", "error"),
    [
        ({"bits": 3, "lst": DRAFT_1BIT_LST}, UnsupportedStatusListError),
        ({"bits": True, "lst": DRAFT_1BIT_LST}, UnsupportedStatusListError),
        ({"bits": 1}, MalformedStatusListError),
        ({"bits": 1, "lst": b64u_encode(_BOMB)}, StatusListTooLargeError),
        ("eNrbuRgAAhcBXQ", MalformedStatusListError),
        (None, MalformedStatusListError),
    ],
)
def test_token_status_list_claim(status_list_claim: Any, error: type[Exception]) -> None:
    token = _raw_token(HEADER, _payload(status_list=status_list_claim))
    with pytest.raises(error):
        verify_token(token, resolver=RESOLVER, now=NOW)


def test_token_size_limit() -> None:
    with pytest.raises(StatusListTooLargeError):
        verify_token("a" * (status_list.MAX_TOKEN_CHARS + 1), resolver=RESOLVER, now=NOW)


TOKEN = _token(expires=NOW + 3600, ttl=60)
_B64U_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@settings(max_examples=400)
@given(st.integers(0, len(TOKEN) - 1), st.sampled_from(_B64U_CHARS + "=~+/ "))
def test_any_changed_character_of_a_token_is_refused(position: int, char: str) -> None:
    if TOKEN[position] == char:
        char = "A" if char != "A" else "B"
    changed = TOKEN[:position] + char + TOKEN[position + 1 :]
    with pytest.raises(StatusListError):
        verify_token(changed, resolver=RESOLVER, now=NOW)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(TOKEN)), st.text(max_size=30), st.booleans())
def test_truncated_and_random_tokens_raise_only_typed_errors(
    cut: int, junk: str, keep: bool
) -> None:
    for text in (TOKEN[:cut], TOKEN[:cut] + junk if keep else junk, junk + TOKEN[cut:]):
        with contextlib.suppress(StatusListError):
            verify_token(text, resolver=RESOLVER, now=NOW)


@settings(max_examples=200)
@given(
    st.dictionaries(st.sampled_from(["sub", "iss", "iat", "exp", "ttl", "status_list"]), _JSON),
    st.dictionaries(st.sampled_from(["typ", "alg", "kid", "crit"]), _JSON, max_size=2),
)
def test_hostile_token_claims_raise_only_typed_errors(
    claims: dict[str, Any], header: dict[str, Any]
) -> None:
    try:
        token = _raw_token({**HEADER, **header}, _payload(**claims))
    except DIDCommError:
        return  # not even signable
    try:
        verified = verify_token(token, resolver=RESOLVER, now=NOW)
    except StatusListError:
        return
    assert verified.issuer == ISSUER and verified.statuses.size >= 1


# -- the BitstringStatusListCredential ------------------------------------------------------------------


def _list_credential(**kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"url": LIST_URL, "issuer": ISSUER, "kid": KID, "key": KEY, "now": NOW}
    args.update(kwargs)
    return sign_list_credential(args.pop("statuses", STATUSES), **args)


def _resigned(change: Any, key: PrivateKey = KEY, kid: str = KID) -> dict[str, Any]:
    """A list credential edited by ``change`` (a function of the unsigned credential), re-signed."""
    unsigned = {k: v for k, v in copy.deepcopy(_list_credential()).items() if k != "proof"}
    change(unsigned)
    return data_integrity.sign_credential(
        unsigned, key=key, verification_method=kid, created="2027-01-15T08:00:00Z"
    )


LIST_CREDENTIAL = _list_credential(expires=NOW + 3600)


def test_list_credential_round_trip() -> None:
    credential = LIST_CREDENTIAL
    assert credential["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert credential["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert (credential["id"], credential["issuer"]) == (LIST_URL, ISSUER)
    assert credential["validFrom"] == "2027-01-15T08:00:00Z"  # NOW
    assert credential["validUntil"] == "2027-01-15T09:00:00Z"
    subject = credential["credentialSubject"]
    assert subject["type"] == "BitstringStatusList"
    assert subject["statusPurpose"] == "revocation"
    assert subject["id"] == f"{LIST_URL}#list"
    assert credential["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert credential["proof"]["proofPurpose"] == "assertionMethod"
    for document in (credential, json_dumps(credential), json_dumps(credential).encode()):
        verified = verify_list_credential(document, resolver=RESOLVER, now=NOW, url=LIST_URL)
        assert (verified.uri, verified.issuer) == (LIST_URL, ISSUER)
        assert (verified.issued_at, verified.expires, verified.ttl) == (NOW, NOW + 3600, None)
        assert verified.statuses == STATUSES
        assert verified.status(3) == REVOKED and verified.status(4) == VALID
    open_ended = verify_list_credential(_list_credential(), resolver=RESOLVER, now=NOW)
    assert open_ended.expires is None


def test_list_credential_minimum_size() -> None:
    with pytest.raises(StatusIndexError):
        _list_credential(statuses=StatusList(LIST_SIZE - 8))
    with pytest.raises(UnsupportedStatusListError):
        _list_credential(statuses=StatusList(LIST_SIZE, bits=2))
    # Reading accepts shorter lists from others.
    short = _resigned(
        lambda c: c["credentialSubject"].update(encodedList=encode_bitstring(StatusList(64)))
    )
    assert verify_list_credential(short, resolver=RESOLVER, now=NOW).statuses.size == 64


def test_list_credential_of_another_issuer() -> None:
    # Claims ISSUER, signed by OTHER: not signed by its issuer.
    forged = _resigned(lambda c: None, key=OTHER_KEY, kid=KID)
    with pytest.raises(StatusListSignatureError):
        verify_list_credential(forged, resolver=RESOLVER, now=NOW)
    # Altered after signing: the signature fails.
    with pytest.raises(StatusListSignatureError):
        verify_list_credential({**LIST_CREDENTIAL, "issuer": OTHER}, resolver=RESOLVER, now=NOW)
    # Names OTHER as issuer, validly signed by ISSUER's key: not signed by its issuer.
    unsigned = {k: v for k, v in LIST_CREDENTIAL.items() if k != "proof"}
    mislabelled = data_integrity.create_proof(
        {**unsigned, "issuer": OTHER},
        key=KEY,
        verification_method=KID,
        created="2027-01-15T08:00:00Z",
    )
    with pytest.raises(StatusListIssuerError):
        verify_list_credential(mislabelled, resolver=RESOLVER, now=NOW)
    # OTHER's list is OTHER's.
    theirs = _list_credential(issuer=OTHER, kid=OTHER_KID, key=OTHER_KEY)
    assert verify_list_credential(theirs, resolver=RESOLVER, now=NOW).issuer == OTHER
    with pytest.raises(StatusListIssuerError):
        _list_credential(kid=OTHER_KID)


def test_list_credential_key_not_assertion_method() -> None:
    credential = _resigned(lambda c: c.update(issuer=AUTH_ONLY), kid=AUTH_ONLY_KID)
    with pytest.raises(StatusListIssuerError, match="assertionMethod"):
        verify_list_credential(credential, resolver=AUTH_ONLY_RESOLVER, now=NOW)
    # A proof made for authentication is no assertion either.
    unsigned = {k: v for k, v in LIST_CREDENTIAL.items() if k != "proof"}
    authentication = data_integrity.sign_credential(
        unsigned,
        key=KEY,
        verification_method=KID,
        created="2027-01-15T08:00:00Z",
        proof_purpose="authentication",
    )
    with pytest.raises(StatusListIssuerError):
        verify_list_credential(authentication, resolver=RESOLVER, now=NOW)


def test_list_credential_for_another_list() -> None:
    with pytest.raises(StatusListMismatchError):
        verify_list_credential(
            LIST_CREDENTIAL, resolver=RESOLVER, now=NOW, url=f"{ISSUER}/status/di/1"
        )


def test_list_credential_times() -> None:
    leeway = status_list.CLOCK_LEEWAY_S
    verify_list_credential(LIST_CREDENTIAL, resolver=RESOLVER, now=NOW + 3600 + leeway - 1)
    with pytest.raises(StatusListExpiredError):
        verify_list_credential(LIST_CREDENTIAL, resolver=RESOLVER, now=NOW + 3600 + leeway)
    verify_list_credential(LIST_CREDENTIAL, resolver=RESOLVER, now=NOW - leeway)
    with pytest.raises(StatusListTimeError):
        verify_list_credential(LIST_CREDENTIAL, resolver=RESOLVER, now=NOW - leeway - 1)
    no_start = _resigned(lambda c: c.pop("validFrom"))
    with pytest.raises(MalformedStatusListError, match="validFrom"):
        verify_list_credential(no_start, resolver=RESOLVER, now=NOW)
    with pytest.raises(StatusListTimeError):
        _list_credential(expires=NOW - 1)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda c: c["credentialSubject"].update(statusPurpose="message"),
            StatusListMismatchError,
        ),
        (lambda c: c["credentialSubject"].update(type="StatusList2021"), MalformedStatusListError),
        (lambda c: c["credentialSubject"].update(statusSize=2), UnsupportedStatusListError),
        (lambda c: c["credentialSubject"].update(ttl=-5), MalformedStatusListError),
        (lambda c: c["credentialSubject"].pop("encodedList"), MalformedStatusListError),
        (lambda c: c.update(credentialSubject=[c["credentialSubject"]]), MalformedStatusListError),
        (lambda c: c.update(type=["VerifiableCredential"]), MalformedStatusListError),
        (lambda c: c.pop("id"), MalformedStatusListError),
    ],
)
def test_list_credential_shape(change: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify_list_credential(_resigned(change), resolver=RESOLVER, now=NOW)


def test_list_credential_ttl_is_reported_in_seconds() -> None:
    credential = _resigned(lambda c: c["credentialSubject"].update(ttl=300_000))
    assert verify_list_credential(credential, resolver=RESOLVER, now=NOW).ttl == 300


def test_list_credential_bomb() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = "u" + b64u_encode(packer.compress(bytes(32 * MAX_LIST_BYTES)) + packer.flush())
    credential = _resigned(lambda c: c["credentialSubject"].update(encodedList=bomb))
    with pytest.raises(StatusListTooLargeError):
        verify_list_credential(credential, resolver=RESOLVER, now=NOW)


LIST_TEXT = json_dumps(LIST_CREDENTIAL)


@settings(max_examples=400)
@given(st.integers(0, len(LIST_TEXT) - 1), st.characters(codec="ascii"))
def test_any_changed_character_of_a_list_credential_is_refused(position: int, char: str) -> None:
    if LIST_TEXT[position] == char:
        char = "A" if char != "A" else "B"
    changed = LIST_TEXT[:position] + char + LIST_TEXT[position + 1 :]
    with pytest.raises(StatusListError):
        verify_list_credential(changed, resolver=RESOLVER, now=NOW)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(LIST_TEXT)), st.text(max_size=30))
def test_truncated_and_random_list_credentials_raise_only_typed_errors(cut: int, junk: str) -> None:
    for text in (LIST_TEXT[:cut], junk, LIST_TEXT[:cut] + junk):
        with contextlib.suppress(StatusListError):
            verify_list_credential(text, resolver=RESOLVER, now=NOW)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(["@context", "id", "type", "issuer", "validFrom", "validUntil", "proof"]),
        _JSON,
        max_size=2,
    ),
    st.dictionaries(
        st.sampled_from(["id", "type", "statusPurpose", "encodedList", "statusSize", "ttl"]),
        _JSON,
        max_size=2,
    ),
    st.booleans(),
)
def test_hostile_list_credentials_raise_only_typed_errors(
    top: dict[str, Any], subject: dict[str, Any], resign: bool
) -> None:
    def change(credential: dict[str, Any]) -> None:
        credential.update({k: v for k, v in top.items() if k != "proof"})
        credential["credentialSubject"] = {**LIST_CREDENTIAL["credentialSubject"], **subject}

    if resign:
        try:
            document = _resigned(change)
        except DIDCommError:
            return  # not even signable
    else:
        document = copy.deepcopy(LIST_CREDENTIAL)
        document.update(top)
        document["credentialSubject"] = {**document["credentialSubject"], **subject}
    with contextlib.suppress(StatusListError):
        verify_list_credential(document, resolver=RESOLVER, now=NOW)


@settings(max_examples=100)
@given(_JSON)
def test_any_json_as_a_list_credential_raises_only_typed_errors(junk: Any) -> None:
    with pytest.raises(StatusListError):
        verify_list_credential(junk, resolver=RESOLVER, now=NOW)


# -- errors ------------------------------------------------------------------------------------------------


def test_every_status_list_error_is_a_typed_credential_error_with_a_problem_code() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, StatusListError)
    ]
    assert len(classes) >= 9
    codes = {cls.problem_code for cls in classes}
    assert len(codes) == len(classes)
    for cls in classes:
        assert issubclass(cls, errors.CredentialError)
        assert cls.problem_code.startswith("e.p.credential.status")
        assert is_valid_code(cls.problem_code)


def test_verify_status_list_takes_either_kind() -> None:
    token = verify_status_list(TOKEN, resolver=RESOLVER, now=NOW, uri=TOKEN_URI)
    assert token.uri == TOKEN_URI and token.statuses == STATUSES
    for document in (LIST_CREDENTIAL, LIST_TEXT, LIST_TEXT.encode()):
        verified = verify_status_list(document, resolver=RESOLVER, now=NOW, uri=LIST_URL)
        assert verified.uri == LIST_URL and verified.statuses == STATUSES
    with pytest.raises(StatusListMismatchError):
        verify_status_list(TOKEN, resolver=RESOLVER, now=NOW, uri=LIST_URL)
    with pytest.raises(MalformedStatusListError):
        verify_status_list(b"\xff", resolver=RESOLVER, now=NOW)
    with pytest.raises(MalformedStatusListError):
        verify_status_list(None, resolver=RESOLVER, now=NOW)


def test_expected_issuer() -> None:
    # OTHER may sign a list that names ISSUER's URI: it verifies, as OTHER's, and is
    # refused when the caller says whose list it must be (the credential's issuer).
    token = _token(issuer=OTHER, kid=OTHER_KID, key=OTHER_KEY)
    assert verify_token(token, resolver=RESOLVER, now=NOW, uri=TOKEN_URI).issuer == OTHER
    with pytest.raises(StatusListIssuerError):
        verify_token(token, resolver=RESOLVER, now=NOW, uri=TOKEN_URI, issuer=ISSUER)
    assert verify_token(TOKEN, resolver=RESOLVER, now=NOW, issuer=ISSUER).issuer == ISSUER
    credential = _list_credential(issuer=OTHER, kid=OTHER_KID, key=OTHER_KEY)
    with pytest.raises(StatusListIssuerError):
        verify_list_credential(credential, resolver=RESOLVER, now=NOW, issuer=ISSUER)
    with pytest.raises(StatusListIssuerError):
        verify_status_list(credential, resolver=RESOLVER, now=NOW, issuer=ISSUER)
    with pytest.raises(StatusListIssuerError):
        verify_status_list(token, resolver=RESOLVER, now=NOW, issuer=ISSUER)
    verify_status_list(LIST_CREDENTIAL, resolver=RESOLVER, now=NOW, issuer=ISSUER)

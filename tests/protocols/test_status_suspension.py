"""Suspension in both status list standards (:mod:`protocols.status_list`).

A Token Status List says "suspended" in the entry (2, in lists of 2 bits or more); a
Bitstring Status List has a list per purpose, and a credential that can be suspended
names an entry in a ``suspension`` list too.  An issuer keeps one 0/1/2 array, widens
an old 1-bit one without changing any entry, and publishes each purpose as a view of
it; these tests hold the two packings (entry 0 in the low bits of a token's bytes, in
the high bit of a bitstring's) and the two purposes to the specs.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import status_exchange, status_list
from protocols.codec import b64u_decode
from protocols.errors import (
    MalformedStatusListError,
    StatusIndexError,
    StatusListError,
    StatusListMismatchError,
    UnsupportedStatusListError,
)
from protocols.status_list import (
    ISSUED_BITS,
    LIST_SIZE,
    PURPOSE_REVOCATION,
    PURPOSE_SUSPENSION,
    REVOKED,
    SUSPENDED,
    VALID,
    StatusList,
    StatusReference,
    bitstring_entry,
    decode_bitstring,
    read_credential_status,
    read_references,
    sign_list_credential,
    sign_token,
    verify_list_credential,
    verify_status_list,
    verify_token,
)
from tests.protocols.test_status_list import ISSUER, KEY, KID, NOW, RESOLVER

DI_URL = f"{ISSUER}/status/di/0"
SUSPENSION_URL = f"{ISSUER}/status/di-suspension/0"
TOKEN_URI = f"{ISSUER}/status/sd-jwt/0"

# Lists of a few hundred entries: every packing boundary, quickly.
_SIZES = st.integers(1, 300)


@st.composite
def _lists(draw: Any, bits: int = 2, values: tuple[int, ...] = (VALID, REVOKED, SUSPENDED)) -> StatusList:
    size = draw(_SIZES)
    statuses = StatusList(size, bits=bits)
    for index, value in draw(st.dictionaries(st.integers(0, size - 1), st.sampled_from(values), max_size=40)).items():
        statuses.set(index, value)
    return statuses


# -- the array: widening and purpose views -------------------------------------------------------


@settings(max_examples=200)
@given(_lists(bits=1, values=(VALID, REVOKED)), st.sampled_from([1, 2, 4, 8]))
def test_widening_keeps_every_entry(statuses: StatusList, bits: int) -> None:
    wide = statuses.widened(bits)
    assert (wide.size, wide.bits) == (statuses.size, bits)
    assert [wide.get(i) for i in range(wide.size)] == [statuses.get(i) for i in range(statuses.size)]
    # A revoked entry can now be suspended, and its neighbours stay as they were.
    if bits >= 2:
        wide.set(0, SUSPENDED)
        assert wide.get(0) == SUSPENDED
        assert [wide.get(i) for i in range(1, wide.size)] == [statuses.get(i) for i in range(1, statuses.size)]


def test_widening_packs_as_the_draft_does() -> None:
    # The draft's 1-bit example, widened: the 2-bit packing of the same values.
    values = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    narrow = StatusList.from_bytes(bytes([0xB9, 0xA3]), bits=1)
    expected = StatusList(16, bits=2)
    for index, value in enumerate(values):
        expected.set(index, value)
    assert narrow.widened(2) == expected
    # Entries 0 to 3 (1, 0, 0, 1) in byte 0, entry 0 in its two low bits (Token Status List packing).
    assert expected.to_bytes()[0] == 0b01_00_00_01
    with pytest.raises(UnsupportedStatusListError):
        expected.widened(1)
    with pytest.raises(UnsupportedStatusListError):
        narrow.widened(3)


@settings(max_examples=200)
@given(_lists(), st.sampled_from([REVOKED, SUSPENDED, 3, 9]))
def test_a_purpose_view_sets_exactly_the_entries_of_its_value(statuses: StatusList, value: int) -> None:
    view = statuses.where(value)
    assert (view.size, view.bits) == (statuses.size, 1)
    assert [view.get(i) for i in range(view.size)] == [int(statuses.get(i) == value) for i in range(statuses.size)]


def test_a_view_of_value_0_or_of_junk_is_refused() -> None:
    for bad in (0, -1, True, "2", None):
        with pytest.raises(StatusIndexError):
            StatusList(8, bits=2).where(bad)  # type: ignore[arg-type]


def test_from_bytes_with_a_size_checks_the_length() -> None:
    assert StatusList.from_bytes(bytes(3), bits=2, size=10).size == 10
    with pytest.raises(MalformedStatusListError):
        StatusList.from_bytes(bytes(4), bits=2, size=10)


# -- both bit orders, one array ----------------------------------------------------------------------


def _token_bytes(token: str) -> bytes:
    payload: dict[str, Any] = __import__("json").loads(b64u_decode(token.split(".")[1]))
    assert payload["status_list"]["bits"] == ISSUED_BITS
    return zlib.decompress(b64u_decode(payload["status_list"]["lst"]))


def _bitstring_bytes(document: dict[str, Any]) -> bytes:
    return gzip.decompress(b64u_decode(document["credentialSubject"]["encodedList"][1:]))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(0, LIST_SIZE - 1), st.sampled_from([REVOKED, SUSPENDED]), max_size=12))
def test_one_array_in_both_packings(entries: dict[int, int]) -> None:
    array = StatusList(bits=ISSUED_BITS)
    for index, value in entries.items():
        array.set(index, value)
    token = sign_token(array, uri=TOKEN_URI, issuer=ISSUER, kid=KID, key=KEY, now=NOW)
    raw = _token_bytes(token)
    revocation = sign_list_credential(array.where(REVOKED), url=DI_URL, issuer=ISSUER, kid=KID, key=KEY, now=NOW)
    suspension = sign_list_credential(array.where(SUSPENDED), url=SUSPENSION_URL, issuer=ISSUER, kid=KID,
                                      key=KEY, now=NOW, purpose=PURPOSE_SUSPENSION)
    revoked_bits, suspended_bits = _bitstring_bytes(revocation), _bitstring_bytes(suspension)
    assert len(raw) == LIST_SIZE * 2 // 8 and len(revoked_bits) == len(suspended_bits) == LIST_SIZE // 8
    for index in {*entries, 0, LIST_SIZE - 1}:
        value = entries.get(index, VALID)
        # Token Status List: entry i in bits 2i..2i+1, counted from the low bit of byte 0.
        assert (raw[index * 2 // 8] >> (index * 2 % 8)) & 3 == value
        # Bitstring Status List: entry i is bit i counted from the high bit of byte 0.
        assert (revoked_bits[index // 8] >> (7 - index % 8)) & 1 == (value == REVOKED)
        assert (suspended_bits[index // 8] >> (7 - index % 8)) & 1 == (value == SUSPENDED)
    # Read back, each speaks the token vocabulary.
    by_token = verify_token(token, resolver=RESOLVER, now=NOW, uri=TOKEN_URI)
    by_revocation = verify_list_credential(revocation, resolver=RESOLVER, now=NOW, url=DI_URL,
                                           purpose=PURPOSE_REVOCATION)
    by_suspension = verify_list_credential(suspension, resolver=RESOLVER, now=NOW, url=SUSPENSION_URL,
                                           purpose=PURPOSE_SUSPENSION)
    assert by_token.purpose is None and by_revocation.purpose == PURPOSE_REVOCATION
    for index, value in entries.items():
        assert by_token.status(index) == value
        assert by_revocation.status(index) == (REVOKED if value == REVOKED else VALID)
        assert by_suspension.status(index) == (SUSPENDED if value == SUSPENDED else VALID)


def test_a_widened_list_is_signed_with_2_bits_and_read_the_same() -> None:
    old = StatusList(bits=1)
    old.set(5, REVOKED)
    assert verify_token(sign_token(old, uri=TOKEN_URI, issuer=ISSUER, kid=KID, key=KEY, now=NOW),
                        resolver=RESOLVER, now=NOW).statuses.bits == 1
    wide = old.widened(ISSUED_BITS)
    wide.set(6, SUSPENDED)
    read = verify_token(sign_token(wide, uri=TOKEN_URI, issuer=ISSUER, kid=KID, key=KEY, now=NOW + 1),
                        resolver=RESOLVER, now=NOW + 1)
    assert read.statuses.bits == 2 and (read.status(5), read.status(6), read.status(7)) == (REVOKED, SUSPENDED, VALID)


# -- the suspension purpose -------------------------------------------------------------------------


def test_a_suspension_list_credential_says_its_purpose_and_is_read_only_for_it() -> None:
    statuses = StatusList()
    statuses.set(9, 1)
    document = sign_list_credential(statuses, url=SUSPENSION_URL, issuer=ISSUER, kid=KID, key=KEY, now=NOW,
                                    purpose=PURPOSE_SUSPENSION)
    assert document["credentialSubject"]["statusPurpose"] == "suspension"
    assert decode_bitstring(document["credentialSubject"]["encodedList"]).get(9) == 1
    verified = verify_status_list(document, resolver=RESOLVER, now=NOW, uri=SUSPENSION_URL)
    assert (verified.purpose, verified.status(9), verified.status(8)) == (PURPOSE_SUSPENSION, SUSPENDED, VALID)
    # The spec: an entry's purpose and its list's must match.
    with pytest.raises(StatusListMismatchError):
        verify_status_list(document, resolver=RESOLVER, now=NOW, purpose=PURPOSE_REVOCATION)
    with pytest.raises(StatusListMismatchError):
        status_exchange.find_list([document], resolver=RESOLVER, now=NOW, uri=SUSPENSION_URL, issuer=ISSUER,
                                  kind=status_exchange.FORMAT_BITSTRING, purpose=PURPOSE_REVOCATION)
    found = status_exchange.find_list([document], resolver=RESOLVER, now=NOW, uri=SUSPENSION_URL, issuer=ISSUER,
                                      kind=status_exchange.FORMAT_BITSTRING, purpose=PURPOSE_SUSPENSION)
    assert found is not None and found[0].status(9) == SUSPENDED
    with pytest.raises(StatusListMismatchError):
        sign_list_credential(statuses, url=DI_URL, issuer=ISSUER, kid=KID, key=KEY, now=NOW, purpose="message")


def test_a_credential_status_of_two_entries_is_read_revocation_first() -> None:
    revocation = bitstring_entry(DI_URL, 7)
    suspension = bitstring_entry(SUSPENSION_URL, 7, PURPOSE_SUSPENSION)
    assert suspension["statusPurpose"] == "suspension" and suspension["id"] == f"{SUSPENSION_URL}#7"
    both = [StatusReference(DI_URL, 7, PURPOSE_REVOCATION), StatusReference(SUSPENSION_URL, 7, PURPOSE_SUSPENSION)]
    assert read_credential_status([suspension, revocation]) == both
    assert read_credential_status(revocation) == both[:1]
    assert read_references([revocation, suspension], bitstring=True) == both
    assert read_references({"status_list": {"idx": 3, "uri": TOKEN_URI}}, bitstring=False) == [
        StatusReference(TOKEN_URI, 3, None)]


@pytest.mark.parametrize(
    "value",
    [
        [],
        [bitstring_entry(DI_URL, 1), bitstring_entry(DI_URL, 2)],  # two of one purpose
        [bitstring_entry(DI_URL, 1), bitstring_entry(SUSPENSION_URL, 1, PURPOSE_SUSPENSION),
         bitstring_entry(DI_URL, 3)],  # more than MAX_STATUS_ENTRIES
        [bitstring_entry(DI_URL, 1), {**bitstring_entry(SUSPENSION_URL, 1), "statusPurpose": "message"}],
        [bitstring_entry(DI_URL, 1), "x"],
        [[bitstring_entry(DI_URL, 1)]],
    ],
)
def test_bad_credential_statuses(value: Any) -> None:
    with pytest.raises(StatusListError):
        read_credential_status(value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=16), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.lists(st.one_of(_JSON, st.sampled_from([bitstring_entry(DI_URL, 1),
                                                   bitstring_entry(SUSPENSION_URL, 2, PURPOSE_SUSPENSION)])),
                max_size=4) | _JSON)
def test_reading_a_credential_status_raises_only_typed_errors(value: Any) -> None:
    try:
        references = read_credential_status(value)
    except StatusListError:
        return
    assert 1 <= len(references) <= status_list.MAX_STATUS_ENTRIES
    assert len({r.purpose for r in references}) == len(references)
    assert references[0].purpose == PURPOSE_REVOCATION or len(references) == 1

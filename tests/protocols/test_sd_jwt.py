"""SD-JWT VC (RFC 9901 + draft-ietf-oauth-sd-jwt-vc): the RFC's vectors, issue ->
present -> verify, and every way a credential or presentation is refused.

The RFC vectors are the published examples (section 4.2 Disclosures and digests,
section 5.1/5.2 issuance and presentation, appendix A.1 nested object with decoys);
their ES256 signatures verify with the issuer and holder keys the RFC publishes
(examples/settings.yml of the draft repository), which is what authenticates the
transcription.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protocols import errors, sd_jwt
from protocols.codec import b64u_decode, b64u_encode, json_bytes
from protocols.did.did_key import create_did_key
from protocols.did.resolver import default_resolver
from protocols.errors import (
    CredentialClaimError,
    CredentialError,
    CredentialExpiredError,
    CredentialIssuerError,
    CredentialNotYetValidError,
    CredentialSignatureError,
    CredentialTooLargeError,
    DisclosureMismatchError,
    HolderKeyMismatchError,
    KeyBindingAudienceError,
    KeyBindingError,
    KeyBindingNonceError,
    KeyBindingTimeError,
    MalformedCredentialError,
    UnsupportedCredentialError,
)
from protocols.keys import PrivateKey, PublicKey
from protocols.report_problem import is_valid_code
from protocols.sd_jwt import digest, disclosable_claims, issue, parse, present, verify

# -- RFC 9901 vectors ----------------------------------------------------------------

RFC_ISSUER_KEY = PublicKey.from_jwk(
    {
        "kty": "EC",
        "crv": "P-256",
        "x": "b28d4MwZMjw8-00CG4xfnn9SLMVMM19SlqZpVb_uNtQ",
        "y": "Xv5zWwuoaTgdS6hV43yI6gBwTnjukmFQQnJ_kCxzqk8",
    }
)
RFC_HOLDER_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc",
    "y": "ZxjiWWbZMQGHVWKVQ4hbSIirsVfuecCE6t4jT9F2HZQ",
}
#: The holder's private key, published with the examples (it signs the KB-JWTs).
RFC_HOLDER = PrivateKey.from_jwk(
    {**RFC_HOLDER_JWK, "d": "5K5SCos8zf9zRemGGUl6yfok-_NiiryNZsvANWMhF-I"}
)
RFC_VERIFIER = "https://verifier.example.org"
RFC_NONCE = "1234567890"
#: The KB-JWT of section 5.2 was made at 1748537244; the issuer JWT expires 1883000000.
RFC_NOW = 1748537244 + 30

#: Section 4.2.1: the family_name Disclosure and (4.2.3) its digest.
MOBIUS = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
MOBIUS_DIGEST = "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"
#: The same claim encoded three other ways (each its own digest).
MOBIUS_VARIANTS = (
    "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNXHUwMGY2Yml1cyJd",
    "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsImZhbWlseV9uYW1lIiwiTcO2Yml1cyJd",
    "WwoiXzI2YmM0TFQtYWM2cTJLSTZjQlc1ZXMiLAoiZmFtaWx5X25hbWUiLAoiTcO2Yml1cyIKXQ",
)
#: Section 4.2.2 / 4.2.4.2: an array-element Disclosure and its digest.
FR = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0"
FR_DIGEST = "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"
#: Section 5.1: each Disclosure of the example with its digest.
SECTION_5_1_DIGESTS = {
    "WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3IiwgImdpdmVuX25hbWUiLCAiSm9obiJd": (
        "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4"
    ),
    "WyJlbHVWNU9nM2dTTklJOEVZbnN4QV9BIiwgImZhbWlseV9uYW1lIiwgIkRvZSJd": (
        "TGf4oLbgwd5JQaHyKVQZU9UdGE0w5rtDsrZzfUaomLo"
    ),
    "WyI2SWo3dE0tYTVpVlBHYm9TNXRtdlZBIiwgImVtYWlsIiwgImpvaG5kb2VAZXhhbXBsZS5jb20iXQ": (
        "JzYjH4svliH0R3PyEMfeZu6Jt69u5qehZo7F7EPYlSE"
    ),
    "WyJlSThaV205UW5LUHBOUGVOZW5IZGhRIiwgInBob25lX251bWJlciIsICIrMS0yMDItNTU1LTAxMDEiXQ": (
        "PorFbpKuVu6xymJagvkFsFXAbRoc2JGlAUA2BA4o7cI"
    ),
    "WyJRZ19PNjR6cUF4ZTQxMmExMDhpcm9BIiwgInBob25lX251bWJlcl92ZXJpZmllZCIsIHRydWVd": (
        "XQ_3kPKt1XyX7KANkqVR6yZ2Va5NrPIvPYbyMvRKBMM"
    ),
    "WyJBSngtMDk1VlBycFR0TjRRTU9xUk9BIiwgImFkZHJlc3MiLCB7InN0cmVldF9hZGRyZXNzIjogIjEyMyBNYWlu"
    "IFN0IiwgImxvY2FsaXR5IjogIkFueXRvd24iLCAicmVnaW9uIjogIkFueXN0YXRlIiwgImNvdW50cnkiOiAiVVMifV0": (
        "XzFrzwscM6Gn6CJDc6vVK8BkMnfG8vOSKfpPIZdAfdE"
    ),
    "WyJQYzMzSk0yTGNoY1VfbEhnZ3ZfdWZRIiwgImJpcnRoZGF0ZSIsICIxOTQwLTAxLTAxIl0": (
        "gbOsI4Edq2x2Kw-w5wPEzakob9hV1cRD0ATN3oQL9JM"
    ),
    "WyJHMDJOU3JRZmpGWFE3SW8wOXN5YWpBIiwgInVwZGF0ZWRfYXQiLCAxNTcwMDAwMDAwXQ": (
        "CrQe7S5kqBAHt-nMYXgc6bdt2SH5aTY1sU_M-PgkjPI"
    ),
    "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIlVTIl0": "pFndjkZ_VCzmyTa6UjlZo3dh-ko8aIKQc9DlGzhaVYo",
    "WyJuUHVvUW5rUkZxM0JJZUFtN0FuWEZBIiwgIkRFIl0": "7Cf6JkPudry3lcbwHgeZ8khAv1U1OSlerP0VkBJrWZ0",
}
#: Section 5.1: the issued SD-JWT (all ten Disclosures).
ISSUANCE_5_1 = (
    "eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImV4YW1wbGUrc2Qtand0In0.eyJfc2QiOiBbIkNyUWU3UzVrcUJBSHQtbk1ZWGdj"
    "NmJkdDJTSDVhVFkxc1VfTS1QZ2tqUEkiLCAiSnpZakg0c3ZsaUgwUjNQeUVNZmVadTZKdDY5dTVxZWhabzdGN0VQWWxTRSIs"
    "ICJQb3JGYnBLdVZ1Nnh5bUphZ3ZrRnNGWEFiUm9jMkpHbEFVQTJCQTRvN2NJIiwgIlRHZjRvTGJnd2Q1SlFhSHlLVlFaVTlV"
    "ZEdFMHc1cnREc3JaemZVYW9tTG8iLCAiWFFfM2tQS3QxWHlYN0tBTmtxVlI2eVoyVmE1TnJQSXZQWWJ5TXZSS0JNTSIsICJY"
    "ekZyendzY002R242Q0pEYzZ2Vks4QmtNbmZHOHZPU0tmcFBJWmRBZmRFIiwgImdiT3NJNEVkcTJ4Mkt3LXc1d1BFemFrb2I5"
    "aFYxY1JEMEFUTjNvUUw5Sk0iLCAianN1OXlWdWx3UVFsaEZsTV8zSmx6TWFTRnpnbGhRRzBEcGZheVF3TFVLNCJdLCAiaXNz"
    "IjogImh0dHBzOi8vaXNzdWVyLmV4YW1wbGUuY29tIiwgImlhdCI6IDE2ODMwMDAwMDAsICJleHAiOiAxODgzMDAwMDAwLCAi"
    "c3ViIjogInVzZXJfNDIiLCAibmF0aW9uYWxpdGllcyI6IFt7Ii4uLiI6ICJwRm5kamtaX1ZDem15VGE2VWpsWm8zZGgta284"
    "YUlLUWM5RGxHemhhVllvIn0sIHsiLi4uIjogIjdDZjZKa1B1ZHJ5M2xjYndIZ2VaOGtoQXYxVTFPU2xlclAwVmtCSnJXWjAi"
    "fV0sICJfc2RfYWxnIjogInNoYS0yNTYiLCAiY25mIjogeyJqd2siOiB7Imt0eSI6ICJFQyIsICJjcnYiOiAiUC0yNTYiLCAi"
    "eCI6ICJUQ0FFUjE5WnZ1M09IRjRqNFc0dmZTVm9ISVAxSUxpbERsczd2Q2VHZW1jIiwgInkiOiAiWnhqaVdXYlpNUUdIVldL"
    "VlE0aGJTSWlyc1ZmdWVjQ0U2dDRqVDlGMkhaUSJ9fX0.MczwjBFGtzf-6WMT-hIvYbkb11NrV1WMO-jTijpMPNbswNzZ87wY"
    "2uHz-CXo6R04b7jYrpj9mNRAvVssXou1iw~WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3IiwgImdpdmVuX25hbWUiLCAiSm9ob"
    "iJd~WyJlbHVWNU9nM2dTTklJOEVZbnN4QV9BIiwgImZhbWlseV9uYW1lIiwgIkRvZSJd~WyI2SWo3dE0tYTVpVlBHYm9TNXR"
    "tdlZBIiwgImVtYWlsIiwgImpvaG5kb2VAZXhhbXBsZS5jb20iXQ~WyJlSThaV205UW5LUHBOUGVOZW5IZGhRIiwgInBob25l"
    "X251bWJlciIsICIrMS0yMDItNTU1LTAxMDEiXQ~WyJRZ19PNjR6cUF4ZTQxMmExMDhpcm9BIiwgInBob25lX251bWJlcl92Z"
    "XJpZmllZCIsIHRydWVd~WyJBSngtMDk1VlBycFR0TjRRTU9xUk9BIiwgImFkZHJlc3MiLCB7InN0cmVldF9hZGRyZXNzIjog"
    "IjEyMyBNYWluIFN0IiwgImxvY2FsaXR5IjogIkFueXRvd24iLCAicmVnaW9uIjogIkFueXN0YXRlIiwgImNvdW50cnkiOiAi"
    "VVMifV0~WyJQYzMzSk0yTGNoY1VfbEhnZ3ZfdWZRIiwgImJpcnRoZGF0ZSIsICIxOTQwLTAxLTAxIl0~WyJHMDJOU3JRZmpG"
    "WFE3SW8wOXN5YWpBIiwgInVwZGF0ZWRfYXQiLCAxNTcwMDAwMDAwXQ~WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIlVTI"
    "l0~WyJuUHVvUW5rUkZxM0JJZUFtN0FuWEZBIiwgIkRFIl0~"
)
#: Section 5.2: the SD-JWT+KB (four Disclosures and a KB-JWT).
PRESENTATION_5_2 = (
    "eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImV4YW1wbGUrc2Qtand0In0.eyJfc2QiOiBbIkNyUWU3UzVrcUJBSHQtbk1ZWGdj"
    "NmJkdDJTSDVhVFkxc1VfTS1QZ2tqUEkiLCAiSnpZakg0c3ZsaUgwUjNQeUVNZmVadTZKdDY5dTVxZWhabzdGN0VQWWxTRSIs"
    "ICJQb3JGYnBLdVZ1Nnh5bUphZ3ZrRnNGWEFiUm9jMkpHbEFVQTJCQTRvN2NJIiwgIlRHZjRvTGJnd2Q1SlFhSHlLVlFaVTlV"
    "ZEdFMHc1cnREc3JaemZVYW9tTG8iLCAiWFFfM2tQS3QxWHlYN0tBTmtxVlI2eVoyVmE1TnJQSXZQWWJ5TXZSS0JNTSIsICJY"
    "ekZyendzY002R242Q0pEYzZ2Vks4QmtNbmZHOHZPU0tmcFBJWmRBZmRFIiwgImdiT3NJNEVkcTJ4Mkt3LXc1d1BFemFrb2I5"
    "aFYxY1JEMEFUTjNvUUw5Sk0iLCAianN1OXlWdWx3UVFsaEZsTV8zSmx6TWFTRnpnbGhRRzBEcGZheVF3TFVLNCJdLCAiaXNz"
    "IjogImh0dHBzOi8vaXNzdWVyLmV4YW1wbGUuY29tIiwgImlhdCI6IDE2ODMwMDAwMDAsICJleHAiOiAxODgzMDAwMDAwLCAi"
    "c3ViIjogInVzZXJfNDIiLCAibmF0aW9uYWxpdGllcyI6IFt7Ii4uLiI6ICJwRm5kamtaX1ZDem15VGE2VWpsWm8zZGgta284"
    "YUlLUWM5RGxHemhhVllvIn0sIHsiLi4uIjogIjdDZjZKa1B1ZHJ5M2xjYndIZ2VaOGtoQXYxVTFPU2xlclAwVmtCSnJXWjAi"
    "fV0sICJfc2RfYWxnIjogInNoYS0yNTYiLCAiY25mIjogeyJqd2siOiB7Imt0eSI6ICJFQyIsICJjcnYiOiAiUC0yNTYiLCAi"
    "eCI6ICJUQ0FFUjE5WnZ1M09IRjRqNFc0dmZTVm9ISVAxSUxpbERsczd2Q2VHZW1jIiwgInkiOiAiWnhqaVdXYlpNUUdIVldL"
    "VlE0aGJTSWlyc1ZmdWVjQ0U2dDRqVDlGMkhaUSJ9fX0.MczwjBFGtzf-6WMT-hIvYbkb11NrV1WMO-jTijpMPNbswNzZ87wY"
    "2uHz-CXo6R04b7jYrpj9mNRAvVssXou1iw~WyJlbHVWNU9nM2dTTklJOEVZbnN4QV9BIiwgImZhbWlseV9uYW1lIiwgIkRvZ"
    "SJd~WyJBSngtMDk1VlBycFR0TjRRTU9xUk9BIiwgImFkZHJlc3MiLCB7InN0cmVldF9hZGRyZXNzIjogIjEyMyBNYWluIFN0"
    "IiwgImxvY2FsaXR5IjogIkFueXRvd24iLCAicmVnaW9uIjogIkFueXN0YXRlIiwgImNvdW50cnkiOiAiVVMifV0~WyIyR0xD"
    "NDJzS1F2ZUNmR2ZyeU5STjl3IiwgImdpdmVuX25hbWUiLCAiSm9obiJd~WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIlV"
    "TIl0~eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImtiK2p3dCJ9.eyJub25jZSI6ICIxMjM0NTY3ODkwIiwgImF1ZCI6ICJodH"
    "RwczovL3ZlcmlmaWVyLmV4YW1wbGUub3JnIiwgImlhdCI6IDE3NDg1MzcyNDQsICJzZF9oYXNoIjogIjBfQWYtMkItRWhMV1"
    "g1eWRoX3cyeHp3bU82aU02NkJfMlFDRWFuSTRmVVkifQ.T3SIus2OidNl41nmVkTZVCKKhOAX97aOldMyHFiYjHm261eLiJ1"
    "YiuONFiMN8QlCmYzDlBLAdPvrXh52KaLgUQ"
)
#: Appendix A.1: a structured address (nested _sd with decoys), region and country shown.
PRESENTATION_A_1 = (
    "eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImV4YW1wbGUrc2Qtand0In0.eyJfc2QiOiBbIkM5aW5wNllvUmFFWFI0Mjd6WUpQ"
    "N1FyazFXSF84YmR3T0FfWVVyVW5HUVUiLCAiS3VldDF5QWEwSElRdlluT1ZkNTloY1ZpTzlVZzZKMmtTZnFZUkJlb3d2RSIs"
    "ICJNTWxkT0ZGekIyZDB1bWxtcFRJYUdlcmhXZFVfUHBZZkx2S2hoX2ZfOWFZIiwgIlg2WkFZT0lJMnZQTjQwVjd4RXhad1Z3"
    "ejd5Um1MTmNWd3Q1REw4Ukx2NGciLCAiWTM0em1JbzBRTExPdGRNcFhHd2pCZ0x2cjE3eUVoaFlUMEZHb2ZSLWFJRSIsICJm"
    "eUdwMFdUd3dQdjJKRFFsbjFsU2lhZW9iWnNNV0ExMGJRNTk4OS05RFRzIiwgIm9tbUZBaWNWVDhMR0hDQjB1eXd4N2ZZdW8z"
    "TUhZS08xNWN6LVJaRVlNNVEiLCAiczBCS1lzTFd4UVFlVTh0VmxsdE03TUtzSVJUckVJYTFQa0ptcXhCQmY1VSJdLCAiaXNz"
    "IjogImh0dHBzOi8vaXNzdWVyLmV4YW1wbGUuY29tIiwgImlhdCI6IDE2ODMwMDAwMDAsICJleHAiOiAxODgzMDAwMDAwLCAi"
    "YWRkcmVzcyI6IHsiX3NkIjogWyI2YVVoelloWjdTSjFrVm1hZ1FBTzN1MkVUTjJDQzFhSGhlWnBLbmFGMF9FIiwgIkF6TGxG"
    "b2JrSjJ4aWF1cFJFUHlvSnotOS1OU2xkQjZDZ2pyN2ZVeW9IemciLCAiUHp6Y1Z1MHFiTXVCR1NqdWxmZXd6a2VzRDl6dXRP"
    "RXhuNUVXTndrclEtayIsICJiMkRrdzBqY0lGOXJHZzhfUEY4WmN2bmNXN3p3Wmo1cnlCV3ZYZnJwemVrIiwgImNQWUpISVo4"
    "VnUtZjlDQ3lWdWIyVWZnRWs4anZ2WGV6d0sxcF9KbmVlWFEiLCAiZ2xUM2hyU1U3ZlNXZ3dGNVVEWm1Xd0JUdzMyZ25VbGRJ"
    "aGk4aEdWQ2FWNCIsICJydkpkNmlxNlQ1ZWptc0JNb0d3dU5YaDlxQUFGQVRBY2k0MG9pZEVlVnNBIiwgInVOSG9XWWhYc1po"
    "VkpDTkUyRHF5LXpxdDd0NjlnSkt5NVFhRnY3R3JNWDQiXX0sICJfc2RfYWxnIjogInNoYS0yNTYifQ.EOZa2YqK8j4i7cqBD"
    "kfPcTMaFsgPwcx3aYJkFoMfvV46LxL-PPqrWsIyNukB4x8Y2LT31eIHDc4Wg4XNzaqu4w~WyJHMDJOU3JRZmpGWFE3SW8wOX"
    "N5YWpBIiwgInJlZ2lvbiIsICJcdTZlMmZcdTUzM2EiXQ~WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgImNvdW50cnkiLCA"
    "iSlAiXQ~"
)
#: Appendix A.1: the same issuer JWT with every Disclosure the appendix lists.
ISSUANCE_A_1 = (
    "eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImV4YW1wbGUrc2Qtand0In0.eyJfc2QiOiBbIkM5aW5wNllvUmFFWFI0Mjd6WUpQ"
    "N1FyazFXSF84YmR3T0FfWVVyVW5HUVUiLCAiS3VldDF5QWEwSElRdlluT1ZkNTloY1ZpTzlVZzZKMmtTZnFZUkJlb3d2RSIs"
    "ICJNTWxkT0ZGekIyZDB1bWxtcFRJYUdlcmhXZFVfUHBZZkx2S2hoX2ZfOWFZIiwgIlg2WkFZT0lJMnZQTjQwVjd4RXhad1Z3"
    "ejd5Um1MTmNWd3Q1REw4Ukx2NGciLCAiWTM0em1JbzBRTExPdGRNcFhHd2pCZ0x2cjE3eUVoaFlUMEZHb2ZSLWFJRSIsICJm"
    "eUdwMFdUd3dQdjJKRFFsbjFsU2lhZW9iWnNNV0ExMGJRNTk4OS05RFRzIiwgIm9tbUZBaWNWVDhMR0hDQjB1eXd4N2ZZdW8z"
    "TUhZS08xNWN6LVJaRVlNNVEiLCAiczBCS1lzTFd4UVFlVTh0VmxsdE03TUtzSVJUckVJYTFQa0ptcXhCQmY1VSJdLCAiaXNz"
    "IjogImh0dHBzOi8vaXNzdWVyLmV4YW1wbGUuY29tIiwgImlhdCI6IDE2ODMwMDAwMDAsICJleHAiOiAxODgzMDAwMDAwLCAi"
    "YWRkcmVzcyI6IHsiX3NkIjogWyI2YVVoelloWjdTSjFrVm1hZ1FBTzN1MkVUTjJDQzFhSGhlWnBLbmFGMF9FIiwgIkF6TGxG"
    "b2JrSjJ4aWF1cFJFUHlvSnotOS1OU2xkQjZDZ2pyN2ZVeW9IemciLCAiUHp6Y1Z1MHFiTXVCR1NqdWxmZXd6a2VzRDl6dXRP"
    "RXhuNUVXTndrclEtayIsICJiMkRrdzBqY0lGOXJHZzhfUEY4WmN2bmNXN3p3Wmo1cnlCV3ZYZnJwemVrIiwgImNQWUpISVo4"
    "VnUtZjlDQ3lWdWIyVWZnRWs4anZ2WGV6d0sxcF9KbmVlWFEiLCAiZ2xUM2hyU1U3ZlNXZ3dGNVVEWm1Xd0JUdzMyZ25VbGRJ"
    "aGk4aEdWQ2FWNCIsICJydkpkNmlxNlQ1ZWptc0JNb0d3dU5YaDlxQUFGQVRBY2k0MG9pZEVlVnNBIiwgInVOSG9XWWhYc1po"
    "VkpDTkUyRHF5LXpxdDd0NjlnSkt5NVFhRnY3R3JNWDQiXX0sICJfc2RfYWxnIjogInNoYS0yNTYifQ.EOZa2YqK8j4i7cqBD"
    "kfPcTMaFsgPwcx3aYJkFoMfvV46LxL-PPqrWsIyNukB4x8Y2LT31eIHDc4Wg4XNzaqu4w~WyIyR0xDNDJzS1F2ZUNmR2ZyeU"
    "5STjl3IiwgInN1YiIsICI2YzVjMGE0OS1iNTg5LTQzMWQtYmFlNy0yMTkxMjJhOWVjMmMiXQ~WyJlbHVWNU9nM2dTTklJOEV"
    "ZbnN4QV9BIiwgImdpdmVuX25hbWUiLCAiXHU1OTJhXHU5MGNlIl0~WyI2SWo3dE0tYTVpVlBHYm9TNXRtdlZBIiwgImZhbWl"
    "seV9uYW1lIiwgIlx1NWM3MVx1NzUzMCJd~WyJlSThaV205UW5LUHBOUGVOZW5IZGhRIiwgImVtYWlsIiwgIlwidW51c3VhbC"
    "BlbWFpbCBhZGRyZXNzXCJAZXhhbXBsZS5qcCJd~WyJRZ19PNjR6cUF4ZTQxMmExMDhpcm9BIiwgInBob25lX251bWJlciIsI"
    "CIrODEtODAtMTIzNC01Njc4Il0~WyJBSngtMDk1VlBycFR0TjRRTU9xUk9BIiwgInN0cmVldF9hZGRyZXNzIiwgIlx1Njc3M"
    "Vx1NGVhY1x1OTBmZFx1NmUyZlx1NTMzYVx1ODI5ZFx1NTE2Y1x1NTcxMlx1ZmYxNFx1NGUwMVx1NzZlZVx1ZmYxMlx1MjIxM"
    "lx1ZmYxOCJd~WyJQYzMzSk0yTGNoY1VfbEhnZ3ZfdWZRIiwgImxvY2FsaXR5IiwgIlx1Njc3MVx1NGVhY1x1OTBmZCJd~WyJ"
    "HMDJOU3JRZmpGWFE3SW8wOXN5YWpBIiwgInJlZ2lvbiIsICJcdTZlMmZcdTUzM2EiXQ~WyJsa2x4RjVqTVlsR1RQVW92TU5J"
    "dkNBIiwgImNvdW50cnkiLCAiSlAiXQ~WyJ5eXRWYmRBUEdjZ2wyckk0QzlHU29nIiwgImJpcnRoZGF0ZSIsICIxOTQwLTAxL"
    "TAxIl0~"
)

#: Appendix A.3: an SD-JWT VC (a German PID, vct urn:eudi:pid:de:1) with all its Disclosures;
#: age_equal_or_over is an object of disclosable members (recursive Disclosures).
SD_JWT_VC_ISSUANCE_A_3 = (
    "eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImRjK3NkLWp3dCJ9.eyJfc2QiOiBbIjBIWm1uU0lQejMzN2tTV2U3QzM0bC0tODhnekp"
    "pLWVCSjJWel9ISndBVGciLCAiMUNybjAzV21VZVJXcDR6d1B2dkNLWGw5WmFRcC1jZFFWX2dIZGFHU1dvdyIsICIycjAwOWR6dkh"
    "1VnJXclJYVDVrSk1tSG5xRUhIbldlME1MVlp3OFBBVEI4IiwgIjZaTklTRHN0NjJ5bWxyT0FrYWRqZEQ1WnVsVDVBMjk5Sjc4U0x"
    "oTV9fT3MiLCAiNzhqZzc3LUdZQmVYOElRZm9FTFB5TDBEWVBkbWZabzBKZ1ZpVjBfbEtDTSIsICI5MENUOEFhQlBibjVYOG5SWGt"
    "lc2p1MWkwQnFoV3FaM3dxRDRqRi1xREdrIiwgIkkwMGZjRlVvRFhDdWNwNXl5MnVqcVBzc0RWR2FXTmlVbGlOel9hd0QwZ2MiLCA"
    "iS2pBWGdBQTlONVdIRUR0UkloNHU1TW4xWnNXaXhoaFdBaVgtQTRRaXdnQSIsICJMYWk2SVU2ZDdHUWFnWFI3QXZHVHJuWGdTbGQ"
    "zejhFSWdfZnYzZk9aMVdnIiwgIkxlemphYlJxaVpPWHpFWW1WWmY4Uk1pOXhBa2QzX00xTFo4VTdFNHMzdTQiLCAiUlR6M3FUbUZ"
    "OSGJwV3JyT01aUzQxRjQ3NGtGcVJ2M3ZJUHF0aDZQVWhsTSIsICJXMTRYSGJVZmZ6dVc0SUZNanBTVGIxbWVsV3hVV2Y0Tl9vMmx"
    "ka2tJcWM4IiwgIldUcEk3UmNNM2d4WnJ1UnBYemV6U2JrYk9yOTNQVkZ2V3g4d29KM2oxY0UiLCAiX29oSlZJUUlCc1U0dXBkTlM"
    "0X3c0S2IxTUhxSjBMOXFMR3NoV3E2SlhRcyIsICJ5NTBjemMwSVNDaHlfYnNiYTFkTW9VdUFPUTVBTW1PU2ZHb0VlODF2MUZVIl0"
    "sICJpc3MiOiAiaHR0cHM6Ly9waWQtaXNzdWVyLmJ1bmQuZGUuZXhhbXBsZSIsICJpYXQiOiAxNjgzMDAwMDAwLCAiZXhwIjogMTg"
    "4MzAwMDAwMCwgInZjdCI6ICJ1cm46ZXVkaTpwaWQ6ZGU6MSIsICJfc2RfYWxnIjogInNoYS0yNTYiLCAiY25mIjogeyJqd2siOiB"
    "7Imt0eSI6ICJFQyIsICJjcnYiOiAiUC0yNTYiLCAieCI6ICJUQ0FFUjE5WnZ1M09IRjRqNFc0dmZTVm9ISVAxSUxpbERsczd2Q2V"
    "HZW1jIiwgInkiOiAiWnhqaVdXYlpNUUdIVldLVlE0aGJTSWlyc1ZmdWVjQ0U2dDRqVDlGMkhaUSJ9fX0.ZOZQTqmq8X1mCyFXi0w"
    "bV8xjctX1AlEa5TkdnkKOyWvLfW40XDb5oj9tzkgwff5s44IDnrfAdgLtmTcojs97_Q~WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3"
    "IiwgImdpdmVuX25hbWUiLCAiRXJpa2EiXQ~WyJlbHVWNU9nM2dTTklJOEVZbnN4QV9BIiwgImZhbWlseV9uYW1lIiwgIk11c3Rlc"
    "m1hbm4iXQ~WyI2SWo3dE0tYTVpVlBHYm9TNXRtdlZBIiwgImJpcnRoZGF0ZSIsICIxOTYzLTA4LTEyIl0~WyJlSThaV205UW5LUH"
    "BOUGVOZW5IZGhRIiwgInN0cmVldF9hZGRyZXNzIiwgIkhlaWRlc3RyYVx1MDBkZmUgMTciXQ~WyJRZ19PNjR6cUF4ZTQxMmExMDh"
    "pcm9BIiwgImxvY2FsaXR5IiwgIktcdTAwZjZsbiJd~WyJBSngtMDk1VlBycFR0TjRRTU9xUk9BIiwgInBvc3RhbF9jb2RlIiwgIj"
    "UxMTQ3Il0~WyJQYzMzSk0yTGNoY1VfbEhnZ3ZfdWZRIiwgImNvdW50cnkiLCAiREUiXQ~WyJHMDJOU3JRZmpGWFE3SW8wOXN5YWp"
    "BIiwgImFkZHJlc3MiLCB7Il9zZCI6IFsiQUxaRVJzU241V05pRVhkQ2tzVzhJNXFRdzNfTnBBblJxcFNBWkR1ZGd3OCIsICJEX19"
    "XX3VZY3ZSejN0dlVuSUp2QkRIaVRjN0NfX3FIZDB4Tkt3SXNfdzlrIiwgImVCcENYVTFKNWRoSDJnNHQ4UVlOVzVFeFM5QXhVVmJ"
    "sVW9kb0xZb1BobzAiLCAieE9QeTktZ0pBTEs2VWJXS0ZMUjg1Y09CeVVEM0FiTndGZzNJM1lmUUVfSSJdfV0~WyJsa2x4RjVqTVl"
    "sR1RQVW92TU5JdkNBIiwgIm5hdGlvbmFsaXRpZXMiLCBbIkRFIl1d~WyJuUHVvUW5rUkZxM0JJZUFtN0FuWEZBIiwgInNleCIsID"
    "Jd~WyI1YlBzMUlxdVpOYTBoa2FGenp6Wk53IiwgImJpcnRoX2ZhbWlseV9uYW1lIiwgIkdhYmxlciJd~WyI1YTJXMF9OcmxFWnpm"
    "cW1rXzdQcS13IiwgImxvY2FsaXR5IiwgIkJlcmxpbiJd~WyJ5MXNWVTV3ZGZKYWhWZGd3UGdTN1JRIiwgImNvdW50cnkiLCAiREU"
    "iXQ~WyJIYlE0WDhzclZXM1FEeG5JSmRxeU9BIiwgInBsYWNlX29mX2JpcnRoIiwgeyJfc2QiOiBbIktVVmlhYUxuWTVqU01MOTBH"
    "MjlPT0xFTlBiYlhmaFNqU1BNalphR2t4QUUiLCAiWWJzVDBTNzZWcVhDVnNkMWpVU2x3S1BEZ21BTGVCMXVaY2xGSFhmLVVTUSJd"
    "fV0~WyJDOUdTb3VqdmlKcXVFZ1lmb2pDYjFBIiwgIjEyIiwgdHJ1ZV0~WyJreDVrRjE3Vi14MEptd1V4OXZndnR3IiwgIjE0Iiwg"
    "dHJ1ZV0~WyJIM28xdXN3UDc2MEZpMnllR2RWQ0VRIiwgIjE2IiwgdHJ1ZV0~WyJPQktsVFZsdkxnLUFkd3FZR2JQOFpBIiwgIjE4"
    "IiwgdHJ1ZV0~WyJNMEpiNTd0NDF1YnJrU3V5ckRUM3hBIiwgIjIxIiwgdHJ1ZV0~WyJEc210S05ncFY0ZEFIcGpyY2Fvc0F3Iiwg"
    "IjY1IiwgZmFsc2Vd~WyJlSzVvNXBIZmd1cFBwbHRqMXFoQUp3IiwgImFnZV9lcXVhbF9vcl9vdmVyIiwgeyJfc2QiOiBbIjF0RWl"
    "5elBSWU9Lc2Y3U3NZR01nUFpLc09UMWxRWlJ4SFhBMHI1X0J3a2siLCAiQ1ZLbmx5NVA5MHlKczNFd3R4UWlPdFVjemFYQ1lOQTR"
    "JY3pSYW9ock1EZyIsICJhNDQtZzJHcjhfM0FtSncyWFo4a0kxeTBRel96ZTlpT2NXMlczUkxwWEdnIiwgImdrdnkwRnV2QkJ2ajB"
    "oczJaTnd4Y3FPbGY4bXUyLWtDRTctTmIyUXh1QlUiLCAiaHJZNEhubUY1YjVKd0M5ZVR6YUZDVWNlSVFBYUlkaHJxVVhRTkNXYmZ"
    "aSSIsICJ5NlNGclZGUnlxNTBJYlJKdmlUWnFxalFXejB0TGl1Q21NZU8wS3FhekdJIl19XQ~WyJqN0FEZGIwVVZiMExpMGNpUGNQ"
    "MGV3IiwgImFnZV9pbl95ZWFycyIsIDYyXQ~WyJXcHhKckZ1WDh1U2kycDRodDA5anZ3IiwgImFnZV9iaXJ0aF95ZWFyIiwgMTk2M"
    "10~WyJhdFNtRkFDWU1iSlZLRDA1bzNKZ3RRIiwgImlzc3VhbmNlX2RhdGUiLCAiMjAyMC0wMy0xMSJd~WyI0S3lSMzJvSVp0LXpr"
    "V3ZGcWJVTEtnIiwgImV4cGlyeV9kYXRlIiwgIjIwMzAtMDMtMTIiXQ~WyJjaEJDc3loeWgtSjg2SS1hd1FEaUNRIiwgImlzc3Vpb"
    "mdfYXV0aG9yaXR5IiwgIkRFIl0~WyJmbE5QMW5jTXo5TGctYzlxTUl6XzlnIiwgImlzc3VpbmdfY291bnRyeSIsICJERSJd~"
)
#: Appendix A.3: its presentation proving only age_equal_or_over.18 and the nationality.
SD_JWT_VC_PRESENTATION_A_3 = (
    "eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImRjK3NkLWp3dCJ9.eyJfc2QiOiBbIjBIWm1uU0lQejMzN2tTV2U3QzM0bC0tODhnekp"
    "pLWVCSjJWel9ISndBVGciLCAiMUNybjAzV21VZVJXcDR6d1B2dkNLWGw5WmFRcC1jZFFWX2dIZGFHU1dvdyIsICIycjAwOWR6dkh"
    "1VnJXclJYVDVrSk1tSG5xRUhIbldlME1MVlp3OFBBVEI4IiwgIjZaTklTRHN0NjJ5bWxyT0FrYWRqZEQ1WnVsVDVBMjk5Sjc4U0x"
    "oTV9fT3MiLCAiNzhqZzc3LUdZQmVYOElRZm9FTFB5TDBEWVBkbWZabzBKZ1ZpVjBfbEtDTSIsICI5MENUOEFhQlBibjVYOG5SWGt"
    "lc2p1MWkwQnFoV3FaM3dxRDRqRi1xREdrIiwgIkkwMGZjRlVvRFhDdWNwNXl5MnVqcVBzc0RWR2FXTmlVbGlOel9hd0QwZ2MiLCA"
    "iS2pBWGdBQTlONVdIRUR0UkloNHU1TW4xWnNXaXhoaFdBaVgtQTRRaXdnQSIsICJMYWk2SVU2ZDdHUWFnWFI3QXZHVHJuWGdTbGQ"
    "zejhFSWdfZnYzZk9aMVdnIiwgIkxlemphYlJxaVpPWHpFWW1WWmY4Uk1pOXhBa2QzX00xTFo4VTdFNHMzdTQiLCAiUlR6M3FUbUZ"
    "OSGJwV3JyT01aUzQxRjQ3NGtGcVJ2M3ZJUHF0aDZQVWhsTSIsICJXMTRYSGJVZmZ6dVc0SUZNanBTVGIxbWVsV3hVV2Y0Tl9vMmx"
    "ka2tJcWM4IiwgIldUcEk3UmNNM2d4WnJ1UnBYemV6U2JrYk9yOTNQVkZ2V3g4d29KM2oxY0UiLCAiX29oSlZJUUlCc1U0dXBkTlM"
    "0X3c0S2IxTUhxSjBMOXFMR3NoV3E2SlhRcyIsICJ5NTBjemMwSVNDaHlfYnNiYTFkTW9VdUFPUTVBTW1PU2ZHb0VlODF2MUZVIl0"
    "sICJpc3MiOiAiaHR0cHM6Ly9waWQtaXNzdWVyLmJ1bmQuZGUuZXhhbXBsZSIsICJpYXQiOiAxNjgzMDAwMDAwLCAiZXhwIjogMTg"
    "4MzAwMDAwMCwgInZjdCI6ICJ1cm46ZXVkaTpwaWQ6ZGU6MSIsICJfc2RfYWxnIjogInNoYS0yNTYiLCAiY25mIjogeyJqd2siOiB"
    "7Imt0eSI6ICJFQyIsICJjcnYiOiAiUC0yNTYiLCAieCI6ICJUQ0FFUjE5WnZ1M09IRjRqNFc0dmZTVm9ISVAxSUxpbERsczd2Q2V"
    "HZW1jIiwgInkiOiAiWnhqaVdXYlpNUUdIVldLVlE0aGJTSWlyc1ZmdWVjQ0U2dDRqVDlGMkhaUSJ9fX0.ZOZQTqmq8X1mCyFXi0w"
    "bV8xjctX1AlEa5TkdnkKOyWvLfW40XDb5oj9tzkgwff5s44IDnrfAdgLtmTcojs97_Q~WyJlSzVvNXBIZmd1cFBwbHRqMXFoQUp3"
    "IiwgImFnZV9lcXVhbF9vcl9vdmVyIiwgeyJfc2QiOiBbIjF0RWl5elBSWU9Lc2Y3U3NZR01nUFpLc09UMWxRWlJ4SFhBMHI1X0J3"
    "a2siLCAiQ1ZLbmx5NVA5MHlKczNFd3R4UWlPdFVjemFYQ1lOQTRJY3pSYW9ock1EZyIsICJhNDQtZzJHcjhfM0FtSncyWFo4a0kx"
    "eTBRel96ZTlpT2NXMlczUkxwWEdnIiwgImdrdnkwRnV2QkJ2ajBoczJaTnd4Y3FPbGY4bXUyLWtDRTctTmIyUXh1QlUiLCAiaHJZ"
    "NEhubUY1YjVKd0M5ZVR6YUZDVWNlSVFBYUlkaHJxVVhRTkNXYmZaSSIsICJ5NlNGclZGUnlxNTBJYlJKdmlUWnFxalFXejB0TGl1"
    "Q21NZU8wS3FhekdJIl19XQ~WyJPQktsVFZsdkxnLUFkd3FZR2JQOFpBIiwgIjE4IiwgdHJ1ZV0~WyJsa2x4RjVqTVlsR1RQVW92T"
    "U5JdkNBIiwgIm5hdGlvbmFsaXRpZXMiLCBbIkRFIl1d~eyJhbGciOiAiRVMyNTYiLCAidHlwIjogImtiK2p3dCJ9.eyJub25jZSI"
    "6ICIxMjM0NTY3ODkwIiwgImF1ZCI6ICJodHRwczovL3ZlcmlmaWVyLmV4YW1wbGUub3JnIiwgImlhdCI6IDE3NDg1MzcyNDQsICJ"
    "zZF9oYXNoIjogIlBqTVlmTTA3VmJKZE14TElsdXZSTmI4OEpGbGpTWDRuLUc0M1VjX0JTUk0ifQ.f3TeS_1BWEG78EbIJRh5wgv8"
    "nYumk7euzu6xgbgpNB4pbQQqgRPWK-vQjlhhgU1EFGZ9LFakFX_0mgul1G_3mw"
)


def test_rfc_disclosure_and_its_digest() -> None:
    (disclosure,) = parse(f"{ISSUANCE_5_1.split('~')[0]}~{MOBIUS}~").disclosures
    assert (disclosure.salt, disclosure.name, disclosure.value) == (
        "_26bc4LT-ac6q2KI6cBW5es",
        "family_name",
        "Möbius",
    )
    assert disclosure.digest == digest(MOBIUS) == MOBIUS_DIGEST
    # Other spellings of the same claim decode alike but hash differently: the
    # digest is over the issuer's text, never over re-encoded JSON.
    for variant in MOBIUS_VARIANTS:
        (same,) = parse(f"{ISSUANCE_5_1.split('~')[0]}~{variant}~").disclosures
        assert (same.salt, same.name, same.value) == (
            "_26bc4LT-ac6q2KI6cBW5es",
            "family_name",
            "Möbius",
        )
        assert same.digest != MOBIUS_DIGEST


def test_rfc_array_element_disclosure() -> None:
    (element,) = parse(f"{ISSUANCE_5_1.split('~')[0]}~{FR}~").disclosures
    assert (element.salt, element.name, element.value) == ("lklxF5jMYlGTPUovMNIvCA", None, "FR")
    assert element.digest == FR_DIGEST


def test_rfc_section_5_1_digests() -> None:
    for disclosure, expected in SECTION_5_1_DIGESTS.items():
        assert digest(disclosure) == expected
    parsed = parse(ISSUANCE_5_1)
    assert {d.encoded: d.digest for d in parsed.disclosures} == SECTION_5_1_DIGESTS


def test_we_write_the_rfc_disclosure_compactly() -> None:
    """Our encoder writes the RFC's 'no white space' spelling of the Möbius Disclosure."""
    issuer = PrivateKey.generate("Ed25519")
    did = create_did_key(issuer.public)
    credential = issue(
        {"family_name": "Möbius"},
        vct="urn:example:person",
        issuer=did,
        signer_kid=_kid(did),
        signer=issuer,
        disclosable=["family_name"],
        holder_jwk=None,
        now=NOW,
        salt=lambda: "_26bc4LT-ac6q2KI6cBW5es",
    )
    assert credential.split("~")[1:] == [MOBIUS_VARIANTS[1], ""]


def test_rfc_issuance_processes_to_the_rfc_payload() -> None:
    result = sd_jwt.verify_signed(ISSUANCE_5_1, RFC_ISSUER_KEY, now=RFC_NOW)
    assert result.payload == {
        "iss": "https://issuer.example.com",
        "iat": 1683000000,
        "exp": 1883000000,
        "sub": "user_42",
        "nationalities": ["US", "DE"],
        "cnf": {"jwk": RFC_HOLDER_JWK},
        "given_name": "John",
        "family_name": "Doe",
        "email": "johndoe@example.com",
        "phone_number": "+1-202-555-0101",
        "phone_number_verified": True,
        "address": {
            "street_address": "123 Main St",
            "locality": "Anytown",
            "region": "Anystate",
            "country": "US",
        },
        "birthdate": "1940-01-01",
        "updated_at": 1570000000,
    }
    assert not result.key_bound
    assert set(result.disclosed) == {
        "given_name",
        "family_name",
        "email",
        "phone_number",
        "phone_number_verified",
        "address",
        "birthdate",
        "updated_at",
    }


def test_rfc_presentation_with_key_binding() -> None:
    parsed = parse(PRESENTATION_5_2)
    assert parsed.kb_jwt is not None
    assert parsed.kb_jwt.payload["sd_hash"] == "0_Af-2B-EhLWX5ydh_w2xzwmO6iM66B_2QCEanI4fUY"
    assert digest(parsed.sd_jwt_text) == parsed.kb_jwt.payload["sd_hash"]
    result = sd_jwt.verify_signed(
        PRESENTATION_5_2,
        RFC_ISSUER_KEY,
        now=RFC_NOW,
        audience=RFC_VERIFIER,
        nonce=RFC_NONCE,
        require_key_binding=True,
    )
    assert result.key_bound
    assert result.disclosed == ("family_name", "address", "given_name")
    assert result.payload["nationalities"] == ["US"]  # the DE element stayed hidden
    assert "email" not in result.payload and "birthdate" not in result.payload
    with pytest.raises(KeyBindingNonceError):
        sd_jwt.verify_signed(
            PRESENTATION_5_2, RFC_ISSUER_KEY, now=RFC_NOW, audience=RFC_VERIFIER, nonce="other"
        )
    with pytest.raises(KeyBindingAudienceError):
        sd_jwt.verify_signed(
            PRESENTATION_5_2, RFC_ISSUER_KEY, now=RFC_NOW, audience="https://x", nonce=RFC_NONCE
        )
    with pytest.raises(KeyBindingTimeError):
        sd_jwt.verify_signed(
            PRESENTATION_5_2,
            RFC_ISSUER_KEY,
            now=RFC_NOW + sd_jwt.KB_MAX_AGE_S + 2 * sd_jwt.CLOCK_LEEWAY_S,
            audience=RFC_VERIFIER,
            nonce=RFC_NONCE,
        )
    with pytest.raises(CredentialSignatureError):
        sd_jwt.verify_signed(PRESENTATION_5_2, PublicKey.from_jwk(RFC_HOLDER_JWK), now=RFC_NOW)


def test_rfc_nested_object_with_decoys() -> None:
    shown = sd_jwt.verify_signed(PRESENTATION_A_1, RFC_ISSUER_KEY, now=RFC_NOW)
    assert shown.payload == {
        "iss": "https://issuer.example.com",
        "iat": 1683000000,
        "exp": 1883000000,
        "address": {"region": "港区", "country": "JP"},
    }
    everything = sd_jwt.verify_signed(ISSUANCE_A_1, RFC_ISSUER_KEY, now=RFC_NOW)
    assert everything.payload["address"] == {
        "street_address": "東京都港区芝公園４丁目２−８",  # noqa: RUF001
        "locality": "東京都",
        "region": "港区",
        "country": "JP",
    }
    assert everything.payload["email"] == '"unusual email address"@example.jp'
    assert everything.payload["given_name"] == "太郎"


def test_rfc_sd_jwt_vc_proves_age_without_the_birthdate() -> None:
    """Appendix A.3, the mission's example: age_equal_or_over.18 and nothing else about age."""
    result = sd_jwt.verify_signed(
        SD_JWT_VC_PRESENTATION_A_3,
        RFC_ISSUER_KEY,
        now=RFC_NOW,
        audience=RFC_VERIFIER,
        nonce=RFC_NONCE,
        require_key_binding=True,
    )
    assert result.key_bound and result.disclosed == ("age_equal_or_over", "18", "nationalities")
    assert result.payload == {
        "iss": "https://pid-issuer.bund.de.example",
        "iat": 1683000000,
        "exp": 1883000000,
        "vct": "urn:eudi:pid:de:1",
        "cnf": {"jwk": RFC_HOLDER_JWK},
        "age_equal_or_over": {"18": True},
        "nationalities": ["DE"],
    }
    assert b"1963" not in _decoded_parts(SD_JWT_VC_PRESENTATION_A_3)
    everything = sd_jwt.verify_signed(SD_JWT_VC_ISSUANCE_A_3, RFC_ISSUER_KEY, now=RFC_NOW).payload
    assert everything["age_equal_or_over"] == {
        "12": True,
        "14": True,
        "16": True,
        "18": True,
        "21": True,
        "65": False,
    }
    assert everything["birthdate"] == "1963-08-12"
    assert everything["address"]["locality"] == "Köln"
    assert everything["place_of_birth"] == {"locality": "Berlin", "country": "DE"}


def test_we_present_the_rfc_credential_as_the_rfc_does() -> None:
    """present() picks the RFC's three Disclosures (18 brings its parent, not its siblings)."""
    ours = present(
        SD_JWT_VC_ISSUANCE_A_3,
        ["18", "nationalities"],
        holder_key=RFC_HOLDER,
        audience=RFC_VERIFIER,
        nonce=RFC_NONCE,
        now=RFC_NOW,
    )
    theirs = parse(SD_JWT_VC_PRESENTATION_A_3)
    assert {d.encoded for d in parse(ours).disclosures} == {d.encoded for d in theirs.disclosures}
    result = sd_jwt.verify_signed(
        ours, RFC_ISSUER_KEY, now=RFC_NOW, audience=RFC_VERIFIER, nonce=RFC_NONCE
    )
    assert result.key_bound and result.payload["age_equal_or_over"] == {"18": True}
    assert disclosable_claims(SD_JWT_VC_ISSUANCE_A_3)["age_equal_or_over"]["65"] is False


def test_rfc_example_is_not_an_sd_jwt_vc() -> None:
    """The RFC examples are typed example+sd-jwt and issued by an https URL, not a DID."""
    with pytest.raises(UnsupportedCredentialError):
        verify(ISSUANCE_5_1, resolver=default_resolver(), now=RFC_NOW)


def test_holder_presents_nested_claims_of_a_foreign_credential() -> None:
    """present() keeps the Disclosures that connect a nested claim to the payload."""
    # Only street_address inside the address: the address's own Disclosure comes along.
    text = present(ISSUANCE_A_1, ["region"], holder_key=None, audience="a", nonce="n", now=RFC_NOW)
    assert sd_jwt.verify_signed(text, RFC_ISSUER_KEY, now=RFC_NOW).payload["address"] == {
        "region": "港区"
    }
    assert disclosable_claims(ISSUANCE_5_1)["address"]["locality"] == "Anytown"
    with pytest.raises(MalformedCredentialError):
        disclosable_claims(PRESENTATION_5_2)  # a holder never receives an SD-JWT+KB


# -- our own credentials ---------------------------------------------------------------

NOW = 1_800_000_000
AUDIENCE = "did:example:verifier"
NONCE = "nonce-1"
KEYS = {curve: PrivateKey.generate(curve) for curve in ("Ed25519", "P-256", "secp256k1")}
HOLDER = PrivateKey.generate("P-256")
RESOLVER = default_resolver()
PERSON = {"given_name": "Ada", "birthdate": "2000-01-01", "age_over_18": True, "nationality": "DE"}


def _kid(did: str) -> str:
    return f"{did}#{did.removeprefix('did:key:')}"


def _issue(
    claims: dict[str, Any] | None = None,
    *,
    curve: str = "Ed25519",
    disclosable: tuple[str, ...] = ("given_name", "birthdate", "age_over_18"),
    holder: PrivateKey | None = HOLDER,
    expires: int | None = NOW + 3600,
    **kwargs: Any,
) -> str:
    signer = KEYS[curve]
    did = create_did_key(signer.public)
    return issue(
        PERSON if claims is None else claims,
        vct="urn:example:person",
        issuer=did,
        signer_kid=_kid(did),
        signer=signer,
        disclosable=disclosable,
        holder_jwk=None if holder is None else holder.public.to_jwk(),
        now=NOW,
        expires=expires,
        **kwargs,
    )


def _decoded_parts(text: str) -> bytes:
    """Every base64url piece of a presentation, decoded: what a verifier could read."""
    out = []
    for part in text.replace("~", ".").split("."):
        if part:
            out.append(b64u_decode(part))
    return b"|".join(out)


@pytest.mark.parametrize("curve", ["Ed25519", "P-256", "secp256k1"])
def test_over_18_without_the_birthdate(curve: str) -> None:
    credential = _issue(curve=curve, decoys=3)
    held = verify(credential, resolver=RESOLVER, now=NOW)
    assert held.claims == PERSON and held.vct == "urn:example:person" and not held.key_bound
    assert held.holder_jwk == HOLDER.public.to_jwk()
    assert (held.issued_at, held.expires) == (NOW, NOW + 3600)
    assert disclosable_claims(credential) == {
        "given_name": "Ada",
        "birthdate": "2000-01-01",
        "age_over_18": True,
    }
    shown = present(
        credential, ["age_over_18"], holder_key=HOLDER, audience=AUDIENCE, nonce=NONCE, now=NOW + 5
    )
    assert "birthdate" not in shown and b"birthdate" not in _decoded_parts(shown)
    assert b"2000-01-01" not in _decoded_parts(shown)
    result = verify(
        shown,
        resolver=RESOLVER,
        now=NOW + 10,
        audience=AUDIENCE,
        nonce=NONCE,
        require_key_binding=True,
    )
    assert result.claims == {"age_over_18": True, "nationality": "DE"}
    assert result.disclosed == ("age_over_18",)
    assert result.key_bound and result.issuer == held.issuer


def test_issued_credential_layout() -> None:
    credential = _issue(decoys=2)
    parsed = parse(credential)
    assert parsed.jwt.header == {
        "typ": "dc+sd-jwt",
        "alg": "EdDSA",
        "kid": _kid(parsed.jwt.payload["iss"]),
    }
    payload = parsed.jwt.payload
    assert payload["_sd_alg"] == "sha-256" and payload["vct"] == "urn:example:person"
    assert payload["iat"] == NOW and payload["exp"] == NOW + 3600
    assert payload["nationality"] == "DE" and "birthdate" not in payload
    assert len(payload["_sd"]) == 3 + 2 and payload["_sd"] == sorted(payload["_sd"])
    assert {d.digest for d in parsed.disclosures} < set(payload["_sd"])
    assert credential.endswith("~") and parsed.kb_jwt is None


def test_a_status_reference_is_a_plain_claim_every_presentation_shows() -> None:
    status = {"status_list": {"idx": 7, "uri": "did:example:issuer/status/sd-jwt/0"}}
    credential = _issue(status=status)
    assert parse(credential).jwt.payload["status"] == status
    assert "status" not in disclosable_claims(credential)
    shown = present(credential, [], holder_key=HOLDER, audience=AUDIENCE, nonce=NONCE, now=NOW)
    result = verify(shown, resolver=RESOLVER, now=NOW, audience=AUDIENCE, nonce=NONCE)
    assert result.claims == {"nationality": "DE", "status": status}
    with pytest.raises(CredentialClaimError):
        _issue(status=status, claims={**PERSON, "status": status})
    with pytest.raises(CredentialClaimError):
        _issue(status={"status_list": {"_sd": []}})


def test_present_without_key_binding() -> None:
    credential = _issue()
    shown = present(credential, [], holder_key=None, audience=AUDIENCE, nonce=NONCE, now=NOW)
    assert shown == credential.split("~")[0] + "~"
    result = verify(shown, resolver=RESOLVER, now=NOW)
    assert result.claims == {"nationality": "DE"} and result.disclosed == ()
    with pytest.raises(KeyBindingError):
        verify(
            shown,
            resolver=RESOLVER,
            now=NOW,
            audience=AUDIENCE,
            nonce=NONCE,
            require_key_binding=True,
        )


def test_private_holder_jwk_members_stay_out() -> None:
    credential = _issue(holder=None) + ""
    other = issue(
        {"a": 1},
        vct="urn:x",
        issuer=create_did_key(KEYS["Ed25519"].public),
        signer_kid=_kid(create_did_key(KEYS["Ed25519"].public)),
        signer=KEYS["Ed25519"],
        disclosable=[],
        holder_jwk=HOLDER.to_jwk(),
        now=NOW,
    )
    assert "cnf" not in parse(credential).jwt.payload
    assert parse(other).jwt.payload["cnf"] == {"jwk": HOLDER.public.to_jwk()}


# -- refusals: each its own typed error ------------------------------------------------------


def _presentation(now: int = NOW) -> str:
    return present(
        _issue(), ["age_over_18"], holder_key=HOLDER, audience=AUDIENCE, nonce=NONCE, now=now
    )


def test_wrong_nonce_audience_and_stale_key_binding() -> None:
    shown = _presentation()
    with pytest.raises(KeyBindingNonceError) as nonce:
        verify(shown, resolver=RESOLVER, now=NOW, audience=AUDIENCE, nonce="other")
    with pytest.raises(KeyBindingAudienceError) as audience:
        verify(shown, resolver=RESOLVER, now=NOW, audience="did:example:eve", nonce=NONCE)
    with pytest.raises(KeyBindingTimeError):
        verify(shown, resolver=RESOLVER, now=NOW + 3000, audience=AUDIENCE, nonce=NONCE)
    with pytest.raises(KeyBindingTimeError):
        verify(
            _presentation(now=NOW + 1000),
            resolver=RESOLVER,
            now=NOW,
            audience=AUDIENCE,
            nonce=NONCE,
        )
    with pytest.raises(KeyBindingError):
        verify(shown, resolver=RESOLVER, now=NOW)  # a KB-JWT is never accepted unchecked
    assert nonce.value.problem_code != audience.value.problem_code


def test_expired_and_not_yet_valid() -> None:
    credential = _issue(expires=NOW + 100)
    verify(credential, resolver=RESOLVER, now=NOW + 100 + sd_jwt.CLOCK_LEEWAY_S - 1)
    with pytest.raises(CredentialExpiredError):
        verify(credential, resolver=RESOLVER, now=NOW + 100 + sd_jwt.CLOCK_LEEWAY_S)
    with pytest.raises(CredentialNotYetValidError):
        verify(credential, resolver=RESOLVER, now=NOW - sd_jwt.CLOCK_LEEWAY_S - 1)
    later = _issue({**PERSON, "nbf": NOW + 1000})
    with pytest.raises(CredentialNotYetValidError):
        verify(later, resolver=RESOLVER, now=NOW)
    assert verify(later, resolver=RESOLVER, now=NOW + 1000).claims["nbf"] == NOW + 1000


def test_holder_key_mismatch() -> None:
    credential = _issue()
    with pytest.raises(HolderKeyMismatchError):
        present(
            credential,
            [],
            holder_key=PrivateKey.generate("P-256"),
            audience=AUDIENCE,
            nonce=NONCE,
            now=NOW,
        )
    with pytest.raises(HolderKeyMismatchError):
        present(_issue(holder=None), [], holder_key=HOLDER, audience=AUDIENCE, nonce=NONCE, now=NOW)
    # Another holder's KB-JWT grafted onto this credential.
    thief = PrivateKey.generate("P-256")
    stolen = present(
        _issue(holder=thief), [], holder_key=thief, audience=AUDIENCE, nonce=NONCE, now=NOW
    )
    grafted = present(credential, [], holder_key=None, audience=AUDIENCE, nonce=NONCE, now=NOW)
    grafted += stolen.split("~")[-1]
    with pytest.raises(KeyBindingError):
        verify(grafted, resolver=RESOLVER, now=NOW, audience=AUDIENCE, nonce=NONCE)


def test_present_refuses_unknown_names() -> None:
    with pytest.raises(CredentialClaimError):
        present(_issue(), ["nationality"], holder_key=None, audience=AUDIENCE, nonce=NONCE, now=NOW)
    with pytest.raises(MalformedCredentialError):
        present(_presentation(), [], holder_key=None, audience=AUDIENCE, nonce=NONCE, now=NOW)


@pytest.mark.parametrize(
    ("claims", "disclosable"),
    [
        ({"a": 1}, ("b",)),  # not in the claims
        ({"vct": "x"}, ()),  # set by issue itself
        ({"cnf": {}}, ()),
        ({"_sd": []}, ()),
        ({"status": {}}, ("status",)),  # SD-JWT VC: never selectively disclosable
        ({"nbf": 1}, ("nbf",)),
        ({"a": {"_sd": ["x"]}}, ()),  # would read as SD-JWT syntax
        ({"a": [{"...": "x"}]}, ("a",)),
        ({"a": float("nan")}, ("a",)),  # not JSON
        ({"a": {1: "x"}}, ()),  # a key JSON would rename
        ({"a": 1}, "a"),  # one string, not a collection of names
        ({"a": 1}, (1,)),
    ],
)
def test_issue_refuses_bad_claims(claims: dict[str, Any], disclosable: tuple[str, ...]) -> None:
    with pytest.raises(CredentialClaimError):
        _issue(claims, disclosable=disclosable)


def test_nesting_limit_is_the_same_for_issuer_and_verifier() -> None:
    deepest = _nested(sd_jwt.MAX_CLAIM_DEPTH)
    for hidden in ((), ("a",)):
        credential = _issue({"a": deepest}, disclosable=hidden)
        assert verify(credential, resolver=RESOLVER, now=NOW).claims == {"a": deepest}
        with pytest.raises(CredentialClaimError):
            _issue({"a": [deepest]}, disclosable=hidden)


def test_issue_refuses_bad_keys() -> None:
    signer = KEYS["Ed25519"]
    did = create_did_key(signer.public)
    other = create_did_key(KEYS["P-256"].public)
    common: dict[str, Any] = {"vct": "urn:x", "disclosable": [], "holder_jwk": None, "now": NOW}
    with pytest.raises(CredentialIssuerError):
        issue({}, issuer=did, signer_kid=_kid(other), signer=signer, **common)
    with pytest.raises(CredentialIssuerError):
        issue({}, issuer=did, signer_kid=did, signer=signer, **common)
    x25519 = PrivateKey.generate("X25519")
    with pytest.raises(UnsupportedCredentialError):
        issue({}, issuer=did, signer_kid=_kid(did), signer=x25519, **common)
    for holder_jwk in (x25519.public.to_jwk(), {"kty": "EC"}):
        with pytest.raises(CredentialClaimError):
            issue(
                {},
                issuer=did,
                signer_kid=_kid(did),
                signer=signer,
                **{**common, "holder_jwk": holder_jwk},
            )


def test_issue_refuses_oversize() -> None:
    with pytest.raises(CredentialTooLargeError):
        _issue({"blob": "x" * sd_jwt.MAX_SD_JWT_BYTES}, disclosable=())


# -- credentials from other implementations (hand-built, signed with the same keys) ---------------


def _jwt(header: dict[str, Any], payload: dict[str, Any], key: PrivateKey) -> str:
    signing_input = f"{b64u_encode(json_bytes(header))}.{b64u_encode(json_bytes(payload))}"
    return f"{signing_input}.{b64u_encode(key.sign(signing_input.encode('ascii')))}"


def _disclosure(*items: Any) -> str:
    return b64u_encode(json.dumps(list(items)).encode())


ISSUER = KEYS["P-256"]
ISSUER_DID = create_did_key(ISSUER.public)


def _foreign(payload: dict[str, Any], disclosures: list[str], **header: Any) -> str:
    head = {"typ": "dc+sd-jwt", "alg": "ES256", "kid": _kid(ISSUER_DID), **header}
    body = {
        "iss": ISSUER_DID,
        "iat": NOW,
        "vct": "urn:example:person",
        "_sd_alg": "sha-256",
        **payload,
    }
    return _jwt(head, body, ISSUER) + "~" + "".join(d + "~" for d in disclosures)


def test_foreign_nested_and_array_disclosures() -> None:
    street = _disclosure("s1", "street", "Schulstr. 12")
    de = _disclosure("s2", "DE")
    fr = _disclosure("s3", "FR")
    nationalities = _disclosure("s4", "nationalities", [{"...": digest(de)}, {"...": digest(fr)}])
    address = _disclosure("s5", "address", {"_sd": [digest(street)], "country": "DE"})
    credential = _foreign(
        {"_sd": sorted([digest(nationalities), digest(address)])},
        [street, de, fr, nationalities, address],
    )
    held = verify(credential, resolver=RESOLVER, now=NOW)
    assert held.claims == {
        "nationalities": ["DE", "FR"],
        "address": {"street": "Schulstr. 12", "country": "DE"},
    }
    # The street alone brings its address; nationalities stay hidden.
    shown = present(
        credential, ["street"], holder_key=None, audience=AUDIENCE, nonce=NONCE, now=NOW
    )
    assert verify(shown, resolver=RESOLVER, now=NOW).claims == {
        "address": {"street": "Schulstr. 12", "country": "DE"}
    }
    # The array shown with only the disclosed elements: FR's Disclosure left out.
    partial = credential.replace(fr + "~", "")
    assert verify(partial, resolver=RESOLVER, now=NOW).claims["nationalities"] == ["DE"]
    # An element Disclosure without the one connecting it to the payload.
    orphan = _foreign({"_sd": [digest(nationalities)]}, [de])
    with pytest.raises(DisclosureMismatchError):
        verify(orphan, resolver=RESOLVER, now=NOW)


def test_holder_jwk_is_reported_canonically() -> None:
    jwk = {**HOLDER.public.to_jwk(), "kid": "k-1", "d": "not ours to repeat"}
    held = verify(_foreign({"cnf": {"jwk": jwk}}, []), resolver=RESOLVER, now=NOW)
    assert held.holder_jwk == HOLDER.public.to_jwk()


def test_legacy_typ_is_accepted() -> None:
    assert verify(_foreign({}, [], typ="vc+sd-jwt"), resolver=RESOLVER, now=NOW).claims == {}
    with pytest.raises(UnsupportedCredentialError):
        verify(_foreign({}, [], typ="JWT"), resolver=RESOLVER, now=NOW)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        # The same Disclosure twice.
        (lambda d: _foreign({"_sd": [digest(d)]}, [d, d]), DisclosureMismatchError),
        # The same digest twice in the payload.
        (lambda d: _foreign({"_sd": [digest(d), digest(d)]}, [d]), DisclosureMismatchError),
        # A Disclosure for a name the payload already has in plain.
        (lambda d: _foreign({"_sd": [digest(d)], "a": 2}, [d]), DisclosureMismatchError),
        # A Disclosure no digest refers to.
        (lambda d: _foreign({}, [d]), DisclosureMismatchError),
        # vct hidden: SD-JWT VC keeps it visible.
        (
            lambda d: _foreign(
                {"_sd": [digest(_disclosure("s", "exp", NOW + 9))]},
                [_disclosure("s", "exp", NOW + 9)],
            ),
            DisclosureMismatchError,
        ),
        # An object-property Disclosure in an array slot.
        (lambda d: _foreign({"list": [{"...": digest(d)}]}, [d]), DisclosureMismatchError),
        # _sd not an array of strings; '...' outside an array; nested _sd_alg.
        (lambda d: _foreign({"_sd": "x"}, []), MalformedCredentialError),
        (lambda d: _foreign({"x": {"...": "y"}}, []), MalformedCredentialError),
        (lambda d: _foreign({"x": {"_sd_alg": "sha-256"}}, []), MalformedCredentialError),
        (lambda d: _foreign({"_sd_alg": "sha-512"}, []), UnsupportedCredentialError),
        (lambda d: _foreign({"vct": 5}, []), MalformedCredentialError),
        (lambda d: _foreign({"iss": "did:example:else"}, []), CredentialIssuerError),
        (lambda d: _foreign({"exp": "tomorrow"}, []), MalformedCredentialError),
        (lambda d: _foreign({"cnf": {"kid": "x"}}, []), UnsupportedCredentialError),
        (lambda d: _foreign({}, [], alg="none"), UnsupportedCredentialError),
        (lambda d: _foreign({}, [], crit=["exp"]), UnsupportedCredentialError),
        (lambda d: _foreign({}, [], kid=ISSUER_DID), CredentialIssuerError),
        (lambda d: _foreign({}, [], kid=ISSUER_DID + "#other"), CredentialIssuerError),
        (
            lambda d: _foreign({"x": _nested(sd_jwt.MAX_CLAIM_DEPTH + 2)}, []),
            CredentialTooLargeError,
        ),
    ],
)
def test_foreign_credential_refusals(
    build: Callable[[str], str], error: type[CredentialError]
) -> None:
    with pytest.raises(error):
        verify(build(_disclosure("salt", "a", 1)), resolver=RESOLVER, now=NOW)


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_key_must_be_an_assertion_method() -> None:
    """A DID whose key may authenticate but not assert cannot issue."""
    did = "did:example:issuer"
    vm = {
        "id": f"{did}#k",
        "type": "JsonWebKey2020",
        "controller": did,
        "publicKeyJwk": ISSUER.public.to_jwk(),
    }
    doc = {"id": did, "verificationMethod": [vm], "authentication": [f"{did}#k"]}
    credential = (
        _jwt(
            {"typ": "dc+sd-jwt", "alg": "ES256", "kid": f"{did}#k"},
            {"iss": did, "vct": "urn:x"},
            ISSUER,
        )
        + "~"
    )
    with pytest.raises(CredentialIssuerError):
        verify(credential, resolver=default_resolver([doc]), now=NOW)
    asserting = default_resolver([{**doc, "assertionMethod": [f"{did}#k"]}])
    assert verify(credential, resolver=asserting, now=NOW).issuer == did
    with pytest.raises(CredentialIssuerError):
        verify(credential, resolver=RESOLVER, now=NOW)  # the DID is unknown there


def test_structure_limits() -> None:
    jwt = _issue().split("~")[0]
    with pytest.raises(CredentialTooLargeError):
        parse(jwt + "~" + "A" * sd_jwt.MAX_SD_JWT_BYTES + "~")
    d = _disclosure("s", 1)
    with pytest.raises(CredentialTooLargeError):
        parse(jwt + "~" + (d + "~") * (sd_jwt.MAX_DISCLOSURES + 1))
    with pytest.raises(MalformedCredentialError):
        parse(jwt)  # no trailing '~'
    with pytest.raises(MalformedCredentialError):
        parse(jwt + "~~")  # an empty Disclosure
    # A signature whose unused low bits are set decodes to the same bytes: refused.
    head, _, sig = jwt.rpartition(".")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(sig[-1])
    twin = f"{head}.{sig[:-1]}{'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[last | 1]}"
    assert twin == jwt or b64u_decode(twin.rpartition(".")[2]) == b64u_decode(sig)
    if twin != jwt:
        with pytest.raises(MalformedCredentialError):
            parse(twin + "~")


def test_every_error_has_its_own_problem_code() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, CredentialError)
    ]
    codes = [c.problem_code for c in classes]
    assert len(classes) >= 15 and len(set(codes)) == len(codes)
    assert all(code.startswith("e.p.credential") and is_valid_code(code) for code in codes)


# -- properties ------------------------------------------------------------------------------

_NAMES = st.text(min_size=1, max_size=12).filter(
    lambda n: n not in sd_jwt._SET_BY_ISSUE and n not in sd_jwt._NEVER_DISCLOSABLE
)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=6).filter(lambda k: k not in ("_sd", "...", "_sd_alg")),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(claims=st.dictionaries(_NAMES, _VALUES, max_size=6), data=st.data())
def test_round_trip_reveals_exactly_the_subset(claims: dict[str, Any], data: st.DataObject) -> None:
    names = sorted(claims)
    hidden = data.draw(st.lists(st.sampled_from(names), unique=True) if names else st.just([]))
    shown = data.draw(st.lists(st.sampled_from(hidden), unique=True) if hidden else st.just([]))
    credential = _issue(claims, disclosable=tuple(hidden), decoys=data.draw(st.integers(0, 3)))
    assert verify(credential, resolver=RESOLVER, now=NOW).claims == claims
    assert disclosable_claims(credential) == {n: claims[n] for n in hidden}
    text = present(credential, shown, holder_key=HOLDER, audience=AUDIENCE, nonce=NONCE, now=NOW)
    result = verify(
        text, resolver=RESOLVER, now=NOW, audience=AUDIENCE, nonce=NONCE, require_key_binding=True
    )
    expected = {n: v for n, v in claims.items() if n not in hidden or n in shown}
    assert result.claims == expected
    assert set(result.disclosed) == set(shown) and result.key_bound


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~="
_SIGNED = present(
    _issue(disclosable=("given_name", "birthdate", "age_over_18", "nationality"), decoys=2),
    ["age_over_18", "nationality"],
    holder_key=HOLDER,
    audience=AUDIENCE,
    nonce=NONCE,
    now=NOW,
)


@settings(max_examples=400)
@given(at=st.integers(0, len(_SIGNED) - 1), char=st.sampled_from(_ALPHABET))
def test_any_single_character_change_is_refused(at: int, char: str) -> None:
    changed = _SIGNED[:at] + char + _SIGNED[at + 1 :]
    assume(changed != _SIGNED)
    with pytest.raises(CredentialError):
        verify(
            changed,
            resolver=RESOLVER,
            now=NOW,
            audience=AUDIENCE,
            nonce=NONCE,
            require_key_binding=True,
        )


@settings(max_examples=200)
@given(end=st.integers(0, len(_SIGNED) - 1))
def test_truncated_presentations_are_refused(end: int) -> None:
    with pytest.raises(CredentialError):
        verify(
            _SIGNED[:end],
            resolver=RESOLVER,
            now=NOW,
            audience=AUDIENCE,
            nonce=NONCE,
            require_key_binding=True,
        )


@settings(max_examples=300)
@given(
    text=st.text(max_size=300)
    | st.text(_ALPHABET, max_size=300)
    | st.lists(st.sampled_from(_SIGNED.replace("~", ".").split(".")), max_size=8).map("~".join)
    | st.lists(st.sampled_from(_SIGNED.replace("~", ".").split(".")), max_size=8).map(".".join)
)
def test_random_text_raises_only_typed_errors(text: str) -> None:
    for call in (
        lambda: verify(text, resolver=RESOLVER, now=NOW, audience=AUDIENCE, nonce=NONCE),
        lambda: parse(text),
        lambda: disclosable_claims(text),
        lambda: present(text, [], holder_key=HOLDER, audience=AUDIENCE, nonce=NONCE, now=NOW),
    ):
        with contextlib.suppress(CredentialError):
            call()


@settings(max_examples=200)
@given(
    payload=st.dictionaries(
        st.sampled_from(["_sd", "...", "x", "_sd_alg", "cnf", "exp", "vct"]), _VALUES, max_size=4
    )
)
def test_hostile_signed_payloads_raise_only_typed_errors(payload: dict[str, Any]) -> None:
    """A correctly signed credential can still hold anything: only typed errors come out."""
    d = _disclosure("salt", "a", 1)
    with contextlib.suppress(CredentialError):
        verify(_foreign(payload, [d]), resolver=RESOLVER, now=NOW)

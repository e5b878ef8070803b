"""``didcommd envelope``: the offline pack / unpack command, run as a real process.

The contract::

    didcommd envelope pack plaintext                     < message.json > packed.json
    didcommd envelope pack signed --sign-from KID|DID    < message.json > packed.json
    didcommd envelope pack encrypted --to DID|KID [--from KID|DID] [--sign-from KID|DID]
          [--enc-anon A256CBC-HS512|A256GCM|XC20P] [--protect-sender]  < message.json
    didcommd envelope unpack [--no-expiry-check]         < packed.json  > result.json

``--secrets FILE`` (JSON array of private JWKs) and ``--did-docs FILE`` (JSON
array of DID documents) go before or after the action. ``unpack`` prints
``{"message": {...}, "metadata": {...}}``. Success exits 0; a failure exits
non-zero with exactly one line ``error: <what>`` on stderr, no traceback, and
never a byte of key material anywhere.

Each run starts an interpreter, so independent runs are started a few at a
time (:func:`run_all`) from module-scoped fixtures.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import vectors as vector_files

ALICE = "did:example:alice"
BOB = "did:example:bob"
#: Processes started at once (the CI machine has two cores).
CLI_PARALLELISM = 4
#: Seconds one ``didcommd envelope`` run may take before it counts as hung.
CLI_TIMEOUT_SECONDS = 60

VECTOR_NAMES = [v["name"] for v in vector_files.message_vectors()]
SECRET_VALUES = [jwk["d"] for jwk in vector_files.all_secrets()]


@dataclass(frozen=True)
class Run:
    """One finished ``didcommd`` process."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, f"{self.args} exited {self.returncode}: {self.stderr}"
        return json.loads(self.stdout)


def run_one(binary: Path, args: list[str], stdin: str) -> Run:
    proc = subprocess.run(
        [str(binary), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    run = Run(tuple(args), proc.returncode, proc.stdout, proc.stderr)
    for secret in SECRET_VALUES:  # key material never leaves through the CLI
        assert secret not in run.stdout and secret not in run.stderr, args
    return run


def run_all(binary: Path, jobs: list[tuple[list[str], str]]) -> list[Run]:
    """Run ``(args, stdin)`` jobs a few at a time; results in job order."""
    with ThreadPoolExecutor(max_workers=CLI_PARALLELISM) as pool:
        return list(pool.map(lambda job: run_one(binary, *job), jobs))


def assert_one_error_line(run: Run) -> str:
    """The failure contract; returns the error text."""
    assert run.returncode != 0, f"{run.args} should have failed"
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {run.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert run.stdout == ""
    return lines[0]


@dataclass(frozen=True)
class Files:
    """Key and DID document files in a temporary directory."""

    alice: str
    bob: str
    both: str
    docs: str
    empty: str
    directory: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = tmp_path_factory.mktemp("envelope-cli")

    def write(name: str, value: Any) -> str:
        path = directory / name
        path.write_text(json.dumps(value), encoding="utf-8")
        return str(path)

    alice = vector_files.load("alice_secrets.json")
    bob = vector_files.load("bob_secrets.json")
    return Files(
        alice=write("alice.json", alice),
        bob=write("bob.json", bob),
        both=write("both.json", alice + bob),
        docs=write("docs.json", vector_files.load("did_docs.json")),
        empty=write("empty.json", []),
        directory=directory,
    )


def packed_text(vector: dict[str, Any]) -> str:
    packed = vector["packed"]
    return packed if isinstance(packed, str) else json.dumps(packed)


# -- the appendix vectors ---------------------------------------------------------


@pytest.fixture(scope="module")
def vector_runs(didcommd_bin: Path, files: Files) -> dict[str, Run]:
    vectors = vector_files.message_vectors()
    args = ["envelope", "--secrets", files.both, "--did-docs", files.docs]
    jobs = [([*args, "unpack", "--no-expiry-check"], packed_text(v)) for v in vectors]
    return dict(zip(VECTOR_NAMES, run_all(didcommd_bin, jobs), strict=True))


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_unpack_appendix_vector(
    name: str, vector_runs: dict[str, Run], vectors: dict[str, Any]
) -> None:
    vector = vectors["by_name"][name]
    run = vector_runs[name]
    result = run.json()
    assert set(result) == {"message", "metadata"}
    assert result["message"] == vector["expected_message"]
    expected = vector["expected_metadata"]
    assert {k: result["metadata"][k] for k in expected} == expected
    assert run.stdout.endswith("\n") and run.stdout.count("\n") == 1


def test_expired_vector_is_refused_without_no_expiry_check(
    didcommd_bin: Path, files: Files, vectors: dict[str, Any]
) -> None:
    vector = vectors["by_name"]["anoncrypt_x25519_xc20p"]
    run = run_one(
        didcommd_bin,
        ["envelope", "--secrets", files.bob, "--did-docs", files.docs, "unpack"],
        packed_text(vector),
    )
    assert "expire" in assert_one_error_line(run)


# -- pack -> unpack round trips ---------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """One ``pack`` command line and what ``unpack`` must then report."""

    name: str
    pack: tuple[str, ...]
    expected: dict[str, Any]


def anon(enc: str) -> dict[str, Any]:
    return {
        "encrypted": True,
        "authenticated": False,
        "non_repudiation": False,
        "anonymous_sender": True,
        "encrypted_from": None,
        "encrypted_to": [f"{BOB}#key-x25519-{i}" for i in (1, 2, 3)],
        "enc_alg_anon": f"ECDH-ES+A256KW/{enc}",
        "enc_alg_auth": None,
    }


AUTH = "ECDH-1PU+A256KW/A256CBC-HS512"
MODES = [
    Mode(
        "plaintext",
        ("plaintext",),
        {"encrypted": False, "authenticated": False, "non_repudiation": False},
    ),
    Mode(
        "signed_eddsa_by_did",
        ("signed", "--sign-from", ALICE),
        {"non_repudiation": True, "sign_from": f"{ALICE}#key-1", "sign_alg": "EdDSA"},
    ),
    Mode(
        "signed_es256",
        ("signed", "--sign-from", f"{ALICE}#key-2"),
        {"non_repudiation": True, "sign_from": f"{ALICE}#key-2", "sign_alg": "ES256"},
    ),
    Mode(
        "signed_es256k",
        ("signed", "--sign-from", f"{ALICE}#key-3"),
        {"non_repudiation": True, "sign_from": f"{ALICE}#key-3", "sign_alg": "ES256K"},
    ),
    Mode("anoncrypt_default_enc", ("encrypted", "--to", BOB), anon("A256CBC-HS512")),
    *(
        Mode(f"anoncrypt_{enc}", ("encrypted", "--to", BOB, "--enc-anon", enc), anon(enc))
        for enc in ("A256CBC-HS512", "A256GCM", "XC20P")
    ),
    Mode(
        "anoncrypt_p384_key",
        ("encrypted", "--to", f"{BOB}#key-p384-1", "--enc-anon", "A256GCM"),
        {
            "anonymous_sender": True,
            "encrypted_to": [f"{BOB}#key-p384-1"],
            "enc_alg_anon": "ECDH-ES+A256KW/A256GCM",
        },
    ),
    Mode(
        "authcrypt_by_dids",
        ("encrypted", "--to", BOB, "--from", ALICE),
        {
            "authenticated": True,
            "anonymous_sender": False,
            "encrypted_from": f"{ALICE}#key-x25519-1",
            "encrypted_to": [f"{BOB}#key-x25519-{i}" for i in (1, 2, 3)],
            "enc_alg_auth": AUTH,
            "enc_alg_anon": None,
            "non_repudiation": False,
        },
    ),
    Mode(
        "authcrypt_p521_key",
        ("encrypted", "--to", BOB, "--from", f"{ALICE}#key-p521-1"),
        {
            "encrypted_from": f"{ALICE}#key-p521-1",
            "encrypted_to": [f"{BOB}#key-p521-1", f"{BOB}#key-p521-2"],
            "enc_alg_auth": AUTH,
        },
    ),
    Mode(
        "authcrypt_signed",
        ("encrypted", "--to", BOB, "--from", ALICE, "--sign-from", f"{ALICE}#key-2"),
        {
            "authenticated": True,
            "non_repudiation": True,
            "encrypted_from": f"{ALICE}#key-x25519-1",
            "sign_from": f"{ALICE}#key-2",
            "sign_alg": "ES256",
            "anonymous_sender": False,
        },
    ),
    Mode(
        "anoncrypt_signed",
        ("encrypted", "--to", BOB, "--sign-from", f"{ALICE}#key-1", "--enc-anon", "XC20P"),
        {
            "authenticated": True,
            "non_repudiation": True,
            "anonymous_sender": True,
            "encrypted_from": None,
            "sign_from": f"{ALICE}#key-1",
            "enc_alg_anon": "ECDH-ES+A256KW/XC20P",
        },
    ),
    Mode(
        "protect_sender",
        (
            "encrypted",
            "--to",
            BOB,
            "--from",
            f"{ALICE}#key-p256-1",
            "--protect-sender",
            "--enc-anon",
            "A256GCM",
        ),
        {
            "authenticated": True,
            "anonymous_sender": True,
            "encrypted_from": f"{ALICE}#key-p256-1",
            "encrypted_to": [f"{BOB}#key-p256-1", f"{BOB}#key-p256-2"],
            "enc_alg_auth": AUTH,
            "enc_alg_anon": "ECDH-ES+A256KW/A256GCM",
        },
    ),
]
MODE_NAMES = [m.name for m in MODES]


def round_trip_message(name: str) -> dict[str, Any]:
    return {
        "id": f"cli-{name}",
        "type": "https://didcomm.org/basicmessage/2.0/message",
        "from": ALICE,
        "to": [BOB],
        "created_time": 1700000000,
        "body": {"content": f"round trip {name}", "note": "ünïcödé ✓"},
    }


@pytest.fixture(scope="module")
def round_trips(didcommd_bin: Path, files: Files) -> dict[str, tuple[Run, Run]]:
    """Pack each mode with Alice's keys, then unpack with Bob's: all packs at
    once, then all unpacks at once."""
    keys = ["--secrets", files.alice, "--did-docs", files.docs]
    packs = run_all(
        didcommd_bin,
        [
            (["envelope", *keys, "pack", *m.pack], json.dumps(round_trip_message(m.name)))
            for m in MODES
        ],
    )
    unpack_args = ["envelope", "unpack", "--secrets", files.bob, "--did-docs", files.docs]
    unpacks = run_all(didcommd_bin, [(unpack_args, p.stdout) for p in packs])
    return {m.name: (p, u) for m, p, u in zip(MODES, packs, unpacks, strict=True)}


@pytest.mark.parametrize("name", MODE_NAMES)
def test_pack_then_unpack(name: str, round_trips: dict[str, tuple[Run, Run]]) -> None:
    mode = next(m for m in MODES if m.name == name)
    pack, unpacked = round_trips[name]
    packed = pack.json()  # one JSON document on stdout
    assert isinstance(packed, dict)
    assert pack.stdout.count("\n") == 1
    result = unpacked.json()
    assert result["message"] == round_trip_message(name)
    assert {k: result["metadata"][k] for k in mode.expected} == mode.expected


def test_encrypted_output_names_only_public_data(round_trips: dict[str, tuple[Run, Run]]) -> None:
    """The packed JWE carries the recipients' kids, never the plaintext."""
    pack, _ = round_trips["authcrypt_by_dids"]
    assert "round trip" not in pack.stdout
    assert [r["header"]["kid"] for r in pack.json()["recipients"]] == [
        f"{BOB}#key-x25519-{i}" for i in (1, 2, 3)
    ]


# -- where --secrets / --did-docs go ----------------------------------------------


def test_key_files_before_or_after_the_action(didcommd_bin: Path, files: Files) -> None:
    message = json.dumps(round_trip_message("positions"))
    sign = ["pack", "signed", "--sign-from", f"{ALICE}#key-1"]
    packs = run_all(
        didcommd_bin,
        [
            (["envelope", "--secrets", files.alice, "--did-docs", files.docs, *sign], message),
            (["envelope", *sign, "--secrets", files.alice, "--did-docs", files.docs], message),
            (["envelope", "--secrets", files.alice, *sign, "--did-docs", files.docs], message),
            (["envelope", "--did-docs", files.docs, *sign, "--secrets", files.alice], message),
        ],
    )
    for pack in packs:
        assert "signatures" in pack.json()
    packed = packs[0].stdout
    unpacks = run_all(
        didcommd_bin,
        [
            (["envelope", "--secrets", files.bob, "--did-docs", files.docs, "unpack"], packed),
            (["envelope", "unpack", "--secrets", files.bob, "--did-docs", files.docs], packed),
            (["envelope", "--did-docs", files.docs, "unpack", "--secrets", files.bob], packed),
        ],
    )
    for unpacked in unpacks:
        assert unpacked.json()["metadata"]["sign_from"] == f"{ALICE}#key-1"


def test_a_key_file_after_the_action_is_not_lost_to_the_default(
    didcommd_bin: Path, files: Files
) -> None:
    """Given only before the action, --secrets must survive the action's parser."""
    packed = run_one(
        didcommd_bin,
        ["envelope", "pack", "encrypted", "--to", BOB, "--did-docs", files.docs],
        json.dumps(round_trip_message("defaults")),
    ).json()
    run = run_one(
        didcommd_bin,
        ["envelope", "--secrets", files.bob, "unpack", "--did-docs", files.docs],
        json.dumps(packed),
    )
    assert run.json()["metadata"]["encrypted"] is True


# -- failures ---------------------------------------------------------------------


def test_protect_sender_without_from_is_a_usage_error(didcommd_bin: Path, files: Files) -> None:
    run = run_one(
        didcommd_bin,
        [
            "envelope",
            "--did-docs",
            files.docs,
            "pack",
            "encrypted",
            "--to",
            BOB,
            "--protect-sender",
        ],
        json.dumps(round_trip_message("protect")),
    )
    assert run.returncode == 2
    assert "--from" in assert_one_error_line(run)


def test_unknown_enc_anon_is_a_usage_error(didcommd_bin: Path, files: Files) -> None:
    run = run_one(
        didcommd_bin,
        ["envelope", "pack", "encrypted", "--to", BOB, "--enc-anon", "A128GCM"],
        json.dumps(round_trip_message("enc")),
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr


def tampered(vector_name: str) -> str:
    vector = next(v for v in vector_files.message_vectors() if v["name"] == vector_name)
    packed = dict(vector["packed"])
    packed["ciphertext"] = ("B" if packed["ciphertext"][0] == "A" else "A") + packed["ciphertext"][
        1:
    ]
    return json.dumps(packed)


def bad_input_cases(files: Files) -> dict[str, tuple[list[str], str]]:
    """Each a command line and stdin that must fail cleanly."""
    d = files.directory
    (d / "not-json.json").write_text("{not json", encoding="utf-8")
    (d / "not-array.json").write_text('{"kid": "x"}', encoding="utf-8")
    broken = [dict(vector_files.load("alice_secrets.json")[0], d="AAAA")]
    (d / "broken-key.json").write_text(json.dumps(broken), encoding="utf-8")
    message = json.dumps(round_trip_message("bad"))
    unpack_bob = ["envelope", "--secrets", files.bob, "--did-docs", files.docs, "unpack"]
    anon_vector = packed_text(
        next(
            v for v in vector_files.message_vectors() if v["name"] == "anoncrypt_p384_a256cbc_hs512"
        )
    )
    return {
        "unpack_not_json": (unpack_bob, "this is not JSON"),
        "unpack_empty_stdin": (unpack_bob, ""),
        "unpack_json_array": (unpack_bob, "[1, 2, 3]"),
        "unpack_tampered_ciphertext": (
            [*unpack_bob, "--no-expiry-check"],
            tampered("authcrypt_x25519_a256cbc_hs512"),
        ),
        "unpack_without_recipient_key": (
            ["envelope", "--secrets", files.alice, "--did-docs", files.docs, "unpack"],
            anon_vector,
        ),
        "unpack_unknown_sender_did": (
            ["envelope", "--secrets", files.bob, "unpack", "--no-expiry-check"],
            packed_text(
                next(v for v in vector_files.message_vectors() if v["name"] == "signed_es256_p256")
            ).replace(f"{ALICE}#key-2", "did:example:mallory#key-2"),
        ),
        "pack_unknown_recipient": (
            [
                "envelope",
                "--did-docs",
                files.docs,
                "pack",
                "encrypted",
                "--to",
                "did:example:carol",
            ],
            message.replace(BOB, "did:example:carol"),
        ),
        "pack_recipient_not_in_to": (
            ["envelope", "--did-docs", files.docs, "pack", "encrypted", "--to", ALICE],
            message,
        ),
        "pack_signed_without_secret": (
            ["envelope", "--did-docs", files.docs, "pack", "signed", "--sign-from", ALICE],
            message,
        ),
        "pack_plaintext_not_an_object": (["envelope", "pack", "plaintext"], '["a"]'),
        "pack_plaintext_without_id": (
            ["envelope", "pack", "plaintext"],
            json.dumps({"type": "https://didcomm.org/x/1.0/y", "body": {}}),
        ),
        "secrets_file_missing": (
            ["envelope", "--secrets", str(d / "nope.json"), "--did-docs", files.docs, "unpack"],
            anon_vector,
        ),
        "secrets_file_not_json": (
            ["envelope", "--secrets", str(d / "not-json.json"), "unpack"],
            anon_vector,
        ),
        "secrets_file_not_an_array": (
            ["envelope", "--secrets", str(d / "not-array.json"), "unpack"],
            anon_vector,
        ),
        "secrets_file_broken_key": (
            [
                *("envelope", "--secrets", str(d / "broken-key.json"), "--did-docs", files.docs),
                *("pack", "signed", "--sign-from", f"{ALICE}#key-1"),
            ],
            message,
        ),
        "did_docs_file_not_json": (
            ["envelope", "--did-docs", str(d / "not-json.json"), "unpack"],
            anon_vector,
        ),
    }


BAD_INPUT_NAMES = [
    "unpack_not_json",
    "unpack_empty_stdin",
    "unpack_json_array",
    "unpack_tampered_ciphertext",
    "unpack_without_recipient_key",
    "unpack_unknown_sender_did",
    "pack_unknown_recipient",
    "pack_recipient_not_in_to",
    "pack_signed_without_secret",
    "pack_plaintext_not_an_object",
    "pack_plaintext_without_id",
    "secrets_file_missing",
    "secrets_file_not_json",
    "secrets_file_not_an_array",
    "secrets_file_broken_key",
    "did_docs_file_not_json",
]


@pytest.fixture(scope="module")
def bad_input_runs(didcommd_bin: Path, files: Files) -> dict[str, Run]:
    cases = bad_input_cases(files)
    assert sorted(cases) == sorted(BAD_INPUT_NAMES)
    jobs = [cases[name] for name in BAD_INPUT_NAMES]
    return dict(zip(BAD_INPUT_NAMES, run_all(didcommd_bin, jobs), strict=True))


@pytest.mark.parametrize("name", BAD_INPUT_NAMES)
def test_bad_input_fails_with_one_error_line(name: str, bad_input_runs: dict[str, Run]) -> None:
    assert_one_error_line(bad_input_runs[name])


def test_envelope_without_action_prints_usage(didcommd_bin: Path) -> None:
    run = run_one(didcommd_bin, ["envelope"], "")
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "pack" in run.stderr and "unpack" in run.stderr

"""DIF Presentation Exchange subset: definitions, paths, filters, matching, submissions."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DIDCommError
from protocols.presentation_exchange import (
    FORMAT_SD_JWT_VC,
    MAX_DESCRIPTORS,
    MAX_PATH_SEGMENTS,
    MAX_PATTERN_SUBJECT_CHARS,
    DefinitionError,
    Filter,
    NotSatisfiedError,
    SubmissionError,
    build_definition,
    build_submission,
    check_submission,
    constant_values,
    evaluate,
    format_path,
    has_path,
    match_claims,
    parse_definition,
    parse_path,
    requested_claims,
    resolve_path,
    satisfies,
)

PID = "https://example.org/pid"
ISSUER = "did:example:issuer"
CLAIMS = {
    "vct": PID,
    "iss": ISSUER,
    "given_name": "Erika",
    "birthdate": "1990-01-01",
    "age_over_18": True,
    "age": 35,
    "address": {"locality": "Berlin", "country": "DE"},
    "nationalities": ["DE", "FR"],
}


def definition(**kwargs: Any) -> Any:
    args: dict[str, Any] = {"definition_id": "d-1", "vct": PID, "claims": ["age_over_18"]}
    args.update(kwargs)
    return parse_definition(build_definition(**args))


# -- paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("$.name", ("name",)),
        ("$.a.b", ("a", "b")),
        ("$['name']", ("name",)),
        ('$["given name"]', ("given name",)),
        ("$.nationalities[1]", ("nationalities", 1)),
        ("$", ()),
    ],
)
def test_simple_paths_parse(text: str, path: tuple[Any, ...]) -> None:
    assert parse_path(text) == path
    assert parse_path(format_path(path)) == path


@pytest.mark.parametrize(
    "text",
    [
        "name",
        "$..name",
        "$.*",
        "$[*]",
        "$[?(@.a)]",
        "$['a\\'b']",
        "$.a[-1]",
        "$.a[0:2]",
        "$['']",
        "$." + ".x" * 5,
        "$" + ".x" * (MAX_PATH_SEGMENTS + 1),
        7,
        None,
    ],
)
def test_unsupported_paths_are_typed_errors(text: Any) -> None:
    with pytest.raises(DefinitionError):
        parse_path(text)


def test_resolve_path_tells_missing_from_null() -> None:
    doc = {"a": {"b": None}, "l": [1, 2]}
    assert resolve_path(doc, ("a", "b")) is None and has_path(doc, ("a", "b"))
    assert not has_path(doc, ("a", "c")) and not has_path(doc, ("l", 5))
    assert resolve_path(doc, ("l", 1)) == 2
    assert not has_path(doc, ("l", "x")) and not has_path(doc, ("a", 0))


# -- filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "boolean", "const": True}, [True], [False, 1, "true"]),
        ({"type": "integer", "minimum": 18}, [18, 99, 18.0], [17, 17.5, "20", True]),
        ({"type": "number", "maximum": 1.5}, [1, 1.5, -3], [1.6]),
        ({"exclusiveMinimum": 0, "exclusiveMaximum": 10}, [1, 9.9], [0, 10]),
        ({"enum": ["DE", "FR"]}, ["DE", "FR"], ["de", "US", None]),
        ({"type": "string", "pattern": "^19[0-9]{2}-"}, ["1990-01-01"], ["2001-01-01", 1990]),
        ({"minLength": 2, "maxLength": 3}, ["ab", "abc", 7], ["a", "abcd"]),
        ({"type": "object"}, [{"a": 1}], [[1], "x"]),
        ({"type": "array"}, [[]], [{}]),
        ({"type": "null"}, [None], [0, ""]),
        ({"const": 1}, [1, 1.0], [True, "1"]),
        ({"const": {"a": [1, True]}}, [{"a": [1, True]}], [{"a": [1, 1]}, {"a": [1]}]),
    ],
)
def test_filters_follow_json_schema(
    schema: dict[str, Any], good: list[Any], bad: list[Any]
) -> None:
    checked = Filter.parse(schema)
    assert all(checked.accepts(v) for v in good)
    assert not any(checked.accepts(v) for v in bad)


@pytest.mark.parametrize(
    "schema",
    [
        {"format": "date"},  # unknown keywords would accept more than asked
        {"type": "date"},
        {"minimum": "18"},
        {"minimum": float("nan")},
        {"enum": []},
        {"enum": list(range(100))},
        {"maxLength": -1},
        {"pattern": "(a+)+$"},
        {"pattern": "(a|aa)*b"},
        {"pattern": r"(\w)\1"},
        {"pattern": "(?P<x>a)(?P=x)"},
        {"pattern": "a*b*c*"},
        {"pattern": "x" * 200},
        {"pattern": "(unclosed"},
        {"const": "x" * 5000},
        {"const": [[[[[[1]]]]]]},
        [],
    ],
)
def test_unsupported_or_dangerous_filters_are_refused(schema: Any) -> None:
    with pytest.raises(DefinitionError):
        Filter.parse(schema)


def test_pattern_subjects_are_bounded() -> None:
    checked = Filter.parse({"pattern": "^a"})
    assert checked.accepts("a" * MAX_PATTERN_SUBJECT_CHARS)
    assert not checked.accepts("a" * (MAX_PATTERN_SUBJECT_CHARS + 1))


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_any_pattern_is_compiled_or_refused_with_a_typed_error(pattern: str) -> None:
    try:
        checked = Filter.parse({"pattern": pattern})
    except DefinitionError:
        return
    # What we accept runs: on a hostile subject it finishes (no error, no hang).
    checked.accepts("a" * MAX_PATTERN_SUBJECT_CHARS + "!")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(
            ["type", "const", "enum", "minimum", "maximum", "pattern", "minLength", "x"]
        ),
        json_values,
        max_size=4,
    ),
    json_values,
)
def test_random_filters_and_values_never_crash(schema: dict[str, Any], value: Any) -> None:
    try:
        checked = Filter.parse(schema)
    except DefinitionError:
        return
    assert checked.accepts(value) in (True, False)


@settings(max_examples=200)
@given(st.integers(-100, 100), st.integers(0, 60))
def test_minimum_matches_python_comparison(age: int, minimum: int) -> None:
    checked = Filter.parse({"type": "integer", "minimum": minimum})
    assert checked.accepts(age) == (age >= minimum)


# -- definitions ---------------------------------------------------------------------


def test_built_definition_has_the_pe_shape() -> None:
    raw = build_definition(
        definition_id="d-1",
        vct=PID,
        claims=["age_over_18"],
        issuers=[ISSUER],
        filters={"age_over_18": {"const": True}},
    )
    (descriptor,) = raw["input_descriptors"]
    assert FORMAT_SD_JWT_VC in descriptor["format"]
    assert descriptor["constraints"]["limit_disclosure"] == "required"
    assert descriptor["constraints"]["fields"] == [
        {"path": ["$.vct"], "filter": {"type": "string", "const": PID}},
        {"path": ["$.iss"], "filter": {"type": "string", "enum": [ISSUER]}},
        {"path": ["$.age_over_18"], "filter": {"const": True}},
    ]
    parsed = parse_definition(raw)
    assert requested_claims(parsed) == ["age_over_18"]
    assert constant_values(parsed, "vct") == [PID]
    assert constant_values(parsed, "iss") == [ISSUER]


def test_filters_must_name_requested_claims() -> None:
    with pytest.raises(DefinitionError):
        build_definition(definition_id="d", vct=None, claims=["a"], filters={"b": {}})
    with pytest.raises(DefinitionError):
        build_definition(definition_id="d", vct=None, claims=["a"], filters={"a": {"x": 1}})


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"id": "d"},
        {"id": "d", "input_descriptors": []},
        {"id": "d", "input_descriptors": [{"id": "x"}] * (MAX_DESCRIPTORS + 1)},
        {"id": "d", "input_descriptors": [{"id": "x"}, {"id": "x"}]},
        {"id": "d", "input_descriptors": [{"id": "x", "format": {"ldp_vc": {}}}]},
        {"id": "d", "input_descriptors": [{"id": "x", "constraints": {"limit_disclosure": 1}}]},
        {"id": "d", "input_descriptors": [{"id": "x", "constraints": {"fields": [{"path": []}]}}]},
        {
            "id": "d",
            "input_descriptors": [{"id": "x", "constraints": {"fields": [{"path": ["$"]}]}}],
        },
        {"id": "d", "input_descriptors": [{"id": "x", "constraints": {"fields": "x"}}]},
        {"id": "x" * 1000, "input_descriptors": [{"id": "x"}]},
    ],
)
def test_malformed_definitions_are_typed_errors(raw: Any) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(raw)
    assert info.value.problem_code == "e.p.msg.invalid-body"


# -- matching and evaluation ---------------------------------------------------------


def test_match_says_what_to_disclose() -> None:
    (match,) = match_claims(
        definition(claims=["age_over_18", "address"]), CLAIMS, format=FORMAT_SD_JWT_VC
    )
    assert match.disclose == ("age_over_18", "address")  # never vct/iss: always visible


def test_nested_paths_disclose_the_top_claim() -> None:
    raw = build_definition(definition_id="d", vct=None, claims=[])
    raw["input_descriptors"][0]["constraints"]["fields"] = [
        {"path": ["$.address.country"], "filter": {"const": "DE"}}
    ]
    (match,) = match_claims(parse_definition(raw), CLAIMS, format=FORMAT_SD_JWT_VC)
    assert match.disclose == ("address",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vct": "https://example.org/other"},
        {"issuers": ["did:example:someone-else"]},
        {"claims": ["shoe_size"]},
        {"claims": ["age"], "filters": {"age": {"minimum": 65}}},
        {"claims": ["birthdate"], "filters": {"birthdate": {"pattern": "^2"}}},
    ],
)
def test_unmet_definitions_are_not_satisfied(kwargs: dict[str, Any]) -> None:
    defn = definition(**kwargs)
    assert not satisfies(defn, CLAIMS, format=FORMAT_SD_JWT_VC)
    with pytest.raises(NotSatisfiedError) as info:
        match_claims(defn, CLAIMS, format=FORMAT_SD_JWT_VC)
    assert info.value.problem_code.startswith("e.p.")


def test_optional_fields_may_be_missing() -> None:
    raw = build_definition(definition_id="d", vct=None, claims=["age_over_18"])
    raw["input_descriptors"][0]["constraints"]["fields"].append(
        {"path": ["$.shoe_size"], "optional": True}
    )
    assert satisfies(parse_definition(raw), CLAIMS, format=FORMAT_SD_JWT_VC)


def test_other_formats_are_not_matched() -> None:
    assert not satisfies(definition(), CLAIMS, format="jwt_vc_json")


def test_evaluate_keeps_only_what_was_asked() -> None:
    defn = definition(claims=["age_over_18"])
    assert evaluate(defn.descriptors[0], CLAIMS) == {"age_over_18": True}
    with pytest.raises(NotSatisfiedError):
        evaluate(defn.descriptors[0], {"vct": PID, "iss": ISSUER})


@settings(max_examples=200)
@given(
    st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), json_values, max_size=6),
    st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=4, unique=True),
)
def test_match_and_evaluate_agree(claims: dict[str, Any], wanted: list[str]) -> None:
    claims = {**claims, "vct": PID, "iss": ISSUER}
    defn = definition(claims=wanted, issuers=[ISSUER])
    ok = satisfies(defn, claims, format=FORMAT_SD_JWT_VC)
    assert ok == all(name in claims for name in wanted if name not in ("vct", "iss"))
    if ok:
        (match,) = match_claims(defn, claims, format=FORMAT_SD_JWT_VC)
        disclosed = {name: claims[name] for name in match.disclose}
        # What the holder discloses is exactly enough for the verifier.
        kept = evaluate(defn.descriptors[0], {**disclosed, "vct": PID, "iss": ISSUER})
        assert set(kept) == set(match.disclose)


# -- submissions ---------------------------------------------------------------------


def test_submission_round_trip() -> None:
    defn = definition()
    raw = build_submission(defn, submission_id="s-1", path="$.vp_token", format=FORMAT_SD_JWT_VC)
    (entry,) = check_submission(defn, raw)
    assert entry.descriptor.id == "credential" and entry.path == ("vp_token",)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.update(definition_id="other"),
        lambda s: s.update(descriptor_map=[]),
        lambda s: s["descriptor_map"].append(dict(s["descriptor_map"][0])),
        lambda s: s["descriptor_map"][0].update(id="nope"),
        lambda s: s["descriptor_map"][0].update(format="ldp_vp"),
        lambda s: s["descriptor_map"][0].update(path="$..x"),
        lambda s: s["descriptor_map"][0].update(path_nested={"path": "$"}),
        lambda s: s.pop("id"),
    ],
)
def test_bad_submissions_are_typed_errors(change: Any) -> None:
    defn = definition()
    raw = build_submission(defn, submission_id="s-1", path="$.vp_token", format=FORMAT_SD_JWT_VC)
    change(raw)
    with pytest.raises(SubmissionError):
        check_submission(defn, raw)


@settings(max_examples=300)
@given(json_values)
def test_random_definitions_and_submissions_never_crash(raw: Any) -> None:
    for candidate in (raw, {"id": "d", "input_descriptors": raw}):
        with contextlib.suppress(DIDCommError):
            parse_definition(candidate)
    with contextlib.suppress(DIDCommError):
        check_submission(definition(), raw)


def test_error_messages_never_echo_long_input() -> None:
    with pytest.raises(DefinitionError) as info:
        Filter.parse({"x" * 10_000: 1})
    assert len(str(info.value)) < 200
    assert re.search("x{65}", str(info.value)) is None

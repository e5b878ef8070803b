"""DIF Presentation Exchange 2.0, the subset present-proof 3.0 needs for SD-JWT VCs and Data Integrity VCs.

Theory of operation
-------------------
A verifier says what it wants as a ``presentation_definition``: one or more
``input_descriptors``, each naming the credential ``format`` it accepts
(``{"dc+sd-jwt": {...}}``) and ``constraints``: ``limit_disclosure:
"required"`` (disclose nothing beyond the fields) and ``fields``, each a list
of JSONPaths into the credential's claims and an optional ``filter`` (a
JSON-Schema subset) the value must pass.  The credential type and the
accepted issuers are fields too (``$.vct`` with ``const``, ``$.iss`` with
``enum``), as PE does it, so there is one mechanism for every condition.

The prover answers with a ``presentation_submission``: for each descriptor,
``{"id", "format", "path"}``, the path locating the presentation inside the
attachment that carries the submission.

Everything here reads untrusted input: every container and string has a
named limit, and every failure is a typed error:
:class:`DefinitionError` / :class:`SubmissionError` (malformed, scope ``p``:
the thread cannot go on) and :class:`NotSatisfiedError` (well-formed, but
the claims do not meet the definition).

Supported, deliberately small:

- JSONPath: ``$``, then ``.name``, ``['name']`` / ``["name"]`` (no escapes)
  and ``[n]``; no wildcards, filters, slices or recursive descent.
- ``filter`` keywords: ``type`` (string, number, integer, boolean, array,
  object, null), ``const``, ``enum``, ``minimum``, ``maximum``,
  ``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``, ``maxLength``,
  ``pattern``.  Any other keyword is refused (ignoring it would accept more
  than the verifier asked for).  A ``pattern`` is a Python ``re`` searched
  (not anchored, as JSON Schema says) in a string of at most
  ``MAX_PATTERN_SUBJECT_CHARS``; patterns that invite catastrophic
  backtracking (a quantified group that itself holds a quantifier or an
  alternation, back-references, more than ``MAX_UNBOUNDED_QUANTIFIERS``
  unbounded repeats) are refused when the definition is read.

Two credential formats (the DIF PE 2.1 claim-format designations):

- ``dc+sd-jwt``: an SD-JWT VC; the holder discloses claim by claim, so it
  can honour ``limit_disclosure: "required"``.
- ``di_vc`` (credential) / ``di_vp`` (presentation): a W3C VC Data Model 2.0
  credential with an embedded Data Integrity proof, in a presentation with
  its own; the format object says ``{"proof_type": ["DataIntegrityProof"],
  "cryptosuite": ["eddsa-jcs-2022"]}`` (a descriptor asking for other
  cryptosuites only is refused: we could not answer it).  Such a
  credential is presented WHOLE (its proof covers every claim), so it never
  matches a descriptor with ``limit_disclosure: "required"``.  A
  descriptor that accepts one of ``di_vc``/``di_vp`` accepts both: the
  submission names the presentation (``di_vp``), the descriptor the
  credential inside it.

The fields' paths address one *claims view* for both formats: the claims
at the top, ``$.vct`` the credential type and ``$.iss`` the issuer (for a
``di_vc``: ``credentialSubject``'s members, the ``type`` after
``VerifiableCredential``, and ``issuer``), so one definition can accept
either format.

API: :func:`build_definition`, :func:`parse_definition`,
:func:`match_claims` (holder side: which claims to disclose),
:func:`evaluate` (verifier side: do the disclosed claims pass),
:func:`build_submission`, :func:`check_submission`, :func:`resolve_path`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DIDCommError
from .protocol_errors import InvalidBodyError

#: The SD-JWT VC format identifier (SD-JWT VC draft 06+; OpenID4VC's ``dc+sd-jwt``).
FORMAT_SD_JWT_VC = "dc+sd-jwt"
#: The identifier drafts before 06 used; read as the same format.
FORMAT_SD_JWT_VC_LEGACY = "vc+sd-jwt"
SD_JWT_FORMATS = frozenset({FORMAT_SD_JWT_VC, FORMAT_SD_JWT_VC_LEGACY})
#: DIF PE 2.1 designations of a Data Integrity credential and presentation.
FORMAT_DI_VC = "di_vc"
FORMAT_DI_VP = "di_vp"
DI_FORMATS = frozenset({FORMAT_DI_VC, FORMAT_DI_VP})
#: What a ``di_vc``/``di_vp`` format object asks for (what protocols.data_integrity does).
DI_PROOF_TYPE = "DataIntegrityProof"
DI_CRYPTOSUITE = "eddsa-jcs-2022"
#: Formats a request may accept, by the names the daemon uses.
SELECTIVE_FORMATS = SD_JWT_FORMATS
#: Signature algorithms we ask for (what ``protocols.keys`` signs with).
ALGORITHMS = ("EdDSA", "ES256", "ES384", "ES256K")

#: Most input descriptors in one definition.
MAX_DESCRIPTORS = 8
#: Most fields in one descriptor's constraints.
MAX_FIELDS = 32
#: Most alternative paths in one field.
MAX_PATHS_PER_FIELD = 4
#: Longest JSONPath expression.
MAX_PATH_CHARS = 256
#: Most segments after ``$`` in one path.
MAX_PATH_SEGMENTS = 8
#: Largest array index in a path.
MAX_PATH_INDEX = 1024
#: Longest id, name or purpose string.
MAX_TEXT_CHARS = 256
#: Most values in a filter's ``enum``.
MAX_ENUM_VALUES = 64
#: Longest ``pattern``.
MAX_PATTERN_CHARS = 128
#: Longest string a ``pattern`` is run against (longer values fail the filter).
MAX_PATTERN_SUBJECT_CHARS = 256
#: Most unbounded repeats (``*``, ``+``, ``{n,}``, ``{n,m}`` with m > MAX_BOUNDED_REPEAT).
MAX_UNBOUNDED_QUANTIFIERS = 2
#: A ``{n,m}`` with ``m`` above this counts as unbounded.
MAX_BOUNDED_REPEAT = 16
#: Longest string in a filter's ``const``/``enum`` (and their nesting depth).
MAX_FILTER_VALUE_CHARS = 1024
MAX_FILTER_VALUE_DEPTH = 4
#: Most entries in a submission's descriptor map.
MAX_DESCRIPTOR_MAP = MAX_DESCRIPTORS

#: The claims an SD-JWT VC always shows (never selectively disclosed, never asked for).
ALWAYS_VISIBLE = frozenset({"iss", "vct", "iat", "exp", "nbf", "cnf", "status"})

_FILTER_KEYWORDS = frozenset(
    {
        "type",
        "const",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
    }
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_QUOTED = re.compile(r"\[(?:'([^'\\]*)'|\"([^\"\\]*)\")\]")
_INDEX = re.compile(r"\[(0|[1-9][0-9]{0,5})\]")


class DefinitionError(InvalidBodyError):
    """A presentation definition is malformed or uses what we do not support."""


class SubmissionError(InvalidBodyError):
    """A presentation submission is malformed or does not answer the definition."""


class NotSatisfiedError(DIDCommError):
    """The claims do not meet the definition (a value missing or failing its filter)."""

    problem_code = "e.p.req.not-satisfied"


# -- JSONPath ---------------------------------------------------------------------

Path = tuple[str | int, ...]


def parse_path(text: object, error: type[DIDCommError] = DefinitionError) -> Path:
    """``$.a.b`` / ``$['a']`` / ``$.a[0]`` -> ``("a", "b")``; ``error`` if unsupported."""
    if not isinstance(text, str) or not text.startswith("$") or len(text) > MAX_PATH_CHARS:
        raise error("a path must be a JSONPath string starting with '$'")
    segments: list[str | int] = []
    pos = 1
    while pos < len(text):
        if len(segments) >= MAX_PATH_SEGMENTS:
            raise error(f"a path has more than {MAX_PATH_SEGMENTS} segments")
        if text[pos] == ".":
            name = _NAME.match(text, pos + 1)
            if name is None:
                raise error("a path has an unsupported '.' segment")
            segments.append(name.group(0))
            pos = name.end()
            continue
        quoted = _QUOTED.match(text, pos)
        if quoted is not None:
            value = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
            if not value:
                raise error("a path has an empty name")
            segments.append(value)
            pos = quoted.end()
            continue
        index = _INDEX.match(text, pos)
        if index is not None and int(index.group(1)) <= MAX_PATH_INDEX:
            segments.append(int(index.group(1)))
            pos = index.end()
            continue
        raise error("a path uses JSONPath we do not support (only names and indices)")
    return tuple(segments)


def format_path(path: Path) -> str:
    """The JSONPath text of a parsed path (``$.a.b``, or ``$['a b']`` when needed)."""
    out = "$"
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif _NAME.fullmatch(segment):
            out += f".{segment}"
        else:
            out += f"['{segment}']"
    return out


_MISSING = object()


def resolve_path(document: Any, path: Path) -> Any:
    """The value at ``path`` in ``document``; a private sentinel when nothing is
    there (``None`` is a value), so test presence with :func:`has_path`."""
    value = document
    for segment in path:
        if isinstance(segment, int):
            if not isinstance(value, list) or segment >= len(value):
                return _MISSING
            value = value[segment]
        else:
            if not isinstance(value, Mapping) or segment not in value:
                return _MISSING
            value = value[segment]
    return value


def has_path(document: Any, path: Path) -> bool:
    """Whether ``path`` leads somewhere in ``document``."""
    return resolve_path(document, path) is not _MISSING


# -- filters ------------------------------------------------------------------------


def _check_pattern(pattern: object) -> re.Pattern[str]:
    """Compile a filter pattern, refusing what could backtrack catastrophically."""
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_CHARS:
        raise DefinitionError(f"a filter pattern must be a string of at most {MAX_PATTERN_CHARS}")
    # One pass over the pattern: per open group, whether it holds a quantifier
    # or an alternation; a quantifier right after ')' on such a group is the
    # (a+)+ / (a|a)* shape that makes backtracking exponential.
    groups: list[bool] = []
    last_group_risky = False
    unbounded = 0
    in_class = False
    pos = 0
    while pos < len(pattern):
        char = pattern[pos]
        after_group = last_group_risky
        last_group_risky = False
        if char == "\\":
            nxt = pattern[pos + 1 : pos + 2]
            if nxt.isdigit() and nxt != "0" and not in_class:
                raise DefinitionError("filter patterns may not use back-references")
            pos += 2
            continue
        if in_class:
            in_class = char != "]"
            pos += 1
            continue
        if char == "[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal.
            if pattern[pos + 1 : pos + 2] == "^":
                pos += 1
            if pattern[pos + 1 : pos + 2] == "]":
                pos += 1
        elif char == "(":
            if pattern.startswith("(?P=", pos):
                raise DefinitionError("filter patterns may not use back-references")
            groups.append(False)
        elif char == ")":
            if groups:
                risky = groups.pop()
                last_group_risky = risky
                if groups and risky:
                    groups[-1] = True
        elif char == "|":
            if groups:
                groups[-1] = True
        elif char in "*+?{":
            bound = 0
            if char == "{":
                close = pattern.find("}", pos)
                body = pattern[pos + 1 : close] if close > 0 else ""
                if not re.fullmatch(r"\d{1,3}(,\d{0,3})?", body):
                    pos += 1
                    continue  # a literal '{', as Python reads it
                low, _, high = body.partition(",")
                bound = int(high) if high else (int(low) if "," not in body else -1)
                pos = close
            is_unbounded = char in "*+" or bound < 0 or bound > MAX_BOUNDED_REPEAT
            if after_group and (is_unbounded or bound > 1):
                raise DefinitionError("filter patterns may not repeat a group that repeats")
            if is_unbounded:
                unbounded += 1
                if unbounded > MAX_UNBOUNDED_QUANTIFIERS:
                    raise DefinitionError(
                        f"a filter pattern has more than {MAX_UNBOUNDED_QUANTIFIERS} "
                        "unbounded repeats"
                    )
            if groups:
                groups[-1] = True
        pos += 1
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        raise DefinitionError("a filter pattern is not a valid regular expression") from None


def _check_value(value: Any, depth: int = 0) -> None:
    """A filter's ``const``/``enum`` value: plain JSON, bounded."""
    if depth > MAX_FILTER_VALUE_DEPTH:
        raise DefinitionError("a filter value nests too deep")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DefinitionError("a filter number must be finite")
        return
    if isinstance(value, str):
        if len(value) > MAX_FILTER_VALUE_CHARS:
            raise DefinitionError("a filter string is too long")
        return
    if isinstance(value, list) and len(value) <= MAX_ENUM_VALUES:
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, dict) and len(value) <= MAX_ENUM_VALUES:
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > MAX_TEXT_CHARS:
                raise DefinitionError("a filter object key is invalid")
            _check_value(item, depth + 1)
        return
    raise DefinitionError("a filter value is not plain bounded JSON")


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionError(f"filter {name!r} must be a number")
    if not math.isfinite(value):
        raise DefinitionError(f"filter {name!r} must be finite")
    return float(value)


@dataclass(frozen=True)
class Filter:
    """A checked JSON-Schema subset; :meth:`accepts` decides a value."""

    schema: Mapping[str, Any]
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, raw: object) -> Filter:
        """Check a filter object; :class:`DefinitionError` if unsupported or unbounded."""
        if not isinstance(raw, dict):
            raise DefinitionError("a field filter must be an object")
        unknown = set(raw) - _FILTER_KEYWORDS
        if unknown:
            raise DefinitionError(
                f"unsupported filter keyword {sorted(map(str, unknown))[0][:64]!r}"
            )
        kind = raw.get("type")
        if kind is not None and (not isinstance(kind, str) or kind not in _TYPES):
            raise DefinitionError("filter 'type' must be a JSON-Schema type name")
        if "const" in raw:
            _check_value(raw["const"])
        if "enum" in raw:
            values = raw["enum"]
            if not isinstance(values, list) or not 0 < len(values) <= MAX_ENUM_VALUES:
                raise DefinitionError(f"filter 'enum' must list 1 to {MAX_ENUM_VALUES} values")
            for value in values:
                _check_value(value)
        for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if name in raw:
                _number(raw[name], name)
        for name in ("minLength", "maxLength"):
            if name in raw:
                value = raw[name]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise DefinitionError(f"filter {name!r} must be a non-negative integer")
        pattern = _check_pattern(raw["pattern"]) if "pattern" in raw else None
        return cls(dict(raw), pattern)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` passes every keyword (JSON-Schema semantics)."""
        schema = self.schema
        kind = schema.get("type")
        if kind is not None and not _has_type(value, kind):
            return False
        if "const" in schema and not _json_equal(value, schema["const"]):
            return False
        if "enum" in schema and not any(_json_equal(value, v) for v in schema["enum"]):
            return False
        if _is_number(value):
            if "minimum" in schema and value < schema["minimum"]:
                return False
            if "maximum" in schema and value > schema["maximum"]:
                return False
            if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
                return False
            if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
                return False
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                return False
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                return False
            if self.pattern is not None:
                if len(value) > MAX_PATTERN_SUBJECT_CHARS:
                    return False
                if self.pattern.search(value) is None:
                    return False
        return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return _is_number(value) and float(value).is_integer()
    if kind == "number":
        return _is_number(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return value is None


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


# -- definitions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One constraint: the first of ``paths`` that resolves must pass ``filter``."""

    paths: tuple[Path, ...]
    filter: Filter | None = None
    optional: bool = False

    def find(self, claims: Mapping[str, Any]) -> tuple[Path, Any] | None:
        """The first path that resolves in ``claims`` and its value, or None."""
        for path in self.paths:
            value = resolve_path(claims, path)
            if value is not _MISSING:
                return path, value
        return None


@dataclass(frozen=True)
class InputDescriptor:
    """What one credential must show."""

    id: str
    formats: frozenset[str]
    limit_disclosure: bool
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class PresentationDefinition:
    """A checked ``presentation_definition`` (``raw`` is the JSON it came from)."""

    id: str
    descriptors: tuple[InputDescriptor, ...]
    raw: Mapping[str, Any]


def _text(raw: Mapping[str, Any], key: str, error: type[DIDCommError]) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT_CHARS:
        raise error(f"{key!r} must be a string of 1 to {MAX_TEXT_CHARS} characters")
    return value


def _parse_field(raw: object) -> Field:
    if not isinstance(raw, dict):
        raise DefinitionError("a constraints field must be an object")
    paths = raw.get("path")
    if not isinstance(paths, list) or not 0 < len(paths) <= MAX_PATHS_PER_FIELD:
        raise DefinitionError(f"a field 'path' must list 1 to {MAX_PATHS_PER_FIELD} JSONPaths")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise DefinitionError("a field's 'optional' must be a boolean")
    parsed = tuple(parse_path(p) for p in paths)
    if any(not p for p in parsed):
        raise DefinitionError("a field path must name a claim, not '$' itself")
    filt = Filter.parse(raw["filter"]) if "filter" in raw else None
    return Field(parsed, filt, optional)


def _parse_descriptor(raw: object) -> InputDescriptor:
    if not isinstance(raw, dict):
        raise DefinitionError("an input descriptor must be an object")
    descriptor_id = _text(raw, "id", DefinitionError)
    formats = raw.get("format", {FORMAT_SD_JWT_VC: {}})
    if not isinstance(formats, dict) or not formats:
        raise DefinitionError("an input descriptor's 'format' must be an object")
    accepted = frozenset(f for f in formats if f in SD_JWT_FORMATS)
    if any(f in DI_FORMATS and _di_usable(formats[f]) for f in formats):
        accepted |= DI_FORMATS
    if not accepted:
        raise DefinitionError("an input descriptor must accept the dc+sd-jwt or di_vc format")
    constraints = raw.get("constraints", {})
    if not isinstance(constraints, dict):
        raise DefinitionError("'constraints' must be an object")
    limit = constraints.get("limit_disclosure")
    if limit not in (None, "required", "preferred"):
        raise DefinitionError("'limit_disclosure' must be 'required' or 'preferred'")
    fields = constraints.get("fields", [])
    if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
        raise DefinitionError(f"'fields' must be a list of at most {MAX_FIELDS}")
    return InputDescriptor(
        id=descriptor_id,
        formats=accepted,
        limit_disclosure=limit == "required",
        fields=tuple(_parse_field(f) for f in fields),
    )


def _di_usable(options: object) -> bool:
    """Whether a ``di_vc``/``di_vp`` format object admits our proof type and cryptosuite."""
    if not isinstance(options, dict):
        raise DefinitionError("a format's options must be an object")
    for key, ours in (("proof_type", DI_PROOF_TYPE), ("cryptosuite", DI_CRYPTOSUITE)):
        values = options.get(key)
        if values is not None and (not isinstance(values, list) or ours not in values):
            return False
    return True


def di_format_options() -> dict[str, Any]:
    """The ``di_vc``/``di_vp`` format object we ask for."""
    return {"proof_type": [DI_PROOF_TYPE], "cryptosuite": [DI_CRYPTOSUITE]}


def parse_definition(raw: object) -> PresentationDefinition:
    """Check a received ``presentation_definition``; :class:`DefinitionError` if unusable."""
    if not isinstance(raw, dict):
        raise DefinitionError("a presentation definition must be an object")
    definition_id = _text(raw, "id", DefinitionError)
    descriptors = raw.get("input_descriptors")
    if not isinstance(descriptors, list) or not 0 < len(descriptors) <= MAX_DESCRIPTORS:
        raise DefinitionError(f"'input_descriptors' must list 1 to {MAX_DESCRIPTORS} descriptors")
    parsed = tuple(_parse_descriptor(d) for d in descriptors)
    if len({d.id for d in parsed}) != len(parsed):
        raise DefinitionError("input descriptor ids must be unique")
    return PresentationDefinition(definition_id, parsed, raw)


def build_definition(
    *,
    definition_id: str,
    vct: str | None,
    claims: Sequence[str],
    issuers: Sequence[str] | None = None,
    filters: Mapping[str, Mapping[str, Any]] | None = None,
    descriptor_id: str = "credential",
    formats: Sequence[str] = (FORMAT_SD_JWT_VC,),
) -> dict[str, Any]:
    """A one-descriptor definition: a credential in one of ``formats`` of type
    ``vct`` (any when None), from one of ``issuers`` (any when None), showing
    ``claims``, each passing ``filters[name]`` when given.  Checked by
    :func:`parse_definition` before it is returned, so a bad filter fails
    here, not at the prover.

    ``limit_disclosure`` is ``"required"`` only when every accepted format can
    disclose selectively (SD-JWT); with ``di_vc`` accepted it is
    ``"preferred"``: an SD-JWT is still cut down, a Data Integrity
    credential is shown whole.
    """
    filters = filters or {}
    known = SD_JWT_FORMATS | DI_FORMATS
    if not formats or any(f not in known for f in formats):
        raise DefinitionError(f"formats must be among {sorted(known)}")
    format_objects: dict[str, Any] = {}
    for fmt in dict.fromkeys(formats):
        if fmt in SD_JWT_FORMATS:
            format_objects[FORMAT_SD_JWT_VC] = {
                "sd-jwt_alg_values": list(ALGORITHMS),
                "kb-jwt_alg_values": list(ALGORITHMS),
            }
        else:
            format_objects[FORMAT_DI_VC] = di_format_options()
            format_objects[FORMAT_DI_VP] = di_format_options()
    selective = all(f in SELECTIVE_FORMATS for f in formats)
    unknown = set(filters) - set(claims)
    if unknown:
        raise DefinitionError(f"a filter names a claim not requested: {sorted(unknown)[0]!r}")
    fields: list[dict[str, Any]] = []
    if vct is not None:
        fields.append({"path": ["$.vct"], "filter": {"type": "string", "const": vct}})
    if issuers is not None:
        fields.append({"path": ["$.iss"], "filter": {"type": "string", "enum": list(issuers)}})
    for name in claims:
        entry: dict[str, Any] = {"path": [format_path((name,))]}
        if name in filters:
            entry["filter"] = dict(filters[name])
        fields.append(entry)
    definition = {
        "id": definition_id,
        "input_descriptors": [
            {
                "id": descriptor_id,
                "format": format_objects,
                "constraints": {
                    "limit_disclosure": "required" if selective else "preferred",
                    "fields": fields,
                },
            }
        ],
    }
    parse_definition(definition)
    return definition


# -- matching and evaluation ----------------------------------------------------------


@dataclass(frozen=True)
class DescriptorMatch:
    """A credential meets a descriptor; ``disclose`` is what the holder must reveal."""

    descriptor_id: str
    disclose: tuple[str, ...]
    values: Mapping[str, Any]


def _check_fields(descriptor: InputDescriptor, claims: Mapping[str, Any]) -> DescriptorMatch:
    disclose: list[str] = []
    values: dict[str, Any] = {}
    for constraint in descriptor.fields:
        found = constraint.find(claims)
        if found is None:
            if constraint.optional:
                continue
            raise NotSatisfiedError(
                f"descriptor {descriptor.id!r}: no claim at {format_path(constraint.paths[0])}"
            )
        path, value = found
        if constraint.filter is not None and not constraint.filter.accepts(value):
            raise NotSatisfiedError(
                f"descriptor {descriptor.id!r}: {format_path(path)} fails its filter"
            )
        top = path[0]
        if isinstance(top, str):
            if top not in ALWAYS_VISIBLE and top not in disclose:
                disclose.append(top)
            values[top] = claims[top]
    return DescriptorMatch(descriptor.id, tuple(disclose), values)


def match_claims(
    definition: PresentationDefinition, claims: Mapping[str, Any], *, format: str
) -> list[DescriptorMatch]:
    """Holder side: a credential (all its claims, ``vct``/``iss`` included) against
    every descriptor; :class:`NotSatisfiedError` if any one is not met.

    With one credential per presentation (what present-proof does here), every
    descriptor must be met by this credential.
    """
    matches = []
    for descriptor in definition.descriptors:
        if format not in descriptor.formats:
            raise NotSatisfiedError(f"descriptor {descriptor.id!r} does not accept {format!r}")
        if format in DI_FORMATS and descriptor.limit_disclosure:
            # A Data Integrity proof covers every claim: the whole credential
            # would be shown where the verifier asked for no more than the fields.
            raise NotSatisfiedError(
                f"descriptor {descriptor.id!r} requires limited disclosure, which {format} cannot do"
            )
        matches.append(_check_fields(descriptor, claims))
    return matches


def satisfies(
    definition: PresentationDefinition, claims: Mapping[str, Any], *, format: str
) -> bool:
    """Whether :func:`match_claims` would succeed."""
    try:
        match_claims(definition, claims, format=format)
    except NotSatisfiedError:
        return False
    return True


def evaluate(descriptor: InputDescriptor, disclosed: Mapping[str, Any]) -> dict[str, Any]:
    """Verifier side: the verified, disclosed claims against one descriptor.

    Returns the claims the descriptor asked for (those the verifier may keep:
    with ``limit_disclosure`` anything else disclosed is dropped, not kept);
    :class:`NotSatisfiedError` when a required one is missing or fails.
    """
    match = _check_fields(descriptor, disclosed)
    if descriptor.limit_disclosure:
        return {k: v for k, v in match.values.items() if k not in ALWAYS_VISIBLE}
    return {k: v for k, v in disclosed.items() if k not in ALWAYS_VISIBLE}


def requested_values(descriptor: InputDescriptor, shown: Mapping[str, Any]) -> dict[str, Any]:
    """Verifier side: only the claims the descriptor's fields name, whatever else
    ``shown`` holds (a whole Data Integrity credential shows everything);
    :class:`NotSatisfiedError` as :func:`evaluate`."""
    match = _check_fields(descriptor, shown)
    return {k: v for k, v in match.values.items() if k not in ALWAYS_VISIBLE}


def discloses(definition: PresentationDefinition) -> str:
    """What answering ``definition`` may show: ``"selected"`` claims, or the
    ``"whole credential"`` (a descriptor accepts di_vc without requiring limits)."""
    for descriptor in definition.descriptors:
        if FORMAT_DI_VC in descriptor.formats and not descriptor.limit_disclosure:
            return "whole credential"
    return "selected"


def accepted_formats(definition: PresentationDefinition) -> list[str]:
    """The credential formats every descriptor accepts (``dc+sd-jwt``, ``di_vc``)."""
    out = []
    for fmt in (FORMAT_SD_JWT_VC, FORMAT_DI_VC):
        if all(fmt in d.formats for d in definition.descriptors):
            out.append(fmt)
    return out


# -- submissions ----------------------------------------------------------------------


def build_submission(
    definition: PresentationDefinition, *, submission_id: str, path: str, format: str
) -> dict[str, Any]:
    """A ``presentation_submission`` mapping every descriptor to the one presentation at ``path``."""
    return {
        "id": submission_id,
        "definition_id": definition.id,
        "descriptor_map": [
            {"id": d.id, "format": format, "path": path} for d in definition.descriptors
        ],
    }


@dataclass(frozen=True)
class SubmissionEntry:
    """One checked descriptor-map entry."""

    descriptor: InputDescriptor
    format: str
    path: Path


def check_submission(definition: PresentationDefinition, raw: object) -> list[SubmissionEntry]:
    """Check a received submission against our definition: its ``definition_id``,
    one entry per descriptor (no more, no fewer), an accepted format each, and
    paths we can follow.  :class:`SubmissionError` otherwise."""
    if not isinstance(raw, dict):
        raise SubmissionError("'presentation_submission' must be an object")
    _text(raw, "id", SubmissionError)
    if raw.get("definition_id") != definition.id:
        raise SubmissionError("the submission answers another presentation definition")
    entries = raw.get("descriptor_map")
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_DESCRIPTOR_MAP:
        raise SubmissionError(f"'descriptor_map' must list 1 to {MAX_DESCRIPTOR_MAP} entries")
    by_id = {d.id: d for d in definition.descriptors}
    checked: dict[str, SubmissionEntry] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise SubmissionError("descriptor map entries must be objects")
        descriptor_id = _text(entry, "id", SubmissionError)
        descriptor = by_id.get(descriptor_id)
        if descriptor is None or descriptor_id in checked:
            raise SubmissionError("a descriptor map entry names an unknown or repeated descriptor")
        fmt = _text(entry, "format", SubmissionError)
        if fmt not in descriptor.formats:
            raise SubmissionError(f"descriptor {descriptor_id!r} does not accept format {fmt!r}")
        if "path_nested" in entry:
            raise SubmissionError("nested submission paths are not supported")
        path = parse_path(entry.get("path"), SubmissionError)
        checked[descriptor_id] = SubmissionEntry(descriptor, fmt, path)
    missing = set(by_id) - set(checked)
    if missing:
        raise SubmissionError(f"the submission does not answer descriptor {sorted(missing)[0]!r}")
    return [checked[d.id] for d in definition.descriptors]


def requested_claims(definition: PresentationDefinition) -> list[str]:
    """The claim names the definition asks to see (first path of each required field)."""
    names: list[str] = []
    for descriptor in definition.descriptors:
        for constraint in descriptor.fields:
            top = constraint.paths[0][0]
            if isinstance(top, str) and top not in ALWAYS_VISIBLE and top not in names:
                names.append(top)
    return names


def constant_values(definition: PresentationDefinition, claim: str) -> list[str] | None:
    """Values a descriptor's filter pins ``claim`` to (``$.vct`` const, ``$.iss`` enum), if any."""
    for descriptor in definition.descriptors:
        for constraint in descriptor.fields:
            if constraint.paths[0] == (claim,) and constraint.filter is not None:
                schema = constraint.filter.schema
                if isinstance(schema.get("const"), str):
                    return [schema["const"]]
                if isinstance(schema.get("enum"), list):
                    return [v for v in schema["enum"] if isinstance(v, str)]
    return None

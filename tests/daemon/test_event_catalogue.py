"""``docs/events.md`` is the catalogue of event kinds, and these tests keep it true:
every kind the code publishes has a ``### `kind` `` heading there, every heading
names a kind the code publishes, and every ``data`` member the code writes out by
name is mentioned under its kind's heading.

The kinds are read from the source with :mod:`ast`, not grep (calls span lines,
and kinds are named by constants, built by f-strings, or handed through helpers).
A *site* is

- the first argument (or ``kind=``) of a call of ``Event(...)`` or of any
  ``.publish(...)``, and of any function that hands one of its parameters on to
  such a call (``Agent.erase(erase, event, data)``, ``Discovery._publish_event``),
  found by following those parameters until nothing new turns up;
- the ``"kind"`` of an event dict written by hand (a dict with ``"seq"`` and
  ``"kind"`` keys: the ``overflow`` notice of ``daemon/events.py``).

A site's kinds are resolved: string constants; module-level names holding one (in
the module, like ``OVERFLOW`` in ``daemon/events.py``, or imported from another of
ours, by name or as ``module.NAME``); local assignments; both arms of ``a if c else b``; f-strings, whose placeholders are
expanded from their source of truth (:data:`EXPANSIONS`).  A site that cannot be
resolved must be listed in :data:`NOT_KINDS` with the reason; a new one fails.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Where events are published from (every ``.py`` below them).
SOURCE_DIRS = ("daemon", "protocols")
DOC = REPO / "docs" / "events.md"
#: The catalogue's convention: each kind is a level-3 heading of its own, ``### `kind` ``.
KIND_HEADING = re.compile(r"^### `([^`]+)`[ \t]*$", re.MULTILINE)
#: Any heading: where a kind's section ends.
ANY_HEADING = re.compile(r"^#{1,3} ", re.MULTILINE)


def _status_action_names() -> list[str]:
    from daemon.credentials import STATUS_ACTIONS

    return [action.done for action in STATUS_ACTIONS.values()]


#: f-string placeholders, by (file, placeholder source): their possible values,
#: read from the code that defines them.
EXPANSIONS: dict[tuple[str, str], Callable[[], Iterable[str]]] = {
    # f"credential.{action.done}": revoke / suspend / reinstate.
    ("daemon/credentials.py", "action.done"): _status_action_names,
}

#: Sites whose first argument is not a kind of its own: (file, source) -> why.
NOT_KINDS: dict[tuple[str, str], str] = {
    ("daemon/conversations.py", "event.kind"):
        "publishes the machines' Event objects, whose kinds are collected where they are built",
    ("daemon/credentials.py", "event.kind"):
        "a machine's Event again, without the credential or status list it carried",
    ("daemon/p2p/discovery.py", "did"):
        "Discovery.publish puts a DID's record in the DHT: not the event bus",
    ("daemon/store.py", "r[1]"):
        "events read back from the store (Store.events_since)",
}


@dataclass(frozen=True)
class _Sink:
    """Where a call takes an event's kind and data: position (or None) and keyword."""

    kind_pos: int | None
    kind_kw: str
    data_pos: int | None = None
    data_kw: str | None = None


#: Calls whose argument is an event kind (and where its data goes): name -> sink.
_BASE_SINKS = {
    "Event": _Sink(0, "kind", 2, "data"),  # Event(kind, thid, data)
    "publish": _Sink(0, "kind", 1, "data"),  # EventBus.publish(kind, data)
}

_Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass
class _Module:
    rel: str
    name: str
    is_package: bool
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    consts: dict[str, ast.expr] = field(default_factory=dict)
    #: Local name -> (module, attribute); attribute None for ``import module``.
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)


@dataclass
class _Resolved:
    kinds: set[str] = field(default_factory=set)
    #: Parameters of the enclosing function that the kind comes from.
    forwards: set[str] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)

    def add(self, other: _Resolved) -> None:
        self.kinds |= other.kinds
        self.forwards |= other.forwards
        self.unresolved += other.unresolved


@dataclass
class Site:
    """One place an event kind is given."""

    rel: str
    line: int
    source: str
    kinds: set[str]
    unresolved: list[str]
    #: The members of ``data`` written out by name (a dict literal), if any.
    data_keys: set[str]


@dataclass
class Catalogue:
    sites: list[Site]

    @property
    def kinds(self) -> set[str]:
        return {k for s in self.sites for k in s.kinds}

    def unresolved(self) -> set[tuple[str, str]]:
        return {(s.rel, u) for s in self.sites for u in s.unresolved}


def _module_name(rel: str) -> tuple[str, bool]:
    parts = rel[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _absolute(mod: _Module, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = mod.name.split(".")
    if not mod.is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _load(mod: _Module) -> None:
    for node in ast.walk(mod.tree):
        for child in ast.iter_child_nodes(node):
            mod.parents[child] = node
    for stmt in mod.tree.body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    mod.consts[target.id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            mod.consts[stmt.target.id] = stmt.value
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(mod, node.level, node.module)
            for alias in node.names:
                # ``from . import x`` may name a module as well as an attribute.
                mod.imports[alias.asname or alias.name] = (source, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    mod.imports[alias.asname] = (alias.name, None)
                else:
                    top = alias.name.split(".")[0]
                    mod.imports[top] = (top, None)


def _scope(mod: _Module, node: ast.AST) -> _Scope | None:
    parent = mod.parents.get(node)
    while parent is not None and not isinstance(parent, _Scope):
        parent = mod.parents.get(parent)
    return parent


def _params(scope: _Scope) -> list[str]:
    a = scope.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return names


def _call_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _argument(call: ast.Call, pos: int | None, kw: str | None) -> ast.expr | None:
    if pos is not None and len(call.args) > pos and not any(
        isinstance(a, ast.Starred) for a in call.args[: pos + 1]
    ):
        return call.args[pos]
    return next((k.value for k in call.keywords if kw is not None and k.arg == kw), None)


class _Collector:
    def __init__(self, sources: dict[str, str], expansions: dict[tuple[str, str], Callable[[], Iterable[str]]]):
        self.modules: dict[str, _Module] = {}
        for rel, text in sorted(sources.items()):
            name, is_package = _module_name(rel)
            mod = _Module(rel, name, is_package, ast.parse(text, filename=rel))
            _load(mod)
            self.modules[name] = mod
        self.expansions = expansions

    # -- resolving an expression to kinds ------------------------------------------------

    def resolve(self, mod: _Module, expr: ast.expr, scope: _Scope | None, depth: int = 0) -> _Resolved:
        out = _Resolved()
        if depth > 20:
            out.unresolved.append(ast.unparse(expr))
        elif isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            out.kinds.add(expr.value)
        elif isinstance(expr, ast.IfExp):
            out.add(self.resolve(mod, expr.body, scope, depth + 1))
            out.add(self.resolve(mod, expr.orelse, scope, depth + 1))
        elif isinstance(expr, ast.JoinedStr):
            out.add(self._fstring(mod, expr))
        elif isinstance(expr, ast.Name):
            out.add(self._name(mod, expr, scope, depth))
        elif isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            target = mod.imports.get(expr.value.id)
            module = None
            if target is not None:
                module = self.modules.get(target[0] if target[1] is None else f"{target[0]}.{target[1]}")
            if module is not None and expr.attr in module.consts:
                out.add(self.resolve(module, module.consts[expr.attr], None, depth + 1))
            else:
                out.unresolved.append(ast.unparse(expr))
        else:
            out.unresolved.append(ast.unparse(expr))
        return out

    def _name(self, mod: _Module, expr: ast.Name, scope: _Scope | None, depth: int) -> _Resolved:
        out = _Resolved()
        name = expr.id
        innermost = scope
        while scope is not None:
            if name in _params(scope):
                if scope is innermost:
                    out.forwards.add(name)
                else:  # a closure's: not followed
                    out.unresolved.append(name)
                return out
            bindings = [n for n in ast.walk(scope) if isinstance(n, ast.Name) and n.id == name
                        and isinstance(n.ctx, ast.Store) and _scope(mod, n) is scope]
            if bindings:
                for binding in bindings:
                    parent = mod.parents[binding]
                    value = parent.value if isinstance(parent, ast.Assign | ast.AnnAssign) else None
                    targets = (parent.targets if isinstance(parent, ast.Assign)
                               else [parent.target] if isinstance(parent, ast.AnnAssign) else [])
                    if binding in targets and value is not None:
                        out.add(self.resolve(mod, value, scope, depth + 1))
                    else:  # a loop variable, a with target...
                        out.unresolved.append(name)
                return out
            scope = _scope(mod, scope)
        if name in mod.consts:
            out.add(self.resolve(mod, mod.consts[name], None, depth + 1))
        elif name in mod.imports and mod.imports[name][1] is not None:
            source, attr = mod.imports[name]
            other = self.modules.get(source)
            if other is not None and attr in other.consts:
                out.add(self.resolve(other, other.consts[attr], None, depth + 1))
            else:
                out.unresolved.append(name)
        else:
            out.unresolved.append(name)
        return out

    def _fstring(self, mod: _Module, expr: ast.JoinedStr) -> _Resolved:
        out = _Resolved()
        choices: list[list[str]] = []
        for part in expr.values:
            if isinstance(part, ast.Constant):
                choices.append([str(part.value)])
                continue
            assert isinstance(part, ast.FormattedValue)
            key = (mod.rel, ast.unparse(part.value))
            if part.conversion != -1 or part.format_spec is not None or key not in self.expansions:
                out.unresolved.append(ast.unparse(expr))
                return out
            values = [str(v) for v in self.expansions[key]()]
            assert values, f"{key} expands to nothing"
            choices.append(values)
        out.kinds |= {"".join(p) for p in itertools.product(*choices)}
        return out

    # -- sites ----------------------------------------------------------------------------

    def _data_keys(self, expr: ast.expr | None) -> set[str]:
        if not isinstance(expr, ast.Dict):
            return set()
        return {k.value for k in expr.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}

    def _forwarder(self, mod: _Module, scope: _Scope | None, param: str, data: ast.expr | None) -> tuple[str, _Sink]:
        """The sink a function whose parameter ``param`` becomes a kind is."""
        assert isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef), f"{mod.rel}: a lambda forwards {param}"
        a = scope.args
        positional = [p.arg for p in (*a.posonlyargs, *a.args)]
        method = isinstance(mod.parents.get(scope), ast.ClassDef) and not any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in scope.decorator_list
        )
        if method:
            positional = positional[1:]
        data_param = data.id if isinstance(data, ast.Name) and data.id in _params(scope) else None
        return scope.name, _Sink(
            positional.index(param) if param in positional else None, param,
            positional.index(data_param) if data_param in positional else None, data_param,
        )

    def collect(self) -> Catalogue:
        sinks = dict(_BASE_SINKS)
        while True:
            sites: list[Site] = []
            found: dict[str, _Sink] = {}
            for mod in self.modules.values():
                for node in ast.walk(mod.tree):
                    kind: ast.expr | None = None
                    data: ast.expr | None = None
                    name = _call_name(node) if isinstance(node, ast.Call) else None
                    if isinstance(node, ast.Call) and name is not None and name in sinks:
                        sink = sinks[name]
                        kind = _argument(node, sink.kind_pos, sink.kind_kw)
                        data = _argument(node, sink.data_pos, sink.data_kw)
                    elif isinstance(node, ast.Dict):
                        keys = {k.value: v for k, v in zip(node.keys, node.values, strict=True)
                                if isinstance(k, ast.Constant)}
                        if "seq" in keys and "kind" in keys:
                            kind, data = keys["kind"], keys.get("data")
                    if kind is None:
                        continue  # e.g. trio.Event()
                    scope = _scope(mod, node)
                    resolved = self.resolve(mod, kind, scope)
                    for param in resolved.forwards:
                        helper, sink = self._forwarder(mod, scope, param, data)
                        found[helper] = sink
                    source = ast.unparse(kind)
                    sites.append(Site(mod.rel, kind.lineno, source, resolved.kinds,
                                      [source] if resolved.unresolved else [], self._data_keys(data)))
            new = {k: v for k, v in found.items() if sinks.get(k) != v}
            if not new:
                return Catalogue(sites)
            sinks.update(new)


def collect(sources: dict[str, str] | None = None,
            expansions: dict[tuple[str, str], Callable[[], Iterable[str]]] | None = None) -> Catalogue:
    """The event sites of ``sources`` (relative path -> text; default: the repository's)."""
    if sources is None:
        sources = {
            path.relative_to(REPO).as_posix(): path.read_text()
            for d in SOURCE_DIRS for path in sorted((REPO / d).rglob("*.py"))
        }
    return _Collector(sources, EXPANSIONS if expansions is None else expansions).collect()


@functools.cache
def _repository() -> Catalogue:
    return collect()


def documented(text: str) -> dict[str, str]:
    """The catalogue's kinds, each with the text of its section."""
    out: dict[str, str] = {}
    for match in KIND_HEADING.finditer(text):
        kind = match.group(1)
        assert kind not in out, f"docs/events.md documents {kind!r} twice"
        end = ANY_HEADING.search(text, match.end())
        out[kind] = text[match.end(): end.start() if end else len(text)]
    return out


# -- the tests ------------------------------------------------------------------------------


def test_every_published_kind_is_documented_and_only_those() -> None:
    published = _repository().kinds
    in_doc = set(documented(DOC.read_text()))
    assert published, "no event kinds found: the collector is broken"
    undocumented = sorted(published - in_doc)
    unpublished = sorted(in_doc - published)
    assert not undocumented, f"published but not in docs/events.md: {undocumented}"
    assert not unpublished, f"in docs/events.md but never published: {unpublished}"


def test_every_site_is_resolved_or_explained() -> None:
    unresolved = _repository().unresolved()
    unexplained = sorted(unresolved - set(NOT_KINDS))
    assert not unexplained, (
        f"event kinds the test cannot resolve: {unexplained} (a constant, or an f-string "
        "placeholder in EXPANSIONS; else explain it in NOT_KINDS)"
    )
    stale = sorted(set(NOT_KINDS) - unresolved)
    assert not stale, f"NOT_KINDS names sites that are gone: {stale}"


def test_data_members_written_out_are_documented() -> None:
    sections = documented(DOC.read_text())
    missing = sorted(
        (kind, key, f"{site.rel}:{site.line}")
        for site in _repository().sites for kind in site.kinds if kind in sections
        for key in site.data_keys if f"`{key}`" not in sections[kind]
    )
    assert not missing, f"data members not mentioned under their kind in docs/events.md: {missing}"


def test_the_collector_follows_constants_fstrings_and_helpers() -> None:
    sources = {
        "pkg/__init__.py": "",
        "pkg/names.py": 'KIND = "b.imported"\nOTHER: Final = "b.other"\n',
        "pkg/bus.py": (
            "from . import names\n"
            "from .names import KIND\n"
            'LOCAL = "a.constant"\n'
            "class Helper:\n"
            "    def tell(self, note, what, data):\n"
            "        self.events.publish(\n"
            "            what,\n"
            "            data,\n"
            "        )\n"
            "def run(bus, flag, item):\n"
            '    bus.publish("a.literal", {"x": 1})\n'
            "    bus.publish(LOCAL, {})\n"
            "    bus.publish(KIND, {})\n"
            "    bus.publish(names.OTHER, {})\n"
            '    bus.publish("c.yes" if flag else "c.no", {})\n'
            '    chosen = "d.local"\n'
            "    bus.publish(chosen, {})\n"
            '    bus.publish(f"e.{item.name}", {})\n'
            '    Helper().tell(None, "f.helped", {"y": 2})\n'
            '    Event(kind="g.keyword")\n'
            "    trio.Event()\n"
            "    for loop in ():\n"
            "        bus.publish(loop, {})\n"
            '    return {"seq": 1, "kind": "h.by-hand", "data": {"z": 3}}\n'
        ),
    }
    catalogue = collect(sources, {("pkg/bus.py", "item.name"): lambda: ["one", "two"]})
    assert catalogue.kinds == {
        "a.literal", "a.constant", "b.imported", "b.other", "c.yes", "c.no", "d.local",
        "e.one", "e.two", "f.helped", "g.keyword", "h.by-hand",
    }
    assert catalogue.unresolved() == {("pkg/bus.py", "loop")}
    keys = {k: s.data_keys for s in catalogue.sites for k in s.kinds}
    assert (keys["a.literal"], keys["f.helped"], keys["h.by-hand"]) == ({"x"}, {"y"}, {"z"})

"""Which customer fields a template reads, from its syntax tree.

An audience row used to carry every field of the data dictionary, six of them lookups into
other tables, although a playbook's texts use five or six. Reading the templates tells the
audience query which fields to select. The answer is conservative: anything this module
cannot follow (``customer`` passed whole to a macro or a filter, ``customer[name]`` with a
computed name, an ``include`` of a computed file name) means *every field*, so a template
that renders at validate time renders the same at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import Environment, TemplateNotFound, nodes

CUSTOMER = "customer"


class _Everything(Exception):
    """Raised inside the walk when a use of ``customer`` cannot be narrowed to named fields."""


Readers = Mapping[str, tuple[str, ...]]
"""Filters that take the whole customer (``customer | polite_name``), with the fields each
reads."""


def source_reads(
    env: Environment, source: str, known: frozenset[str], readers: Readers
) -> frozenset[str] | None:
    """The ``customer.<field>`` names ``source`` reads (following constant includes and
    imports), or None when it may read any field. ``known``: the data dictionary's keys; an
    attribute outside them (``customer.items``) is not narrowed either."""
    found: set[str] = set()
    try:
        _walk(env, env.parse(source), _Scope(known, readers, found, set()))
    except _Everything:
        return None
    return frozenset(found)


@dataclass
class _Scope:
    known: frozenset[str]
    readers: Readers
    found: set[str]
    seen: set[str]  # templates already walked


def _walk(env: Environment, node: nodes.Node, scope: _Scope) -> None:
    if isinstance(node, nodes.Getattr) and _is_customer(node.node):
        if node.attr not in scope.known:
            raise _Everything
        scope.found.add(node.attr)
        return
    if isinstance(node, nodes.Getitem) and _is_customer(node.node):
        key = node.arg.value if isinstance(node.arg, nodes.Const) else None
        if not isinstance(key, str) or key not in scope.known:
            raise _Everything
        scope.found.add(key)
        return
    if isinstance(node, nodes.Filter) and node.node is not None and _is_customer(node.node):
        if node.name not in scope.readers:
            raise _Everything
        scope.found.update(k for k in scope.readers[node.name] if k in scope.known)
        for child in (*node.args, *node.kwargs):
            _walk(env, child, scope)
        return
    if _is_customer(node):
        raise _Everything  # the whole mapping: a loop, a macro argument, another filter
    if isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
        _follow(env, node.template, scope)
    for child in node.iter_child_nodes():
        _walk(env, child, scope)


def _follow(env: Environment, name: nodes.Expr, scope: _Scope) -> None:
    """Walk the template an include or import names, once; a computed name is unknowable."""
    if not isinstance(name, nodes.Const) or not isinstance(name.value, str):
        raise _Everything
    if name.value in scope.seen:
        return
    scope.seen.add(name.value)
    if env.loader is None:
        raise _Everything
    try:
        source, _, _ = env.loader.get_source(env, name.value)
    except TemplateNotFound as exc:
        raise _Everything from exc
    _walk(env, env.parse(source), scope)


def _is_customer(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == CUSTOMER


_MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})


def unknown_fields(env: Environment, source: str, known: frozenset[str]) -> list[str]:
    """The ``customer.<name>`` attributes ``source`` uses (through constant includes too)
    that are not fields of the data dictionary, in order of first use: a branch the sample
    customer never takes must not leave ``customer.nmae`` to fail first at send time."""
    found: list[str] = []
    seen: set[str] = set()

    def walk(node: nodes.Node) -> None:
        name = None
        if isinstance(node, nodes.Getattr) and _is_customer(node.node):
            name = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and _is_customer(node.node)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            name = node.arg.value
        unknown = name is not None and name not in known and name not in _MAPPING_METHODS
        if unknown and name not in found:
            found.append(str(name))
        if isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
            target = node.template
            named = target.value if isinstance(target, nodes.Const) else None
            if isinstance(named, str) and named not in seen and env.loader is not None:
                seen.add(named)
                try:
                    included, _, _ = env.loader.get_source(env, named)
                except TemplateNotFound:
                    return  # reported by the include check
                walk(env.parse(included))
        for child in node.iter_child_nodes():
            walk(child)

    walk(env.parse(source))
    return found

"""Event playbooks compiled to durable-rules rulesets, behind a host we own.

Each step of a trigger (the first event; the follow-up or absent event) becomes one ruleset
with one single-event rule in durable-rules' JSON format, e.g.::

    {"redemption-not-reinvested__first__3f9a1c2b_1": {"r": {"all": [{"m": {"$and": [
        {"type": "redemption"}, {"product_type": "wealth"}, {"$gte": {"amount": 50000.0}}]}}],
        "run": "match"}}}

Why single-event rules, with windows, counts and absence in :mod:`engine.events.windows`:
durable-rules 2.0.28 (its last release) crashes the process (SIGSEGV) on joins that test a
reference to an earlier event (``{"$gte": {"t": {"$add": {"$l": {"a": "t"}, "$r": 100}}}}``)
after an ``$and`` first term, raises MemoryError past 1,024 sessions per ruleset, and crashes
in ``delete_state`` (reproducers in docs/events.md). A bank daemon must not die on a customer's
third withdrawal, so joins stay in our code, where they are tested and bounded.

The durable-rules traps handled here:

- an event no rule matches is result code 1 (``MessageNotHandledException`` in durable's
  Python layer): that is "no match";
- code 2 (``MessageObservedException``, an id seen before) is "no match" too: we dedup
  upstream;
- an exception inside an action is swallowed by durable's Python layer (it lands in the
  session state): we drive the action lifecycle ourselves and raise any error;
- a ruleset cannot be replaced in place: every registration gets a new versioned name;
- ``durable.engine.Host`` starts two background timer threads that dispatch actions on their
  own; we never create one. :class:`RulesHost` calls the C engine synchronously, so a match is
  known when ``post`` returns. ``durable.lang``'s module-level registry is never used.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from durable import engine as durable_engine
from durable.engine import Ruleset

from engine.core.errors import EngineError
from engine.triggers.event import FieldTest, Step

SESSION = "0"  # single-event rules keep no state between events: one session is enough
ACTION = "match"
_ENGINE: Any = durable_engine.durable_rules_engine  # the C extension durable.engine wraps
# result codes of the C engine's assert_event (durable.engine.Ruleset._handle_result)
_NOT_HANDLED, _OBSERVED, _QUEUED = 1, 2, 3


class RuleError(EngineError):
    """durable-rules failed inside an action or while completing it."""


def step_condition(step: Step) -> dict[str, Any]:
    """The step's constant tests as one durable-rules condition over a single event."""
    if len(step.types) == 1:
        kind: dict[str, Any] = {"type": step.types[0]}
    else:
        kind = {"$or": [{"type": t} for t in step.types]}
    tests = [kind] + [_test(t) for t in step.constant_tests]
    return tests[0] if len(tests) == 1 else {"$and": tests}


def _test(t: FieldTest) -> dict[str, Any]:
    f, v = t.field, t.value
    absent = {"$nex": {f: 1}}
    if t.op == "eq":
        return {f: v}
    if t.op == "ne":
        return {"$or": [absent, {"$neq": {f: v}}]}
    if t.op == "in":
        return {"$or": [{f: x} for x in v]} if len(v) > 1 else {f: v[0]}
    if t.op == "not_in":
        return {"$or": [absent, {"$and": [{"$neq": {f: x}} for x in v]}]}
    if t.op == "between":
        return {"$and": [{"$gte": {f: v[0]}}, {"$lte": {f: v[1]}}]}
    return {f"${t.op}": {f: v}}


def ruleset_definition(step: Step) -> dict[str, Any]:
    """The JSON ruleset of one step: one rule, one single-event condition, action by name."""
    return {"r": {"all": [{"m": step_condition(step)}], "run": ACTION}}


class RulesHost:
    """The durable-rules rulesets of one process, created and owned by us (no globals).

    ``register`` returns a fresh versioned name each time; ``post`` returns whether the
    ruleset's rule matched the event.
    """

    def __init__(self) -> None:
        self._rulesets: dict[str, Ruleset] = {}
        self._generation = itertools.count(1)

    def __contains__(self, name: str) -> bool:
        return name in self._rulesets

    def __len__(self) -> int:
        return len(self._rulesets)

    def register(self, base: str, step: Step) -> str:
        name = f"{base}_{next(self._generation)}"
        self._rulesets[name] = Ruleset(name, self, ruleset_definition(step))
        return name

    def drop(self, name: str) -> None:
        ruleset = self._rulesets.pop(name, None)
        if ruleset is not None:
            _ENGINE.delete_ruleset(ruleset._handle)

    def definition(self, name: str) -> dict[str, Any]:
        """The JSON ruleset as registered (the action shown by name)."""
        rules = self._rulesets[name].get_definition()
        return {name: {rule: {**body, "run": "engine.events"} for rule, body in rules.items()}}

    def post(self, name: str, message: dict[str, Any]) -> bool:
        """Assert one event; True when the ruleset's rule matched it.

        The action lifecycle is driven here, synchronously, through the C engine's own calls
        (``start_action_for_state`` / ``complete_and_start_action``) instead of durable's
        Python ``Promise`` layer, which would swallow an exception into the session state and
        costs a third of the throughput. An error surfaces as :class:`RuleError`.
        """
        return self.post_json(name, json.dumps(message, ensure_ascii=False), message.get("id"))

    def post_json(self, name: str, message: str, event_id: Any) -> bool:
        """:meth:`post` for an event already serialised: the processor encodes each event
        once for every ruleset it goes to, and calls the C engine directly. durable's Python
        ``assert_event`` would encode it again per ruleset and, for the common "no match",
        build a ``MessageNotHandledException`` that encodes it a third time."""
        handle = self._rulesets[name]._handle
        code, state = _ENGINE.assert_event(handle, message)
        if code in (_NOT_HANDLED, _OBSERVED):
            return False
        if code == _QUEUED:
            state = 0
        fired = False
        try:
            result = _ENGINE.start_action_for_state(handle, state)
            while result:
                fired = fired or self._matched(result[1], message, event_id)
                following = _ENGINE.complete_and_start_action(handle, state)
                result = (None, following) if following else None
        except Exception as exc:
            # release the session, as durable's own layer does, so the next event is served
            with contextlib.suppress(Exception):
                _ENGINE.abandon_action(handle, state)
            if isinstance(exc, RuleError):
                raise
            raise RuleError(
                f"rule {name} failed: {type(exc).__name__}: {exc}", code="E0701"
            ) from exc
        return fired

    def _matched(self, action_json: str, message: str, event_id: Any) -> bool:
        # {"r": {"m": {...the event...}}}: the one rule, the one event we just posted, which
        # the C engine echoes as it was given (a substring test instead of parsing it back)
        if message in action_json:
            return True
        matched = json.loads(action_json)
        got = next(iter(matched.values()))["m"].get("id")
        if got != event_id:
            raise RuleError(
                f"durable-rules reported event {got!r} while {event_id!r} was posted",
                code="E0701",
            )
        return True

    # durable-rules calls this -----------------------------------------------------------

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        """Resolves a rule's ``run`` name. Ours is ``"match"``, which does nothing by itself:
        :meth:`post` completes the action and reports the match to its caller."""
        if action_name != ACTION:
            raise RuleError(f"no action named {action_name!r}", code="E0701")
        return _no_op


def _no_op(_c: Any) -> None:
    pass

"""The sandbox with budgets: what one template may cost when it renders one customer's text.

Jinja's sandbox stops templates from reaching Python internals, but not from costing too much:
``'a' * 100000000`` or ``range`` in nested loops fill memory or hang a run, and a macro that
calls itself ends in a ``RecursionError``. Templates are written by marketing staff, and one
of them must never stop the other playbooks, so every render carries a budget:

- ``range()`` hands out at most :data:`MAX_RANGE_ITEMS` numbers per render, all calls
  together (nested loops charge their inner ranges each time round);
- ``*`` may not build a text or list longer than :data:`MAX_REPEAT`; ``**`` may not raise to a
  power over :data:`MAX_EXPONENT`; whole numbers may not grow past :data:`MAX_BITS` bits;
- ``~`` (joining texts), a macro's arguments and ``replace`` may not make a text longer than
  :data:`MAX_OUTPUT` (repeated doubling would otherwise fill memory before any output);
- ``namespace()`` (state carried across loop rounds) and ``lipsum()`` are not offered;
- the rendered text may not pass :data:`MAX_OUTPUT` characters, checked as it is produced, and
  no filter, method or format may be asked for a width or length over it (``center``,
  ``zfill``, ``'%0999999d'``, ``'{:>999999}'``);
- a render may not run longer than :data:`MAX_SECONDS` (checked on every call and attribute
  lookup the template makes, and on every piece of output).

Breaking a budget raises :class:`BudgetExceeded`, which the renderer reports as ``PB0129``.
"""

from __future__ import annotations

import contextvars
import re
import time
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

MAX_RANGE_ITEMS = 10_000
MAX_REPEAT = 10_000
MAX_EXPONENT = 64
MAX_BITS = 4096  # whole numbers past ~1,200 digits: no message needs them, squaring explodes
MAX_OUTPUT = 100_000
MAX_SECONDS = 2.0


class BudgetExceeded(Exception):
    """A template asked for more than one customer's text may cost; ``what`` says which."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass
class _Budget:
    deadline: float
    range_left: int = MAX_RANGE_ITEMS
    ticks: int = 0

    def tick(self) -> None:
        # the clock is read every 32nd step: a step is a few hundred nanoseconds at most
        self.ticks += 1
        if not self.ticks & 31 and time.monotonic() > self.deadline:
            raise BudgetExceeded(f"rendering took longer than {MAX_SECONDS:g} s")


_CURRENT: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "render_budget", default=None
)


def start() -> contextvars.Token[_Budget | None]:
    """Open one render's budget; pass the token to :func:`stop` when the render ends."""
    return _CURRENT.set(_Budget(deadline=time.monotonic() + MAX_SECONDS))


def stop(token: contextvars.Token[_Budget | None]) -> None:
    _CURRENT.reset(token)


def tick() -> None:
    """Check the current render's clock (no-op outside a render)."""
    current = _CURRENT.get()
    if current is not None:
        current.tick()


def budget_range(*args: int) -> range:
    """``range`` for templates: charged to the render's budget before a number is made."""
    numbers = range(*args)
    current = _CURRENT.get()
    if current is not None:
        current.tick()
        current.range_left -= len(numbers)
        if current.range_left < 0:
            raise BudgetExceeded(f"range() over {MAX_RANGE_ITEMS:,} numbers in one text")
    elif len(numbers) > MAX_RANGE_ITEMS:
        raise BudgetExceeded(f"range() over {MAX_RANGE_ITEMS:,} numbers in one text")
    return numbers


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _big(left: Any, right: Any, bits: int) -> bool:
    """Whether whole-number operands together pass ``bits`` bits."""
    sizes = [v.bit_length() for v in (left, right) if type(v) is int]
    return bool(sizes) and sum(sizes) > bits


# a width or precision of six digits or more in a %-format or a {}-format
_WIDE_PERCENT = re.compile(r"%[-+ #0]*(\*|\d{6,})|%[-+ #0]*\d*\.(\*|\d{6,})")
_WIDE_BRACES = re.compile(r"\{[^{}]*(\d{6,}|\{)[^{}]*\}")


def check_widths(*args: Any, **kwargs: Any) -> None:
    """No number asked of a filter or method may exceed the output budget."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT:
            raise BudgetExceeded(f"a width or length over {MAX_OUTPUT:,}")


def check_format(text: Any) -> None:
    """A format string may not ask for a field wider than the output budget."""
    if isinstance(text, str) and (_WIDE_PERCENT.search(text) or _WIDE_BRACES.search(text)):
        raise BudgetExceeded(f"a format width over {MAX_OUTPUT:,}")


def _guarded(name: str, f: Any) -> Any:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        check_widths(*args[1:], **kwargs)
        if name == "format" and args:
            check_format(args[0])
        return f(*args, **kwargs)

    for attribute in ("jinja_pass_arg",):  # keep Jinja's markers (context/eval filters)
        if hasattr(f, attribute):
            setattr(guarded, attribute, getattr(f, attribute))
    guarded.__name__ = getattr(f, "__name__", name)
    return guarded


def checked_text(value: Any) -> Any:
    """A text just joined with ``~``: within the output budget, or refused."""
    tick()
    if isinstance(value, str) and len(value) > MAX_OUTPUT:
        raise BudgetExceeded(f"'~' would build a text over {MAX_OUTPUT:,} characters")
    return value


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):  # a macro fed a doubling text, a huge list
        if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT:
            raise BudgetExceeded(f"an argument over {MAX_OUTPUT:,} characters or items")
    owner = getattr(obj, "__self__", None)
    if owner.__class__ is not str:
        return
    check_widths(*args, **kwargs)
    name = getattr(obj, "__name__", "")
    if name in ("format", "format_map"):
        check_format(owner)
    elif name == "replace" and len(args) >= 2 and isinstance(args[1], str):
        old = args[0] if isinstance(args[0], str) else ""
        grows = (len(owner) // max(len(old), 1) + 1) * len(args[1])
        if len(owner) + grows > MAX_OUTPUT:
            raise BudgetExceeded(f"replace() could build a text over {MAX_OUTPUT:,} characters")


class _GuardedCode(CodeGenerator):
    """Jinja's code generator, with every ``~`` join checked against the output budget."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_text(")
        super().visit_Concat(node, frame)
        self.write(")")


class BudgetedSandbox(SandboxedEnvironment):
    """Jinja's sandbox plus the budgets above; otherwise the same environment."""

    intercepted_binops = frozenset(["*", "**", "%"])
    code_generator_class = _GuardedCode
    checked_text = staticmethod(checked_text)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = budget_range
        for name in ("namespace", "lipsum", "cycler", "joiner"):  # not for one message
            self.globals.pop(name, None)
        # Jinja's own filters that take a width or count; ours are added later, unguarded
        for name in ("center", "indent", "wordwrap", "truncate", "format", "batch", "slice"):
            self.filters[name] = _guarded(name, self.filters[name])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        tick()
        if operator == "*":
            seq, times = (left, right) if _sized(left) else (right, left)
            if _sized(seq) and isinstance(times, int) and len(seq) * times > MAX_REPEAT:
                raise BudgetExceeded(f"'*' would build over {MAX_REPEAT:,} characters or items")
            if _big(left, right, MAX_BITS):
                raise BudgetExceeded(f"'*' on whole numbers over {MAX_BITS} bits")
        elif (
            operator == "**"
            and isinstance(right, int | float)
            and not isinstance(right, bool)
            and abs(right) > MAX_EXPONENT
        ):
            raise BudgetExceeded(f"'**' with an exponent over {MAX_EXPONENT}")
        elif operator == "**" and _big(left, 0, MAX_BITS // MAX_EXPONENT):
            raise BudgetExceeded(f"'**' on a base over {MAX_BITS // MAX_EXPONENT} bits")
        elif operator == "%":
            check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        tick()
        _check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        return super().getitem(obj, argument)

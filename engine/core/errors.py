"""One error type for everything a user can get wrong.

Every failure the engine reports to a person is an :class:`EngineError` (or a
:class:`Diagnostic` list for playbook validation). The CLI is the single place that turns them
into a message and an exit code, so no traceback ever reaches a user for bad input.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class EngineError(Exception):
    """A failure with a stable code, a place and a hint, shown to the user as one line."""

    exit_code = EXIT_FAILURE

    def __init__(
        self,
        message: str,
        *,
        code: str = "E0001",
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.where = where
        self.hint = hint

    def render(self) -> str:
        """The one line (plus an optional hint line) a person sees."""
        head = f"{self.where}: " if self.where else ""
        text = f"{head}error[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(EngineError):
    """The command line itself is wrong (unknown option value, bad --db scheme, bad date)."""

    exit_code = EXIT_USAGE


class StoreError(EngineError):
    """The database cannot be reached or does not hold what the engine needs."""


class TemplateError(EngineError):
    """A message template is missing or fails to render."""


def first_line(exc: BaseException) -> str:
    """The first line of a (database) error: SQLAlchemy appends the statement and its
    parameters below it, and those may hold personal data."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def describe_failure(exc: BaseException) -> str:
    """What went wrong, for a run record or one CLI line, without the data it happened to."""
    return f"{type(exc).__name__}: {first_line(exc)}"[:500]

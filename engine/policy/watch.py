"""The daemon's view of ``config/policy.yaml``: reloaded when the file changes, validated
first, and the last good policy kept when an edit is invalid.

Polled by content hash, like the playbook folder (engine/daemon/folder.py): a file rewritten with
the same bytes is no change; a deleted file means the defaults, as at start.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from engine.core.errors import EngineError
from engine.policy.rules import Policy, load_policy


@dataclass(frozen=True)
class PolicyProblem:
    """An invalid edit: where, what, and that the last good policy still applies."""

    code: str
    message: str
    where: str | None
    hint: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "where": self.where, "hint": self.hint}


class PolicyWatch:
    """The current good policy of one daemon."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current: Policy | None = None
        self.problem: PolicyProblem | None = None
        self._digest: str | None = None

    def load(self) -> Policy:
        """The start: the policy must be valid (a broken deployment does not start)."""
        digest = self._read_digest()
        self.current = load_policy(self.path)
        self._digest, self.problem = digest, None
        return self.current

    def poll(self) -> Policy | None:
        """The new policy when the file changed and is valid; None when nothing changed or
        the edit is invalid (then :attr:`problem` says why and :attr:`current` stays)."""
        digest = self._read_digest()
        if digest == self._digest:
            return None
        self._digest = digest
        try:
            policy = load_policy(self.path)
        except EngineError as exc:
            self.problem = PolicyProblem(exc.code, exc.message, exc.where, exc.hint)
            return None
        self.current, self.problem = policy, None
        return policy

    def _read_digest(self) -> str:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return "absent"
        except OSError:
            return "unreadable"

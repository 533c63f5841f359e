"""What every request of one console shares: settings, the store, the session signer, the
login throttle and the workbench."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from engine.console.auth import Sessions, Throttle
from engine.console.workbench import Workbench
from engine.core.settings import Settings
from engine.store import audit
from engine.store.replica import ReplicaReads


@dataclass
class Console:
    """What every request of one console shares."""

    settings: Settings
    store: Engine
    sessions: Sessions
    # five failures lock one name; an address (a whole branch behind one NAT) gets fifty
    throttle: Throttle = field(default_factory=Throttle)
    address_throttle: Throttle = field(default_factory=lambda: Throttle(limit=50))
    # previews and estimates read the bank's data from a streaming replica (console
    # --replica-db); accounts, audit, tasks and every write stay on the primary
    replica: ReplicaReads | None = None
    workbench: Workbench = field(init=False)

    def __post_init__(self) -> None:
        self.workbench = Workbench(self.settings, self.store, self.replica)

    def audit(
        self,
        actor: str,
        action: str,
        subject: str = "",
        *,
        customer_id: str | None = None,
        **detail: Any,
    ) -> None:
        """One entry in the audit log, in a transaction of its own."""
        with self.store.begin() as conn:
            audit.record(
                conn,
                actor=actor,
                action=action,
                subject=subject,
                customer_id=customer_id,
                detail=detail,
            )

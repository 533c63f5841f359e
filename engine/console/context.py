"""What every request of one console shares: settings, the store, the session signer, the
login throttle and the workbench."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from engine.console.auth import Sessions, Throttle
from engine.console.workbench import Workbench
from engine.core.settings import Settings


@dataclass
class Console:
    """What every request of one console shares."""

    settings: Settings
    store: Engine
    sessions: Sessions
    # five failures lock one name; an address (a whole branch behind one NAT) gets fifty
    throttle: Throttle = field(default_factory=Throttle)
    address_throttle: Throttle = field(default_factory=lambda: Throttle(limit=50))
    workbench: Workbench = field(init=False)

    def __post_init__(self) -> None:
        self.workbench = Workbench(self.settings, self.store)

"""The one check between the folders and a run, with governance on: only a playbook whose
files are exactly its live approved version runs.

``run`` and the daemon both pass the playbooks they validated through :meth:`Gate.admit`; what
comes out carries its version's hash (recorded in ``runs.version_hash``), what is held back is
listed with its reason:

- ``not_approved``: no version of it was ever published (a new file, a draft);
- ``paused``: its live version is paused;
- ``changed_outside_workflow``: its playbook file, a template it uses or a segment it names
  differs from the live version (an edit that skipped submit and approve).

Nothing else changes: the others run as without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from engine.core.settings import Settings
from engine.governance import files as vfiles
from engine.governance.config import load_governance
from engine.governance.records import ensure_tables
from engine.playbook.model import Playbook
from engine.store.models import playbook_live, playbook_versions

NOT_APPROVED = "not_approved"
PAUSED = "paused"
CHANGED = "changed_outside_workflow"

WORDS = {
    NOT_APPROVED: "skipped: no approved live version (submit and approve it first)",
    PAUSED: "skipped: paused",
    CHANGED: "skipped: changed outside the workflow (its files differ from the live version)",
}


@dataclass(frozen=True)
class Withheld:
    playbook_id: str
    file: str
    reason: str
    live_version: int | None = None

    @property
    def words(self) -> str:
        shown = f" {self.live_version}" if self.live_version is not None else ""
        return WORDS[self.reason].replace("the live version", f"live version{shown}")


@dataclass
class Admission:
    admitted: list[Playbook] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)


class Gate:
    """The live pointers of one store, checked against the files found on disk."""

    def __init__(self, store: Engine, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def stamp(self) -> str:
        """Changes whenever any playbook is published, rolled back, paused or resumed: the
        daemon reloads on it as on a file change."""
        with self.store.connect() as conn:
            rows = conn.execute(
                select(playbook_live.c.playbook_id, playbook_live.c.generation).order_by(
                    playbook_live.c.playbook_id
                )
            ).all()
        return hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()

    def admit(
        self, playbooks: Sequence[Playbook], read_template: vfiles.ReadTemplate | None = None
    ) -> Admission:
        """Split ``playbooks`` (validated from the folders; templates read with
        ``read_template``, the disk by default) into what may run and what may not."""
        read = read_template or vfiles.disk_templates(self.settings)
        with self.store.connect() as conn:
            rows = conn.execute(
                select(
                    playbook_live.c.playbook_id,
                    playbook_live.c.paused,
                    playbook_versions.c.hash,
                    playbook_versions.c.number,
                ).join(playbook_versions, playbook_versions.c.id == playbook_live.c.version_id)
            ).all()
        live = {r.playbook_id: (bool(r.paused), str(r.hash), int(r.number)) for r in rows}
        out = Admission()
        for playbook in playbooks:
            entry = live.get(playbook.id)
            if entry is None:
                out.withheld.append(Withheld(playbook.id, playbook.source, NOT_APPROVED))
                continue
            paused, digest, number = entry
            found = vfiles.collect(playbook, self.settings, read)
            if found is None or vfiles.version_hash(found) != digest:
                # reported by the caller: `run` prints it, the daemon logs it and counts it
                out.withheld.append(Withheld(playbook.id, playbook.source, CHANGED, number))
                continue
            if paused:
                out.withheld.append(Withheld(playbook.id, playbook.source, PAUSED, number))
                continue
            out.admitted.append(dataclasses.replace(playbook, version_hash=digest))
        return out


def open_gate(store: Engine, settings: Settings) -> Gate | None:
    """The gate when ``config/governance.yaml`` switches governance on; None when it is off or
    absent (today's behaviour). A broken file is its located error (E0630): refusing to run is
    safer than guessing whether approval is required."""
    gov = load_governance(settings.governance_path, required=False)
    if not gov.enabled:
        return None
    ensure_tables(store)
    return Gate(store, settings)

"""Deployment settings: where playbooks, templates, schemas and data live, and bank constants.

A deployment is a folder (like a dbt project): paths default to folders under the current
directory, so the engine run from a checkout uses the shipped ``playbooks/``, ``templates/``
and ``schemas/``. Nothing here is read from module-level state; commands build one
:class:`Settings` and pass it down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Settings:
    """What one engine process needs to know about its deployment."""

    root: Path = field(default_factory=Path.cwd)
    timezone_name: str = "Asia/Shanghai"
    bank_name: str = "示例银行"
    # The SMS signature and the opt-out texts are compliance's: config/policy.yaml, messages.

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @property
    def playbooks_dir(self) -> Path:
        return self.root / "playbooks"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def segments_dir(self) -> Path:
        return self.root / "segments"

    @property
    def schemas_dir(self) -> Path:
        return self.root / "schemas"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def policy_path(self) -> Path:
        """The contact policy (compliance): quiet hours, caps, task escalation, and the
        signature, opt-out texts and operator windows every message must respect."""
        return self.config_dir / "policy.yaml"

    @property
    def calendar_dir(self) -> Path:
        """The bank's holiday files, one per year (``CN-2027.yaml``; docs/calendar.md)."""
        return self.config_dir / "calendar"

    @property
    def governance_path(self) -> Path:
        """Versions and approval (compliance): on or off, approvers, thresholds."""
        return self.config_dir / "governance.yaml"

    @property
    def retention_path(self) -> Path:
        """How long personal content is kept (compliance; docs/retention.md)."""
        return self.config_dir / "retention.yaml"

    @property
    def channels_path(self) -> Path:
        """Delivery channels (IT): gateway URLs, credentials by env var, retries, rates."""
        return self.config_dir / "channels.yaml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def dictionary_path(self) -> Path:
        return self.schemas_dir / "data_dictionary.yaml"

    @property
    def default_db_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'engine.db'}"

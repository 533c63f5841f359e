"""Action types, one module each, registered by name beside their class.

Importing this package registers every built-in type; the JSON Schema's list of action
kinds is generated from :data:`REGISTRY`, so adding a type touches one module and its test.
"""

from __future__ import annotations

from engine.actions import email, sms, tag, task, webhook, wecom  # noqa: F401  (registration)
from engine.actions.base import REGISTRY, Action, ActionType

__all__ = ["REGISTRY", "Action", "ActionType"]

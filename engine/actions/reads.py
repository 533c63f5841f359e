"""The customer fields a playbook's actions read: what its audience query must select."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jinja2

from engine.actions.base import REGISTRY
from engine.core.dictionary import DataDictionary
from engine.rendering.renderer import Renderer


def actions_read(
    actions: Sequence[Any], dictionary: DataDictionary, renderer: Renderer
) -> frozenset[str] | None:
    """Every field the actions' own logic reads (addresses, assignees, webhook fields) and
    every ``customer.<field>`` their templates name; None when a template may read any."""
    found: set[str] = set()
    for action in actions:
        found |= REGISTRY[action.kind].reads(action, dictionary)
        for part in dataclasses.fields(action):
            value = getattr(action, part.name)
            if isinstance(value, jinja2.Template):
                named = renderer.reads(value)
                if named is None:
                    return None
                found |= named
    return frozenset(found)

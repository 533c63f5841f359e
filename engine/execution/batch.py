"""One batch of audience rows, kept as the database returned them.

A run streams its audience in batches of a thousand rows, but most rows of a broad audience
are only counted: already done, cooling down, over the run cap. Building a dict per row (the
customer's values by field) cost more than reading the row; a batch keeps the rows as
tuples, the customer key first, and builds a customer's values when an action needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

KEY = "_key"


@dataclass
class Batch:
    keys: tuple[str, ...]  # the fields after the customer key, in the rows' order
    rows: Sequence[Sequence[Any]]
    # tag field -> customer -> labels, for the tag fields read (see Executor.tags)
    tags: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @cached_property
    def ids(self) -> list[str]:
        return [str(r[0]) for r in self.rows]

    def values(self, index: int) -> dict[str, Any]:
        """The customer's values by field, tags as sorted labels."""
        row = self.rows[index]
        out = dict(zip(self.keys, row[1:], strict=True))
        for key, found in self.tags.items():
            out[key] = sorted(found.get(str(row[0]), []))
        return out

    def dicts(self) -> list[dict[str, Any]]:
        """Every row as a dict with its key under ``_key`` (the reference evaluator's form)."""
        return [{KEY: r[0], **self.values(i)} for i, r in enumerate(self.rows)]

    @classmethod
    def of(cls, dicts: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> Batch:
        """The batch of rows given as dicts (tags included as fields)."""
        return cls(tuple(keys), [(d[KEY], *(d[k] for k in keys)) for d in dicts])

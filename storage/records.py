"""Plain records that cross from the worker pool to the storing process.

No SQLAlchemy here: worker processes import this module, and staying clear of the ORM
keeps each worker tens of megabytes smaller and quicker to start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ThemeTag:
    id: str
    score: float
    evidence: tuple[str, ...]

    def __reduce__(self) -> tuple[type[ThemeTag], tuple[Any, ...]]:
        return ThemeTag, (self.id, self.score, self.evidence)


@dataclass
class NewItem:
    """An entry ready to store: parsed, normalised, tagged and summarised."""

    guid: str | None
    url: str | None
    canonical_url: str | None
    source: str
    title: str
    title_key: str
    author: str | None
    published_at: datetime
    published_was_missing: bool
    fetched_at: datetime
    text: str
    summary: str
    content_hash: str
    signature: str | None = None
    band_keys: Sequence[str] = ()
    relevance: float = 0.0
    relevant: bool = False
    reasons: Sequence[str] = ()
    themes: Sequence[ThemeTag] = field(default_factory=tuple)
    alertable: bool = True

    def __reduce__(self) -> tuple[type[NewItem], tuple[Any, ...]]:
        # Pickled as its fields in order rather than as its instance dict: the storing
        # process unpickles every entry, and rebuilding from a tuple costs a third less.
        return NewItem, tuple([getattr(self, name) for name in _NEW_ITEM_FIELDS])


_NEW_ITEM_FIELDS = tuple(f.name for f in fields(NewItem))

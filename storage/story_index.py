"""The recent stories' index keys and newest signatures, held in memory.

Finding the stories a new entry may continue is a lookup of its ~50 index keys, a few
dictionary hits here. The database stays the truth: each story row carries its keys
(clusters.band_keys), and the index is loaded from it, then follows this process's own
writes; every transaction that assigns stories bumps the story epoch, so the index knows
it is current only while the epoch moved by exactly its own writes. Anyone else's write
(another replica, a rolled-back write of ours) makes it reload before use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Select, func, select, update

from storage.models import Cluster, Item, StoryEpoch, table_of
from storage.types import utcnow

CLUSTER_WINDOW = timedelta(days=3)
SIGNATURES_PER_STORY = 5  # a new entry is compared with a story's newest copies only
RELOAD_AFTER = timedelta(days=1)  # drop stories that left the window, by reloading

_items = table_of(Item)
_clusters = table_of(Cluster)
_epoch = table_of(StoryEpoch)
# Built once: a statement executed again skips SQLAlchemy's cache-key work.
_BUMP_EPOCH = update(_epoch).where(_epoch.c.id == 1).values(n=_epoch.c.n + 1).returning(_epoch.c.n)


@dataclass(eq=False)
class IndexedStory:
    id: int
    last_seen_at: datetime
    signatures: list[str] = field(default_factory=list)  # newest last


class StoryIndex:
    """Used by one writer at a time (ingest's group writer)."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        window: timedelta = CLUSTER_WINDOW,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.enabled = enabled
        self.window = window
        self.clock = clock
        # Stories last seen up to two windows ago are held, so an entry published up to a
        # window ago finds every story it may continue; older entries (a new feed's
        # backlog) ask the database.
        self.held = 2 * window
        self.horizon: datetime | None = None  # stories last seen before this are not held
        # Each key's stories: one story id, or a list when several hold it (most keys have
        # one story: ~190,000 keys at the benchmark's volume, a list each cost ~12 MB).
        self._by_key: dict[str, int | list[int]] = {}
        self.stories: dict[int, IndexedStory] = {}
        # No held story was last seen before this (None: none held). Stories are only
        # added or seen later, so the bound holds until a reload works it out anew.
        self._oldest: datetime | None = None
        self._epoch: int | None = None

    def sync(self, conn: Connection) -> bool:
        """Bump the epoch (its row stays locked until commit) and reload unless only this
        index's own writes moved it. False when the index is not to be used."""
        epoch = conn.execute(_BUMP_EPOCH).scalar_one_or_none()
        if not self.enabled or epoch is None:
            return False
        now = self.clock()
        current = self._epoch is not None and epoch == self._epoch + 1
        if not current or self.horizon is None or self.horizon < now - self.held - RELOAD_AFTER:
            self.load(conn, now - self.held)
        self._epoch = epoch
        return True

    def invalidate(self) -> None:
        """A write that used the index was rolled back: reload before the next use."""
        self._epoch = None

    def covers(self, published_at: datetime) -> bool:
        """Whether every story an entry published then could continue is held here."""
        return self.horizon is not None and published_at - self.window >= self.horizon

    def all_seen_since(self, since: datetime) -> bool:
        """Whether every held story was last seen at `since` or later (False may be wrong:
        a story the bound counts may have been seen since)."""
        return self._oldest is None or self._oldest >= since

    def learn(
        self,
        story_id: int,
        last_seen_at: datetime,
        signatures: list[str],
        new_keys: Iterable[str],
    ) -> None:
        """What a write did to a story: its newest copies and the keys it gained."""
        story = self.stories.get(story_id)
        if story is None:
            story = self.stories[story_id] = IndexedStory(story_id, last_seen_at)
            self._oldest = min(self._oldest or last_seen_at, last_seen_at)
        story.last_seen_at = max(story.last_seen_at, last_seen_at)
        story.signatures = signatures[-SIGNATURES_PER_STORY:]
        self._add_keys(story_id, new_keys)

    def holds(self, key: str, story_id: int) -> bool:
        found = self._by_key.get(key)
        return (
            found == story_id if isinstance(found, int) else found is not None and story_id in found
        )

    def missing(self, story_id: int, keys: Iterable[str]) -> list[str]:
        """Those of `keys` the story does not hold, in order."""
        if story_id not in self.stories:
            return list(keys)  # a story not held holds no key (new, or out of the window)
        missing = []
        by_key = self._by_key
        for key in keys:  # holds(), inline
            found = by_key.get(key)
            if found is None or (
                found != story_id if isinstance(found, int) else story_id not in found
            ):
                missing.append(key)
        return missing

    def shared_keys(self, keys: Iterable[str]) -> Counter[int]:
        """How many of `keys` each story holds (stories holding none are left out)."""
        # Listed first and counted in one go: a Counter counts a list in C, and one story
        # at a time in Python.
        holders: list[int] = []
        for found in map(self._by_key.get, keys):
            if found is None:
                continue
            if isinstance(found, int):
                holders.append(found)
            else:
                holders += found
        return Counter(holders)

    def load(self, conn: Connection, since: datetime) -> None:
        """Hold exactly the stories last seen since `since`, as the database has them."""
        self._by_key, self.stories = {}, {}
        self._oldest = None
        recent = select(_clusters.c.id).where(_clusters.c.last_seen_at >= since)
        for story_id, last_seen, keys in conn.execute(
            select(_clusters.c.id, _clusters.c.last_seen_at, _clusters.c.band_keys).where(
                _clusters.c.last_seen_at >= since
            )
        ):
            self.stories[story_id] = IndexedStory(story_id, last_seen)
            self._add_keys(story_id, set(keys.split()))
            self._oldest = min(self._oldest or last_seen, last_seen)
        for story_id, signature in conn.execute(newest_signatures(recent)):
            self.stories[story_id].signatures.append(signature)
        self.horizon = since

    def _add_keys(self, story_id: int, keys: Iterable[str]) -> None:
        """Keys the story does not hold yet (each once)."""
        by_key = self._by_key
        for key in keys:
            found = by_key.get(key)
            if found is None:
                by_key[key] = story_id
            elif isinstance(found, int):
                by_key[key] = [found, story_id]
            else:
                found.append(story_id)


def newest_signatures(stories: Select[int] | Collection[int]) -> Select[int, str]:
    """(story id, signature) of each story's newest copies, oldest of them first."""
    ranked = (
        select(
            _items.c.cluster_id,
            _items.c.signature,
            func.row_number()
            .over(partition_by=_items.c.cluster_id, order_by=_items.c.id.desc())
            .label("rank"),
        )
        .where(_items.c.cluster_id.in_(stories), _items.c.signature.is_not(None))
        .subquery()
    )
    return (
        select(ranked.c.cluster_id, ranked.c.signature)
        .where(ranked.c.rank <= SIGNATURES_PER_STORY)
        .order_by(ranked.c.cluster_id, ranked.c.rank.desc())
    )

"""Everything an entry needs before it is stored that needs no database: relevance and
themes, summary, story signature, and the claims it speaks about.

It runs where the feed is parsed, in the worker pool, so on a multi-core machine the
process that owns the event loop and the database only stores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot import cluster, normalise
from bot.claims.extract import CandidateClaim, extract_candidates
from bot.claims.ledger import LedgerClaim, load_ledger
from bot.claims.link import ClaimLink, Linker
from bot.pack import Pack, load_pack
from bot.parse import ParsedEntry, parse_feed_sync
from bot.summarise import extractive_summary
from bot.tagger import Tagger
from storage.records import NewItem, ThemeTag

if TYPE_CHECKING:
    from bot.claims.lookup import ClaimRecord


@dataclass(frozen=True)
class Prepared:
    item: NewItem
    tag_seconds: float = 0.0
    links: tuple[ClaimLink, ...] = ()
    candidates: tuple[CandidateClaim, ...] = ()


@dataclass(frozen=True)
class PreparedFeed:
    title: str | None
    link: str | None
    ttl_minutes: int | None
    problem: str | None
    entries: tuple[Prepared, ...]
    skipped: int = 0  # entries left unprepared: their guid is already stored for the feed


def ledger_records(pack: Pack) -> list[ClaimRecord]:
    # Imported here: the lookup side pulls in SQLAlchemy, which workers never need.
    from bot.claims.lookup import ClaimRecord

    return [ClaimRecord.from_ledger(claim) for claim in ledger_claims(pack)]


def ledger_claims(pack: Pack) -> list[LedgerClaim]:
    if not pack.claims_path.is_file():
        return []
    return load_ledger(pack.claims_path, pack.theme_ids)


class Preparer:
    def __init__(self, pack: Pack) -> None:
        self.tagger = Tagger(pack)
        self.linker = Linker(ledger_claims(pack))

    def prepare(
        self, entry: ParsedEntry, *, source: str, alertable: bool, fetched_at: datetime
    ) -> Prepared:
        text = entry.content_text if len(entry.content_text) > len(entry.summary_text) else ""
        text = text or entry.summary_text
        started = time.perf_counter()
        tags = self.tagger.tag(entry.title, text, candidates_if_irrelevant=False)
        tag_seconds = time.perf_counter() - started
        # Irrelevant items are stored but never shown: only relevant ones are grouped into
        # stories, digests and alerts take only those, and the `tag` command summarises on
        # its own. So irrelevant items get no signature and an empty summary.
        relevant = tags.relevant
        sig = cluster.signature(entry.title, text, published=entry.published) if relevant else None
        item = NewItem(
            guid=entry.guid,
            url=entry.link,
            canonical_url=normalise.canonical_url(entry.link) if entry.link else None,
            source=source,
            title=entry.title,
            title_key=normalise.normalise_title(entry.title),
            author=entry.author,
            published_at=entry.published,
            published_was_missing=entry.published_was_missing,
            fetched_at=fetched_at,
            text=text,
            summary=extractive_summary(entry.title, text) if relevant else "",
            content_hash=normalise.content_hash(entry.title, text),
            signature=sig.dumps() if sig else None,
            band_keys=cluster.band_keys(sig) if sig else (),
            relevance=tags.relevance,
            relevant=relevant,
            reasons=tags.reasons,
            themes=[ThemeTag(t.id, t.score, t.evidence) for t in tags.themes],
            alertable=alertable,
        )
        if not relevant:
            return Prepared(item, tag_seconds)
        return Prepared(
            item,
            tag_seconds,
            links=tuple(self.linker.link(entry.title, text)),
            candidates=tuple(extract_candidates(entry.title, text)),
        )


_PREPARERS: dict[str, Preparer] = {}


def preparer_for(pack_dir: str) -> Preparer:
    """One Preparer per pack and process (worker processes build theirs on first use)."""
    found = _PREPARERS.get(pack_dir)
    if found is None:
        found = _PREPARERS[pack_dir] = Preparer(load_pack(Path(pack_dir)))
    return found


def parse_and_prepare(
    body: bytes,
    url: str,
    content_type: str | None,
    fetched_at: datetime,
    pack_dir: str,
    known_title: str | None,
    alertable: bool,
    known_guids: frozenset[str] = frozenset(),
) -> PreparedFeed:
    """The worker's whole job for one response; arguments and result are picklable.

    Entries whose guid is in `known_guids` (already stored for this feed) are not
    prepared: storing would drop them as duplicates anyway, and a feed re-fetched without
    validators mostly repeats itself.
    """
    parsed = parse_feed_sync(body, url=url, content_type=content_type, fetched_at=fetched_at)
    source = parsed.title or known_title or urlsplit(url).hostname or url
    preparer = preparer_for(pack_dir)
    fresh = [e for e in parsed.entries if e.guid is None or e.guid not in known_guids]
    return PreparedFeed(
        title=parsed.title or None,
        link=parsed.link,
        ttl_minutes=parsed.ttl_minutes,
        problem=parsed.problem,
        entries=tuple(
            preparer.prepare(e, source=source, alertable=alertable, fetched_at=fetched_at)
            for e in fresh
        ),
        skipped=len(parsed.entries) - len(fresh),
    )

"""Load and validate a pack's claim ledger (``claims.toml``)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bot.claims.figures import Figure

STATUSES = frozenset({"open", "confirmed", "superseded"})
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_STATEMENT = 280
LEDGER_FILE = "claims.toml"
DEFAULT_PACK_DIR = Path(__file__).resolve().parent.parent / "packs" / "meta_ai"


class LedgerError(ValueError):
    """The ledger file is unreadable or breaks a rule; ``problems`` lists every one found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Source:
    publication: str
    title: str
    author: str | None = None
    date: str | None = None
    seed: str | None = None
    url: str | None = None
    date_note: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerClaim:
    id: str
    statement: str
    speaker: str | None
    claimed_on: date | None
    source: Source
    themes: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()
    keywords: tuple[str, ...] = ()
    status: str = "open"
    superseded_by: str | None = None
    status_note: str | None = None
    date_note: str | None = None


def _opt_str(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _parse_source(raw: Mapping[str, Any]) -> Source:
    return Source(
        publication=str(raw.get("publication", "")).strip(),
        title=str(raw.get("title", "")).strip(),
        author=_opt_str(raw.get("author")),
        date=_opt_str(raw.get("date")),
        seed=_opt_str(raw.get("seed")),
        url=_opt_str(raw.get("url")),
        date_note=_opt_str(raw.get("date_note")),
    )


def _parse_date(raw: Any) -> date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, date):
        return raw
    return date.fromisoformat(str(raw))


class _Checker:
    def __init__(self, sources: Mapping[str, Source], theme_ids: Collection[str] | None) -> None:
        self.sources = sources
        self.theme_ids = theme_ids
        self.problems: list[str] = []

    def claim(self, raw: Mapping[str, Any], index: int) -> LedgerClaim | None:
        where = f"claim #{index} ({raw.get('id', '?')})"
        try:
            claim = self._build(raw)
        except (KeyError, ValueError, TypeError) as exc:
            self.problems.append(f"{where}: {exc}")
            return None
        self._check(claim, where)
        return claim

    def _build(self, raw: Mapping[str, Any]) -> LedgerClaim:
        source_raw = raw["source"]
        if isinstance(source_raw, str):
            if source_raw not in self.sources:
                raise ValueError(f"unknown source {source_raw!r}")
            source = self.sources[source_raw]
        else:
            source = _parse_source(source_raw)
        return LedgerClaim(
            id=str(raw["id"]),
            statement=" ".join(str(raw["statement"]).split()),
            speaker=_opt_str(raw.get("speaker")),
            claimed_on=_parse_date(raw.get("claimed_on")),
            source=source,
            themes=tuple(str(t) for t in raw.get("themes", ())),
            figures=tuple(Figure.from_dict(f) for f in raw.get("figures", ())),
            keywords=tuple(str(k) for k in [*raw.get("keywords", []), *raw.get("aliases", [])]),
            status=str(raw.get("status", "open")),
            superseded_by=_opt_str(raw.get("superseded_by")),
            status_note=_opt_str(raw.get("status_note")),
            date_note=_opt_str(raw.get("date_note")),
        )

    def _check(self, claim: LedgerClaim, where: str) -> None:
        if not SLUG_RE.match(claim.id):
            self.problems.append(f"{where}: id must be a lowercase slug")
        if not claim.statement or len(claim.statement) > MAX_STATEMENT:
            self.problems.append(f"{where}: statement must be 1-{MAX_STATEMENT} characters")
        if not claim.source.publication or not claim.source.title:
            self.problems.append(f"{where}: source needs a publication and a title")
        if claim.status not in STATUSES:
            self.problems.append(f"{where}: status {claim.status!r} not in {sorted(STATUSES)}")
        if (claim.status == "superseded") != (claim.superseded_by is not None):
            self.problems.append(f"{where}: superseded claims (only) name superseded_by")
        if self.theme_ids is not None:
            unknown = sorted(set(claim.themes) - set(self.theme_ids))
            if unknown:
                self.problems.append(f"{where}: unknown themes {unknown}")


def parse_ledger(
    data: Mapping[str, Any], theme_ids: Collection[str] | None = None
) -> list[LedgerClaim]:
    """Validate parsed TOML; raises LedgerError listing every problem."""
    sources = {str(k): _parse_source(v) for k, v in data.get("sources", {}).items()}
    checker = _Checker(sources, theme_ids)
    claims = [
        claim
        for index, raw in enumerate(data.get("claims", ()), start=1)
        if (claim := checker.claim(raw, index)) is not None
    ]
    ids = [claim.id for claim in claims]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        checker.problems.append(f"duplicate claim ids: {duplicates}")
    known = set(ids)
    for claim in claims:
        if claim.superseded_by and claim.superseded_by not in known:
            checker.problems.append(
                f"{claim.id}: superseded_by names unknown {claim.superseded_by}"
            )
        if claim.superseded_by == claim.id:
            checker.problems.append(f"{claim.id}: a claim cannot supersede itself")
    if checker.problems:
        raise LedgerError(checker.problems)
    return claims


def load_ledger(path: Path, theme_ids: Collection[str] | None = None) -> list[LedgerClaim]:
    """Read a ``claims.toml`` file; a pack without one has an empty ledger."""
    if path.is_dir():
        path = path / LEDGER_FILE
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LedgerError([f"{path.name}: {exc}"]) from exc
    return parse_ledger(data, theme_ids)

"""Full-text search over claims: SQLite FTS5 or PostgreSQL, behind one interface.

Callers pass search *tokens* (lower-case letters and digits, as produced by
``bot.claims.query.tokenize``), never raw user text. Anything else is dropped here too,
and the match expression is always a bound parameter: user input cannot reach SQL or the
FTS query syntax (no quotes, ``*``, ``NEAR(``, column filters or operators).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import Engine, text

TOKEN_RE = re.compile(r"^[a-z0-9]{1,64}$")
MAX_TERMS = 64


def safe_terms(terms: Sequence[str]) -> list[str]:
    """Only plain tokens survive, deduplicated, at most ``MAX_TERMS``."""
    return list(dict.fromkeys(t for t in terms if TOKEN_RE.match(t)))[:MAX_TERMS]


def fts5_expression(terms: Sequence[str]) -> str:
    """An FTS5 MATCH string: every term quoted, joined with OR."""
    return " OR ".join(f'"{term}"' for term in safe_terms(terms))


def tsquery_expression(terms: Sequence[str]) -> str:
    """A PostgreSQL to_tsquery string: plain lexemes joined with |."""
    return " | ".join(safe_terms(terms))


class ClaimSearch:
    """Ranked claim ids for a set of tokens, and term document counts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def search(self, terms: Sequence[str], limit: int = 200) -> list[str]:
        """Claim ids holding any of ``terms``, best (bm25 / ts_rank) first."""
        if not safe_terms(terms) or limit <= 0:
            return []
        if self.dialect == "sqlite":
            sql = text(
                "SELECT c.id FROM claims_fts JOIN claims AS c ON c.rowid = claims_fts.rowid "
                "WHERE claims_fts MATCH :q ORDER BY bm25(claims_fts) LIMIT :n"
            )
            params = {"q": fts5_expression(terms), "n": limit}
        else:
            sql = text(
                "SELECT id FROM claims, to_tsquery('simple', :q) AS q "
                "WHERE search_vector @@ q ORDER BY ts_rank(search_vector, q) DESC, id LIMIT :n"
            )
            params = {"q": tsquery_expression(terms), "n": limit}
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(sql, params)]

    def term_counts(self, limit: int = 200_000) -> tuple[list[tuple[str, int]], int]:
        """(term, documents holding it) for the most common terms, and the document count."""
        if self.dialect == "sqlite":
            sql = text("SELECT term, doc FROM claims_fts_vocab ORDER BY doc DESC LIMIT :n")
        else:
            sql = text(
                "SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM claims') "
                "ORDER BY ndoc DESC LIMIT :n"
            )
        with self.engine.connect() as conn:
            counts = [(str(term), int(doc)) for term, doc in conn.execute(sql, {"n": limit})]
            total = int(conn.execute(text("SELECT count(*) FROM claims")).scalar_one())
        return counts, total

    def rebuild(self) -> None:
        """Rebuild the SQLite index from the claims table (after VACUUM or a table rebuild)."""
        if self.dialect == "sqlite":
            with self.engine.begin() as conn:
                conn.execute(text("INSERT INTO claims_fts(claims_fts) VALUES ('rebuild')"))

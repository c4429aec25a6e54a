"""Topic packs: the data (themes, relevance vocabulary, claims, feeds) that points the bot at
one subject. The loader is generic; everything subject-specific lives in the pack files.

A pack directory holds ``pack.toml`` (metadata, tagging and relevance settings),
``themes.toml`` (the themes), and optionally ``claims.toml`` and ``feeds.opml`` which other
modules read.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

PACK_ENV = "BRIEFBOT_PACK"
_T = TypeVar("_T")
_THEME_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Theme:
    id: str
    name: str
    description: str
    terms: Mapping[str, float]
    exemplars: tuple[str, ...]
    # How much this theme's terms also count as topic vocabulary for the relevance gate
    # (term weight x topic_weight): high for themes that only exist within the topic.
    topic_weight: float = 0.0


@dataclass(frozen=True)
class TaggingConfig:
    """How theme term weights turn into labels."""

    theme_threshold: float = 1.5  # raw weight a theme needs to apply
    relative_floor: float = 0.0  # and this share of the best theme's raw weight
    title_weight: float = 1.5  # multiplier for terms found in the headline
    repeat_bonus: float = 0.25  # extra share of a term's weight per repeat (up to 3 repeats)
    score_scale: float = 4.0  # score = 1 - exp(-raw / scale)
    max_themes: int = 5
    length_norm: float = 150.0  # tokens; longer texts need theme_threshold * sqrt(len / norm)


@dataclass(frozen=True)
class RelevanceWeights:
    """Coefficients of the relevance model: z = bias + sum(weight * feature); score = sigmoid(z)."""

    bias: float = -3.0
    title_entity: float = 2.5
    title_subject: float = 0.8
    body_entity: float = 1.0
    sentence_subject: float = 0.5
    topic_near: float = 1.6
    product: float = 0.8
    peer_headline: float = 2.5
    list_only: float = 2.5
    yardstick: float = 1.5
    other_sense: float = 3.0
    off_topic_context: float = 1.0
    no_topic: float = 6.0


@dataclass(frozen=True)
class RelevanceConfig:
    """Vocabulary of the relevance gate. Phrases map to weights."""

    subject: str  # display name of the subject in reasons ("Meta")
    topic: str  # display name of the topic in reasons ("AI")
    threshold: float
    window: int  # tokens either side of a subject mention that count as "near"
    list_window: int  # list words ("and", "as well as") allowed between names in a list
    min_topic: float  # topic vocabulary weight near the subject below which relevance drops
    entities: Mapping[str, float]  # names of the subject (company, people, nicknames)
    products: Mapping[str, float]  # the subject's products in the topic: name and topic word
    topic_terms: Mapping[str, float]  # vocabulary of the topic
    peers: Mapping[str, float]  # other companies and their products
    other_senses: Mapping[str, float]  # phrases using the names in another sense
    off_topic_context: Mapping[str, float]  # words typical of unrelated senses
    yardstick_cues: tuple[str, ...]  # words that, before a product name, make it a yardstick
    weights: RelevanceWeights


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    description: str
    path: Path
    themes: tuple[Theme, ...]
    relevance: RelevanceConfig
    tagging: TaggingConfig

    def theme(self, theme_id: str) -> Theme | None:
        return next((t for t in self.themes if t.id == theme_id), None)

    @property
    def theme_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.themes)

    @property
    def claims_path(self) -> Path:
        return self.path / "claims.toml"

    @property
    def feeds_path(self) -> Path:
        return self.path / "feeds.opml"


def default_pack_path() -> Path:
    return Path(__file__).resolve().parent / "packs" / "meta_ai"


def load_pack(path: Path | None = None) -> Pack:
    """Load a pack directory; None means $BRIEFBOT_PACK, else the default pack.

    Raises ValueError naming the file and the problem when the pack is broken.
    """
    if path is None:
        env = os.environ.get(PACK_ENV, "").strip()
        path = Path(env) if env else default_pack_path()
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"topic pack {path}: not a directory")
    meta = _read_toml(path / "pack.toml")
    themes_doc = _read_toml(path / "themes.toml")
    reader = _Reader(path / "pack.toml")
    themes = _parse_themes(_Reader(path / "themes.toml"), themes_doc)
    return Pack(
        name=reader.string(meta, "name"),
        title=reader.string(meta, "title", default=reader.string(meta, "name")),
        description=reader.string(meta, "description", default=""),
        path=path,
        themes=themes,
        relevance=_parse_relevance(reader, reader.table(meta, "relevance")),
        tagging=_parse_dataclass(reader, TaggingConfig, meta.get("tagging", {}), "tagging"),
    )


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"{file}: missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{file}: invalid TOML: {exc}") from None


class _Reader:
    """Typed access to a parsed TOML document with errors that name the file and key."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, where: str, problem: str) -> ValueError:
        return ValueError(f"{self.file}: {where}: {problem}")

    def string(self, doc: Mapping[str, Any], key: str, *, default: str | None = None) -> str:
        value = doc.get(key, default)
        if not isinstance(value, str) or (default is None and not value.strip()):
            raise self.fail(key, "must be a non-empty string")
        return value

    def number(self, doc: Mapping[str, Any], key: str, *, default: float | None = None) -> float:
        value = doc.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "must be a number")
        return float(value)

    def table(self, doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = doc.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def weights(self, doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, float]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"{where}.{key}", "must be a table of phrase = weight")
        out: dict[str, float] = {}
        for phrase, weight in value.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise self.fail(f"{where}.{key}.{phrase!r}", "weight must be a number")
            if not phrase.strip():
                raise self.fail(f"{where}.{key}", "empty phrase")
            out[phrase] = float(weight)
        return MappingProxyType(out)

    def strings(self, doc: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{where}.{key}", "must be a list of non-empty strings")
        return tuple(value)


def _parse_themes(reader: _Reader, doc: Mapping[str, Any]) -> tuple[Theme, ...]:
    raw = doc.get("theme")
    if not isinstance(raw, list) or not raw:
        raise reader.fail("theme", "expected at least one [[theme]] table")
    themes: list[Theme] = []
    for index, entry in enumerate(raw):
        where = f"theme #{index + 1}"
        theme_id = reader.string(entry, "id")
        if not _THEME_ID.match(theme_id):
            raise reader.fail(where, f"id {theme_id!r} must be lowercase words joined by '-'")
        where = f"theme {theme_id!r}"
        if any(t.id == theme_id for t in themes):
            raise reader.fail(where, "duplicate theme id")
        terms = reader.weights(entry, "terms", where)
        if not terms:
            raise reader.fail(f"{where}.terms", "needs at least one weighted term")
        themes.append(
            Theme(
                id=theme_id,
                name=reader.string(entry, "name"),
                description=reader.string(entry, "description"),
                terms=terms,
                exemplars=reader.strings(entry, "exemplars", where),
                topic_weight=reader.number(entry, "topic_weight", default=0.0),
            )
        )
    return tuple(themes)


def _parse_relevance(reader: _Reader, doc: Mapping[str, Any]) -> RelevanceConfig:
    where = "relevance"
    entities = reader.weights(doc, "entities", where)
    if not entities:
        raise reader.fail(f"{where}.entities", "needs at least one name of the subject")
    threshold = reader.number(doc, "threshold", default=0.5)
    if not 0.0 < threshold < 1.0:
        raise reader.fail(f"{where}.threshold", "must be between 0 and 1")
    return RelevanceConfig(
        subject=reader.string(doc, "subject"),
        topic=reader.string(doc, "topic"),
        threshold=threshold,
        window=int(reader.number(doc, "window", default=25)),
        list_window=int(reader.number(doc, "list_window", default=3)),
        min_topic=reader.number(doc, "min_topic", default=1.5),
        entities=entities,
        products=reader.weights(doc, "products", where),
        topic_terms=reader.weights(doc, "topic_terms", where),
        peers=reader.weights(doc, "peers", where),
        other_senses=reader.weights(doc, "other_senses", where),
        off_topic_context=reader.weights(doc, "off_topic_context", where),
        yardstick_cues=reader.strings(doc, "yardstick_cues", where),
        weights=_parse_dataclass(reader, RelevanceWeights, doc.get("weights", {}), "weights"),
    )


def _parse_dataclass(reader: _Reader, cls: type[_T], doc: Any, where: str) -> _T:
    """Fill a dataclass of numbers from a TOML table; unknown keys are errors (typos)."""
    if not isinstance(doc, dict):
        raise reader.fail(where, "must be a table")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise reader.fail(where, f"unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key in doc:
        number = reader.number(doc, key)
        values[key] = int(number) if known[key].type in ("int", int) else number
    return cls(**values)

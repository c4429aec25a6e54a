"""Evaluate a tagger on a labelled set (JSON lines: id, title, text, relevant, themes)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.tagger import TagResult


class SupportsTag(Protocol):
    def tag(self, title: str, text: str) -> TagResult: ...


@dataclass(frozen=True)
class LabelledItem:
    id: str
    title: str
    text: str
    relevant: bool
    themes: tuple[str, ...]
    split: str = "dev"


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Miss:
    """One item the tagger got wrong, for inspection."""

    id: str
    title: str
    relevant: bool
    predicted_relevant: bool
    missing: tuple[str, ...]  # gold themes not predicted
    extra: tuple[str, ...]  # predicted themes not in gold


@dataclass(frozen=True)
class EvalReport:
    items: int
    per_theme: Mapping[str, Counts]
    micro: Counts
    # relevance confusion: true/false positives/negatives of the gate
    relevance: Mapping[str, int]
    misses: tuple[Miss, ...]

    @property
    def relevance_accuracy(self) -> float:
        correct = self.relevance["tp"] + self.relevance["tn"]
        return correct / self.items if self.items else 0.0


def load_items(path: Path) -> list[LabelledItem]:
    """Read a dev set; raises ValueError naming the line of a malformed item."""
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(_item(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: bad item: {exc}") from None
    return items


def _item(raw: Any) -> LabelledItem:
    themes = raw["themes"]
    if not isinstance(themes, list) or not isinstance(raw["relevant"], bool):
        raise ValueError("'themes' must be a list and 'relevant' a boolean")
    return LabelledItem(
        id=str(raw["id"]),
        title=str(raw["title"]),
        text=str(raw["text"]),
        relevant=raw["relevant"],
        themes=tuple(str(t) for t in themes),
        split=str(raw.get("split", "dev")),
    )


def evaluate(tagger: SupportsTag, items: Iterable[LabelledItem]) -> EvalReport:
    """Themes predicted for an item are those reported as applying (none when irrelevant)."""
    per_theme: dict[str, list[int]] = {}
    confusion = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    misses: list[Miss] = []
    count = 0
    for item in items:
        count += 1
        result = tagger.tag(item.title, item.text)
        gold, predicted = set(item.themes), {t.id for t in result.themes}
        key = ("t" if result.relevant == item.relevant else "f") + ("p" if result.relevant else "n")
        confusion[key] += 1
        for theme in gold | predicted:
            slot = per_theme.setdefault(theme, [0, 0, 0])
            slot[0 if theme in gold & predicted else 1 if theme in predicted else 2] += 1
        if gold != predicted or result.relevant != item.relevant:
            misses.append(
                Miss(
                    item.id,
                    item.title,
                    item.relevant,
                    result.relevant,
                    tuple(sorted(gold - predicted)),
                    tuple(sorted(predicted - gold)),
                )
            )
    counts = {k: Counts(*v) for k, v in sorted(per_theme.items())}
    micro = Counts(*(sum(getattr(c, f) for c in counts.values()) for f in ("tp", "fp", "fn")))
    return EvalReport(count, counts, micro, confusion, tuple(misses))


def format_report(report: EvalReport, *, show_misses: bool = False) -> str:
    """A plain-text table: one row per theme, then micro averages and the relevance gate."""
    width = max([len("theme"), *(len(t) for t in report.per_theme)])
    lines = [
        f"{'theme':<{width}}  {'prec':>5}  {'rec':>5}  {'f1':>5}  {'tp':>4} {'fp':>4} {'fn':>4}"
    ]
    lines.append("-" * len(lines[0]))
    rows: Sequence[tuple[str, Counts]] = [*report.per_theme.items(), ("micro", report.micro)]
    for name, c in rows:
        if name == "micro":
            lines.append("-" * len(lines[0]))
        lines.append(
            f"{name:<{width}}  {c.precision:5.3f}  {c.recall:5.3f}  {c.f1:5.3f}"
            f"  {c.tp:>4} {c.fp:>4} {c.fn:>4}"
        )
    r = report.relevance
    lines += [
        "",
        f"items: {report.items}",
        f"relevance accuracy: {report.relevance_accuracy:.3f}"
        f"  (tp {r['tp']}, tn {r['tn']}, fp {r['fp']}, fn {r['fn']})",
        f"theme micro-F1: {report.micro.f1:.3f}",
    ]
    if show_misses and report.misses:
        lines += ["", "misses:"]
        for m in report.misses:
            gate = "" if m.relevant == m.predicted_relevant else f" relevant={m.predicted_relevant}"
            lines.append(
                f"  {m.id} {m.title[:60]!r}{gate} missing={list(m.missing)} extra={list(m.extra)}"
            )
    return "\n".join(lines)

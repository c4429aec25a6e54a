"""Theme tagger and relevance gate: behaviour a reader of the digest would notice."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.evaluate import evaluate, format_report, load_items
from bot.pack import Pack, default_pack_path, load_pack
from bot.tagger import (
    _LIST_WORDS,
    _PLAIN,
    _PUNCT,
    _SCAN_ASCII,
    _SCAN_UNICODE,
    _SENTENCE_END,
    Tagger,
    TagResult,
    ThemeScore,
    _codes_of,
    _Doc,
    _Entry,
    _Node,
    stem,
    tokenize,
)

DATA = Path(__file__).parent / "data"
MINIPACK = DATA / "minipack"
META_THEMES = {
    "agi",
    "compute",
    "datacenters-energy",
    "capex",
    "llama-models",
    "open-source",
    "meta-ai-assistant",
    "business-model",
    "competition",
    "safety-policy",
    "geopolitics",
    "devices-metaverse",
    "talent-org",
    "training-data",
}


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(load_pack())


def theme_ids(result: TagResult) -> list[str]:
    return [t.id for t in result.themes]


# --- the pack -------------------------------------------------------------------------------


def test_default_pack_has_exactly_the_fourteen_themes() -> None:
    pack = load_pack()
    assert set(pack.theme_ids) == META_THEMES and len(pack.theme_ids) == 14
    assert pack.path == default_pack_path()
    assert pack.claims_path == pack.path / "claims.toml"
    assert pack.feeds_path == pack.path / "feeds.opml"
    compute = pack.theme("compute")
    assert compute is not None and compute.terms and compute.description
    assert pack.theme("no-such-theme") is None


def test_every_exemplar_is_tagged_with_its_own_theme(tagger: Tagger) -> None:
    for theme in tagger.pack.themes:
        assert len(theme.exemplars) >= 2, theme.id
        for exemplar in theme.exemplars:
            found = [t.id for t in tagger.tag("", exemplar).candidates]
            assert theme.id in found, (theme.id, exemplar, found)


def test_env_variable_selects_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIEFBOT_PACK", str(MINIPACK))
    assert load_pack().name == "voltvan"


@pytest.mark.parametrize(
    ("file", "content", "complaint"),
    [
        ("themes.toml", "[[theme]]\nid = 'x'\nname = 'X'\ndescription = 'd'\n", "terms"),
        ("themes.toml", "[[theme]\n", "invalid TOML"),
        ("themes.toml", "[[theme]]\nid = 'Bad Id'\n", "lowercase"),
        ("pack.toml", "name = 'p'\n[relevance]\nsubject = 'S'\ntopic = 'T'\n", "entities"),
    ],
)
def test_broken_pack_names_file_and_problem(
    tmp_path: Path, file: str, content: str, complaint: str
) -> None:
    for name in ("pack.toml", "themes.toml"):
        (tmp_path / name).write_text((MINIPACK / name).read_text())
    (tmp_path / file).write_text(content)
    with pytest.raises(ValueError, match=re.escape(file)) as err:
        load_pack(tmp_path)
    assert complaint in str(err.value)


def test_unknown_setting_is_reported(tmp_path: Path) -> None:
    (tmp_path / "themes.toml").write_text((MINIPACK / "themes.toml").read_text())
    text = (MINIPACK / "pack.toml").read_text().replace("theme_threshold", "theme_treshold")
    (tmp_path / "pack.toml").write_text(text)
    with pytest.raises(ValueError, match="theme_treshold"):
        load_pack(tmp_path)


def test_missing_pack_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        load_pack(tmp_path / "nope")


# --- tagging --------------------------------------------------------------------------------


def test_tagging_is_deterministic(tagger: Tagger) -> None:
    title = "Meta lifts capital spending forecast as it buys more Nvidia GPUs"
    text = "The Facebook parent said capex would rise to fund data centers for Llama 4."
    first = tagger.tag(title, text)
    assert first == tagger.tag(title, text) == Tagger(load_pack()).tag(title, text)
    assert first.relevant and {"capex", "compute"} <= set(theme_ids(first))


def test_evidence_is_text_from_the_article(tagger: Tagger) -> None:
    for item in load_items(DATA / "devset.jsonl")[:60]:
        result = tagger.tag(item.title, item.text)
        whole = f"{item.title}\n\n{item.text}"
        for theme in result.candidates:
            assert theme.evidence, theme
            for phrase in theme.evidence:
                assert phrase in whole, (item.id, theme.id, phrase)


def test_plurals_hyphens_and_curly_quotes_match(tagger: Tagger) -> None:
    result = tagger.tag(
        "Meta\u2019s open-source push",
        "Mark Zuckerberg said Meta\u2019s H100s and other GPUs train open weights models "
        "released as open source.",
    )
    assert result.relevant
    by_id = {t.id: t for t in result.themes}
    assert "H100s" in by_id["compute"].evidence
    assert "open-source" in by_id["open-source"].evidence
    unhyphenated = tagger.tag("Meta’s open source push", "Meta AI models are open.")
    assert "open source" in _theme(unhyphenated, "open-source").evidence


def test_scores_are_bounded_and_best_first(tagger: Tagger) -> None:
    result = tagger.tag(
        "Meta releases Llama 3.1 405B, its largest open model",
        "The model's weights are free to download; it rivals GPT-4 on benchmarks.",
    )
    scores = [t.score for t in result.themes]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores) and 0 <= result.relevance <= 1
    assert theme_ids(result)[0] == "llama-models"


def test_headline_mentions_weigh_more(tagger: Tagger) -> None:
    body = "Engineers said the cluster of Nvidia graphics processors is used for AI training."
    with_title = tagger.tag("Meta builds a new AI cluster", body)
    in_body_only = tagger.tag("A new AI cluster", body.replace("Engineers", "Meta engineers"))
    assert with_title.relevance > in_body_only.relevance
    theme_in_title = tagger.tag("Meta adds GPUs", "Meta said the AI work continues.")
    theme_in_body = tagger.tag("Meta update", "Meta said the AI work needs GPUs.")
    assert _score(theme_in_title, "compute") > _score(theme_in_body, "compute")


def _score(result: TagResult, theme_id: str) -> float:
    return next((t.score for t in result.candidates if t.id == theme_id), 0.0)


def _theme(result: TagResult, theme_id: str) -> ThemeScore:
    return next(t for t in result.candidates if t.id == theme_id)


@pytest.mark.parametrize(
    ("title", "text", "why"),
    [
        (
            "Anthropic ships Claude upgrade",
            "Anthropic's new model writes code faster and is cheaper for developers.",
            "not mentioned",
        ),
        (
            "Startup's model outperforms Llama 3 on maths",
            "The French lab said its open model beats Llama 3 70B and GPT-3.5 on most tests.",
            "yardstick",
        ),
        (
            "Chip demand lifts Nvidia results",
            "Nvidia said Microsoft, Meta, Amazon and Google kept ordering its AI accelerators.",
            "list",
        ),
        (
            "Meta raises Quest headset price",
            "Meta said the Quest 3 virtual reality headset will cost $50 more from March.",
            "vocabulary",
        ),
        (
            "Trekking with llamas in the Andes",
            "Guides lead llamas and alpacas along mountain trails; the wool is sold in town.",
            "off-topic",
        ),
        (
            "Meta-analysis finds AI tutors help students",
            "A meta-analysis of 30 trials found AI tutoring models improved test scores.",
            "other sense",
        ),
        (
            "Chan Zuckerberg Initiative funds AI biology models",
            "The philanthropy of Priscilla Chan and Mark Zuckerberg trains AI models of cells.",
            "other sense",
        ),
    ],
)
def test_hard_negatives_are_not_relevant(tagger: Tagger, title: str, text: str, why: str) -> None:
    result = tagger.tag(title, text)
    assert not result.relevant, result.reasons
    assert result.themes == ()
    assert any(why in reason for reason in result.reasons), result.reasons


def test_comparing_llama_with_gpt4_is_relevant(tagger: Tagger) -> None:
    result = tagger.tag(
        "Llama 3 vs GPT-4: how Meta's open model stacks up",
        "Meta's Llama 3 70B trails OpenAI's GPT-4 only narrowly on reasoning benchmarks.",
    )
    assert result.relevant
    assert {"llama-models", "competition"} <= set(theme_ids(result))


def test_informal_names_of_the_company_count(tagger: Tagger) -> None:
    result = tagger.tag(
        "Facebook parent plans more AI spending",
        "The Menlo Park company expects capital expenditures to climb as it adds AI servers.",
    )
    assert result.relevant and "capex" in theme_ids(result)


def test_irrelevant_items_keep_candidate_themes(tagger: Tagger) -> None:
    result = tagger.tag("OpenAI buys more GPUs", "OpenAI signed for Nvidia H100 clusters.")
    assert not result.relevant and result.themes == ()
    assert "compute" in [t.id for t in result.candidates]


def test_empty_and_odd_input_do_not_break(tagger: Tagger) -> None:
    assert not tagger.tag("", "").relevant
    odd = tagger.tag("Meta \u00e9t\u00e9 \U0001f916 AI", "'s ... ??? \u0130stanbul " * 50)
    assert isinstance(odd.relevance, float)


# --- a second pack: the engine has nothing subject-specific -------------------------------


def test_minipack_tags_its_own_domain() -> None:
    mini = Tagger(load_pack(MINIPACK))
    result = mini.tag(
        "Voltvan opens second battery factory",
        "Voltvan said the plant will build lithium cells that add range to its electric vans.",
    )
    assert result.relevant
    assert set(theme_ids(result)) == {"batteries", "factories"}


def test_minipack_sees_nothing_in_meta_news() -> None:
    mini = Tagger(load_pack(MINIPACK))
    result = mini.tag(
        "Meta releases Llama 4 and plans gigawatt data centers",
        "Zuckerberg said the open-source models trained on H100s power Meta AI.",
    )
    assert not result.relevant
    assert {t.id for t in result.candidates} <= {"batteries", "factories"}


def test_engine_source_has_no_subject_words() -> None:
    root = Path(__file__).parent.parent / "bot"
    for module in ("tagger.py", "evaluate.py"):
        source = (root / module).read_text().lower()
        for word in ("meta", "llama", "zuckerberg", "openai", "nvidia"):
            assert word not in source, (module, word)


# --- evaluation -----------------------------------------------------------------------------


def test_evaluate_counts_and_formats(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "title": "Voltvan battery news", "text": "Voltvan electric battery cells.",
         "relevant": True, "themes": ["batteries"]},
        {"id": "b", "title": "Voltvan", "text": "Voltvan electric vans get a new factory.",
         "relevant": True, "themes": ["batteries"]},
        {"id": "c", "title": "Ford news", "text": "Ford electric trucks.",
         "relevant": False, "themes": []},
    ]  # fmt: skip
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    report = evaluate(Tagger(load_pack(MINIPACK)), load_items(path))
    assert report.items == 3 and report.relevance_accuracy == 1.0
    batteries = report.per_theme["batteries"]
    assert (batteries.tp, batteries.fp, batteries.fn) == (1, 0, 1)
    assert report.per_theme["factories"].fp == 1
    assert report.micro.precision == 0.5 and report.micro.recall == 0.5
    text = format_report(report)
    assert "batteries" in text and "relevance accuracy: 1.000" in text
    assert "theme micro-F1: 0.500" in text


def test_malformed_dev_set_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "title": "t", "text": "x", "relevant": "yes", "themes": []}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        load_items(path)


# --- how text is read -----------------------------------------------------------------------

PIECES = [
    *"aZ09 .!?\n\t'_-",
    "\u2019s",
    "'s",
    "3.1",
    "H100s",
    "\u00a0",
    "\u2003",
    "\u0130",
    "\u03a3",
    "\u00e9",
    "e\u0301",
    "\u00df",
    "\uff21",
    "Meta",
    "GPUs",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(PIECES), max_size=30), st.lists(st.sampled_from(PIECES), max_size=8)
)
def test_documents_read_as_one_scan_of_the_whole_text(body: list[str], head: list[str]) -> None:
    # The definition: one scan of the normalised text; a token's surface is its span there.
    title = "".join(head)
    text = f"{title}\n\n{''.join(body)}"
    norm = text.translate(_PUNCT).lower()
    scan = _SCAN_ASCII if norm.isascii() else _SCAN_UNICODE
    parts = scan.split(norm)
    ends = list(accumulate(map(len, parts)))
    source = text if len(norm) == len(text) else norm
    doc = _Doc(text, title)
    assert doc.tokens == [stem(w) for w in parts[1::2]]
    headline = title.translate(_PUNCT).lower()
    assert doc.title_len == (len(scan.findall(headline)) if title else 0)
    for start in range(len(doc.tokens)):
        for end in range(start + 1, min(len(doc.tokens), start + 3) + 1):
            assert doc.surface(start, end) == source[ends[2 * start] : ends[2 * end - 1]]


def test_irrelevant_items_can_skip_their_theme_candidates(tagger: Tagger) -> None:
    items = [
        ("Meta trains Llama on a new GPU cluster", "Meta said the cluster holds H100 GPUs."),
        ("Apple opens a data center", "The data center runs on solar power and GPUs."),
    ]
    for title, text in items:
        full = tagger.tag(title, text)
        lean = tagger.tag(title, text, candidates_if_irrelevant=False)
        assert (lean.relevant, lean.relevance, lean.themes, lean.reasons) == (
            full.relevant,
            full.relevance,
            full.themes,
            full.reasons,
        )
        assert lean.candidates == (full.candidates if full.relevant else ())


def _pack_phrases(pack: Pack) -> set[str]:
    rel = pack.relevance
    lists: list[Iterable[str]] = [rel.entities, rel.products, rel.topic_terms, rel.peers]
    lists += [rel.other_senses, rel.off_topic_context, rel.yardstick_cues]
    lists += [theme.terms for theme in pack.themes]
    return {phrase for phrases in lists for phrase in phrases}


def _trie_phrases(
    level: dict[str, _Node], prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], _Entry]:
    found: dict[tuple[str, ...], _Entry] = {}
    for token, node in level.items():
        toks = (*prefix, token)
        if node.entry is not None:
            found[toks] = node.entry
        found.update(_trie_phrases(node.longer, toks))
    return found


def test_the_lexicon_holds_every_pack_phrase(tagger: Tagger) -> None:
    phrases = _trie_phrases(tagger._index)
    expected = {tuple(tokenize(p)) for p in _pack_phrases(tagger.pack)} - {()}
    assert set(phrases) == expected
    assert all(entry.phrase == toks for toks, entry in phrases.items())


def _longest_first(
    tokens: list[str], phrases: dict[tuple[str, ...], _Entry]
) -> list[tuple[int, int, _Entry]]:
    """The definition: at each position the longest phrase; matched tokens are used up."""
    hits, i, longest = [], 0, max(map(len, phrases))
    while i < len(tokens):
        for size in range(min(longest, len(tokens) - i), 0, -1):
            entry = phrases.get(tuple(tokens[i : i + size]))
            if entry is not None:
                hits.append((i, i + size, entry))
                i += size
                break
        else:
            i += 1
    return hits


_META_TAGGER = Tagger(load_pack())
# Pack phrases and their words, so that texts run through many overlapping phrases.
_PHRASES = sorted(_pack_phrases(_META_TAGGER.pack))
_PHRASE_PARTS = [*_PHRASES, *sorted({w for p in _PHRASES for w in p.split()}), ".", "and"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PHRASE_PARTS), max_size=30))
def test_matching_takes_the_longest_phrase_first(parts: list[str]) -> None:
    doc = _Doc(" ".join(parts))
    phrases = _trie_phrases(_META_TAGGER._index)
    hits = [(h.start, h.end, h.entry) for h in _META_TAGGER._match(doc)]
    assert hits == _longest_first(doc.tokens, phrases)


# --- the coded document and its shortcuts, held to the plain definitions -----------------

_TEXT_PARTS = [*PIECES, *_PHRASE_PARTS[::7], *sorted(_LIST_WORDS), " ", " ", ". ", ", "]
_TEXT_PARTS += ["Meta\u2019s", "\u00a0", " and ", " as well as "]


def _coded(doc: _Doc, tagger: Tagger) -> str:
    """The definition of a document's codes: one per token, from the tagger's lexicon."""
    code = tagger._coder.code
    return "".join(code.get(t, " ") if t not in _SENTENCE_END else code[t] for t in doc.tokens)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_TEXT_PARTS), max_size=60),
    st.lists(st.sampled_from(_TEXT_PARTS), max_size=8),
)
def test_coded_documents_agree_with_their_tokens(body: list[str], head: list[str]) -> None:
    tagger = _META_TAGGER
    title = "".join(head)
    text = f"{title}\n\n{' '.join(body)}"
    doc = _Doc(text, title, tagger._coder)
    plain = _Doc(text, title)
    assert doc.tokens == plain.tokens and doc.title_len == plain.title_len
    assert doc.codes == _coded(doc, tagger) == plain.codes_for(tagger._coder)
    assert len(plain.codes) == len(doc.tokens)
    for i, token in enumerate(doc.tokens):
        assert doc.is_list_word(i) == (token in _LIST_WORDS)
        before = doc.tokens[max(0, i - 3) : i]
        expected = 0
        for t in reversed(before):
            if t in _SENTENCE_END:
                break
            expected += 1
        assert doc.sentence_pos(i) == expected
    # Matching runs of lexicon words finds what matching the whole token list finds.
    phrases = _trie_phrases(tagger._index)
    found = [(h.start, h.end, h.entry) for h in tagger._match(doc)]
    assert found == _longest_first(doc.tokens, phrases)
    assert found == [(h.start, h.end, h.entry) for h in tagger._match(plain)]


def _surface_by_definition(text: str, start: int, end: int) -> str:
    norm = text.translate(_PUNCT).lower()
    parts = (_SCAN_ASCII if norm.isascii() else _SCAN_UNICODE).split(norm)
    ends = list(accumulate(map(len, parts)))
    source = text if len(norm) == len(text) else norm
    return source[ends[2 * start] : ends[2 * end - 1]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_TEXT_PARTS), min_size=40, max_size=160), st.randoms())
def test_surfaces_of_long_documents_in_any_order(parts: list[str], rng: random.Random) -> None:
    # Offsets are worked out block by block, as far as asked: ask far first, or near first.
    text = "Meta \u0130 news\n\n" + " ".join(parts)
    doc = _Doc(text, "Meta \u0130 news", _META_TAGGER._coder)
    spans = [(s, e) for s in range(len(doc.tokens)) for e in range(s + 1, len(doc.tokens) + 1)]
    for start, end in rng.sample(spans, min(len(spans), 40)):
        assert doc.surface(start, end) == _surface_by_definition(text, start, end)
    with pytest.raises(IndexError):
        doc.surface(0, len(doc.tokens) + 1)


def test_caches_of_codes_and_runs_stay_bounded_and_change_nothing() -> None:
    items = [(item.title, item.text) for item in load_items(DATA / "devset.jsonl")]
    small = Tagger(load_pack())
    small._coder.limit = small._runs.limit = 40
    expected = [_META_TAGGER.tag(title, text) for title, text in items]
    for _ in range(2):
        assert [small.tag(title, text) for title, text in items] == expected
        assert len(small._coder) <= 40 and len(small._runs) <= 40


# --- items that never name the subject --------------------------------------------------


def _watched_phrases(tagger: Tagger) -> dict[str, bool]:
    """Each pack phrase -> does the tagger's cheap check find a watched word in it."""
    coder = tagger._coder
    return {p: bool(tagger._watched.search(_Doc(p, coder=coder).codes)) for p in _PHRASES}


_WATCHED = _watched_phrases(_META_TAGGER)
# Texts of these rarely hold a watched word: most take the shortcut, with peers in the
# headline or not.
_UNNAMED_PARTS = [p for p, watched in _WATCHED.items() if not watched]
_UNNAMED_PARTS += [*sorted(_LIST_WORDS), ".", ",", "\n", "'s", "Said", "the", "x"] * 5
_UNNAMED_PARTS += [p for p, watched in _WATCHED.items() if watched][::9]


def _plain_tag(tagger: Tagger, title: str, text: str) -> TagResult:
    """The definition: match every phrase and score the relevance, with no shortcut."""
    return tagger._tag(_Doc(f"{title}\n\n{text}", title, tagger._coder), False)


def test_every_name_other_sense_and_off_topic_phrase_holds_a_watched_word() -> None:
    for tagger in (_META_TAGGER, Tagger(load_pack(MINIPACK))):
        entries = _trie_phrases(tagger._index).values()
        for entry in entries:
            s = entry.signals
            if s is not None and (s.name or s.other_sense or s.off_topic):
                codes = "".join(tagger._coder.code[t] for t in entry.phrase)
                assert tagger._watched.search(codes), entry.phrase
    assert sum(_WATCHED.values()) < len(_WATCHED) / 2  # the check does not watch everything


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_UNNAMED_PARTS), max_size=40),
    st.lists(st.sampled_from(_UNNAMED_PARTS), max_size=8),
)
def test_unnamed_items_get_the_plain_result(body: list[str], head: list[str]) -> None:
    title, text = " ".join(head), " ".join(body)
    lean = _META_TAGGER.tag(title, text, candidates_if_irrelevant=False)
    assert lean == _plain_tag(_META_TAGGER, title, text)
    assert repr(lean) == repr(_plain_tag(_META_TAGGER, title, text))


def test_unnamed_items_of_the_dev_set_get_the_plain_result() -> None:
    tagger = Tagger(load_pack())
    items = [(item.title, item.text) for item in load_items(DATA / "devset.jsonl")]
    items += [("", text) for _, text in items] + [(title, "") for title, _ in items]
    for title, text in items:
        lean = tagger.tag(title, text, candidates_if_irrelevant=False)
        assert lean == _plain_tag(tagger, title, text), (title, text)
    assert set(tagger._unnamed) == {True, False}  # shortcuts taken, led by a peer or not


@pytest.mark.parametrize("chunks", [[""], ["meta"], ["meta", "ai."], ["a", "b", "c", "meta's"]])
def test_codes_of_gives_a_code_per_chunk(chunks: list[str]) -> None:
    assert _codes_of(_PLAIN, chunks) == tuple(_PLAIN[chunk] for chunk in chunks)

"""The shipped claim ledger: complete, valid, cited, and in the project's own words."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bot.claims.ledger import (
    DEFAULT_PACK_DIR,
    LedgerClaim,
    LedgerError,
    load_ledger,
    parse_ledger,
)

THEMES = {
    "agi", "compute", "datacenters-energy", "capex", "llama-models", "open-source",
    "meta-ai-assistant", "business-model", "competition", "safety-policy", "geopolitics",
    "devices-metaverse", "talent-org", "training-data",
}  # fmt: skip
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


@pytest.fixture(scope="module")
def ledger() -> list[LedgerClaim]:
    return load_ledger(DEFAULT_PACK_DIR, THEMES)


def test_ledger_has_enough_valid_claims_from_every_seed(ledger: list[LedgerClaim]) -> None:
    assert len(ledger) >= 45
    seeds = Counter(claim.source.seed for claim in ledger)
    assert len(seeds) == 5 and min(seeds.values()) >= 5
    for claim in ledger:
        assert claim.claimed_on is not None, claim.id
        assert claim.themes, claim.id
        assert claim.source.publication and claim.source.title, claim.id


def test_headline_figures_are_normalised(ledger: list[LedgerClaim]) -> None:
    by_id = {claim.id: claim for claim in ledger}
    gpus = by_id["meta-350k-h100-2024"].figures[0]
    assert (gpus.value, gpus.unit) == (350_000, "H100 GPUs")
    assert by_id["meta-600k-h100-equivalents-2024"].figures[0].approx
    spend = by_id["meta-h100-spend-7-10b"].figures[0]
    assert (spend.low, spend.high, spend.unit) == (7e9, 10e9, "USD")
    assert by_id["llama-licence-700m-users"].figures[0].value == 7e8
    sizes = {f.value for f in by_id["llama3-8b-70b-released"].figures}
    assert sizes == {8e9, 70e9}


def test_in_training_claim_is_superseded_by_the_release(ledger: list[LedgerClaim]) -> None:
    by_id = {claim.id: claim for claim in ledger}
    training = by_id["llama3-405b-in-training"]
    assert training.status == "superseded"
    assert training.superseded_by == "llama31-405b-released"
    assert by_id["llama31-405b-released"].figures[0].value == 405e9
    assert training.status_note


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seeds live in ../shared/seeds")
def test_statements_do_not_copy_seed_sentences(ledger: list[LedgerClaim]) -> None:
    seed_text = " ".join(p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")).lower()
    seed_text = re.sub(r"\s+", " ", seed_text)
    for claim in ledger:
        words = claim.statement.lower().split()
        # No run of 8 consecutive words of a statement appears verbatim in a seed.
        for start in range(len(words) - 7):
            run = " ".join(words[start : start + 8])
            assert run not in seed_text, f"{claim.id}: {run!r}"


def test_broken_ledgers_are_refused_with_every_problem_listed() -> None:
    data = {
        "sources": {"s": {"publication": "P", "title": "T"}},
        "claims": [
            {"id": "Bad Id", "statement": "x", "source": "s", "themes": ["nope"]},
            {"id": "a", "statement": "y", "source": "missing"},
            {"id": "b", "statement": "z", "source": "s", "status": "superseded",
             "superseded_by": "ghost"},
            {"id": "c", "statement": "w", "source": "s",
             "figures": [{"low": 5.0, "high": 1.0, "unit": "USD"}]},
        ],
    }  # fmt: skip
    with pytest.raises(LedgerError) as err:
        parse_ledger(data, THEMES)
    text = str(err.value)
    for expected in ("lowercase slug", "unknown themes", "unknown source", "ghost", "range"):
        assert expected in text


def test_a_pack_without_a_ledger_has_no_claims(tmp_path: Path) -> None:
    assert load_ledger(tmp_path) == []
    (tmp_path / "claims.toml").write_text("claims = [ {", encoding="utf-8")
    with pytest.raises(LedgerError):
        load_ledger(tmp_path)

"""The CLI contracts of DESIGN.md, run as a user would: the real `briefbot` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.samples import sample_files

REPO = Path(__file__).resolve().parents[1]


def briefbot(
    *args: str, stdin: str = "", db: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if db is not None:
        env["BRIEFBOT_DATABASE_URL"] = f"sqlite:///{db}"
    proc = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=db.parent if db else REPO,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_tag_json_contract() -> None:
    article = {
        "title": "Zuckerberg says Meta will spend up to $72 billion on AI data centers",
        "text": "Meta raised its capital expenditure forecast as it builds gigawatt-scale "
        "data centers for training Llama models; investors sent shares lower.",
    }
    got = json.loads(briefbot("tag", "--json", stdin=json.dumps(article)).stdout)
    assert set(got) == {"relevant", "relevance", "themes", "summary"}
    assert got["relevant"] is True and 0 <= got["relevance"] <= 1
    ids = [t["id"] for t in got["themes"]]
    assert "capex" in ids and "datacenters-energy" in ids
    scores = [t["score"] for t in got["themes"]]
    assert scores == sorted(scores, reverse=True), "best first"
    assert all(t["evidence"] and isinstance(t["evidence"][0], str) for t in got["themes"])
    assert 0 < len(got["summary"]) <= 300


def test_tag_accepts_plain_text_and_rejects_off_topic() -> None:
    text = "OpenAI releases GPT-5.5\nOpenAI said its new model is faster and cheaper."
    got = json.loads(briefbot("tag", "--json", stdin=text).stdout)
    assert got["relevant"] is False and got["themes"] == []


@pytest.mark.parametrize("stdin", ["", "{not json", '["a list"', '{"title": 5}'])
def test_tag_bad_input_is_one_clear_line(stdin: str) -> None:
    proc = briefbot("tag", "--json", stdin=stdin, check=False)
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_claim_json_contract(tmp_path: Path) -> None:
    got = json.loads(briefbot("claim", "350k", "H100s", "--json", db=tmp_path / "b.db").stdout)
    assert got["query"] == "350k H100s"
    top = got["matches"][0]
    assert set(top) == {
        "id", "statement", "speaker", "claimed_on", "source", "themes", "status", "score",
        "coverage",
    }  # fmt: skip
    assert "350,000" in top["statement"] and top["source"]["seed"].endswith(".txt")
    assert set(top["source"]) == {"publication", "title", "url", "seed"}
    assert top["claimed_on"] == "2024-01-18"
    limited = briefbot("claim", "Llama", "--json", "--limit", "1", db=tmp_path / "b.db")
    assert len(json.loads(limited.stdout)["matches"]) <= 1


@pytest.mark.parametrize(
    "query", ["'; DROP TABLE claims; --", 'NEAR("a" *', "🦙🦙🦙", "x" * 10_000]
)
def test_claim_survives_hostile_queries(tmp_path: Path, query: str) -> None:
    got = json.loads(briefbot("claim", query, "--json", db=tmp_path / "b.db").stdout)
    assert isinstance(got["matches"], list)
    again = json.loads(briefbot("claim", "600k", "--json", db=tmp_path / "b.db").stdout)
    assert again["matches"], "the claims table is intact"


def test_claim_nothing_matches_says_so(tmp_path: Path) -> None:
    got = json.loads(
        briefbot("claim", "banana bread recipe", "--json", db=tmp_path / "b.db").stdout
    )
    assert got["matches"] == []
    text = briefbot("claim", "banana bread recipe", db=tmp_path / "b.db").stdout
    assert "No tracked claim matches" in text


def test_ingest_digest_formats_and_feed_errors(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    ingested = briefbot("ingest", *map(str, sample_files()), db=db)
    assert "0 failed" in ingested.stdout
    text = briefbot("digest", "--since", "24h", db=db).stdout
    assert "Meta AI briefing" in text and "## " in text
    as_json = json.loads(briefbot("digest", "--format", "json", db=db).stdout)
    assert as_json["kind"] == "digest" and as_json["sections"]
    slack = json.loads(briefbot("digest", "--format", "slack", db=db).stdout)
    assert slack and all(p["channel"] and p["text"] and len(p["blocks"]) <= 50 for p in slack)
    bad = briefbot("digest", "--since", "yesterday", db=db, check=False)
    assert bad.returncode == 1 and "bad --since" in bad.stderr
    bad = briefbot("digest", "--format", "pdf", db=db, check=False)
    assert bad.returncode == 1 and "unknown format" in bad.stderr


def test_feed_commands_give_clear_errors(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    for args, expected in [
        (("feeds", "add", "ftp://example.com/feed"), "only http and https"),
        (("feeds", "remove", "https://nowhere.example/feed"), "not following"),
        (("ingest", "/no/such/file.xml"), "no such file"),
        (("feeds", "import-opml", str(tmp_path / "missing.opml")), "cannot read"),
    ]:
        proc = briefbot(*args, db=db, check=False)
        assert proc.returncode == 1 and expected in proc.stderr, (args, proc.stderr)
    briefbot("feeds", "add", "https://news.example/feed.xml", db=db)
    listed = briefbot("feeds", "list", db=db).stdout
    assert "news.example" in listed
    exported = briefbot("feeds", "export-opml", db=db).stdout
    assert 'xmlUrl="https://news.example/feed.xml"' in exported


def test_opml_import_of_the_default_pack(tmp_path: Path) -> None:
    opml = REPO / "bot" / "packs" / "meta_ai" / "feeds.opml"
    out = briefbot("feeds", "import-opml", str(opml), db=tmp_path / "b.db").stdout
    assert "imported 22 feeds" in out


def test_eval_prints_per_theme_scores() -> None:
    out = briefbot("eval").stdout
    for theme in ("agi", "compute", "training-data", "micro"):
        assert theme in out


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "BRIEFBOT_DATABASE_URL": "postgresql://bob:s3cretpass@127.0.0.1:1/x",
    }
    proc = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "feeds", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and "s3cretpass" not in proc.stderr

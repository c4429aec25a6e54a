"""The mypyc-compiled ingest hot path: in use when built, and the same as plain Python.

`make install` compiles the modules bot/compiled.py lists (BRIEFBOT_COMPILE=0 skips it);
BRIEFBOT_PURE=1 imports their sources instead. Compiled code trusts declared types and
has its own string primitives, so the two are compared on real feeds, end to end.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.machinery
import os
import pickle
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import compiled
from bot.pack import default_pack_path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "feedparser-tests"
FETCHED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# Greek final sigma is the one letter compiled str.lower() gets wrong (see bot/casing.py).
GREEK_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>ΟΔΟΣ News</title><link>https://ΟΔΟΣ.example/</link>
<item><title>ΜΕΤΑ ΛΟΓΟΣ: Meta AI ships Llama 5 in Greek</title>
<link>https://ΟΔΟΣ.example/a?utm_source=x&amp;ΚΛΕΙΣ=1</link><guid>g1</guid>
<pubDate>Fri, 20 Nov 2026 09:00:00 GMT</pubDate>
<description>&lt;p&gt;Meta said its ΝΕΟΣ ΚΟΣΜΟΣ model used 2.2 GW and $150 billion of
GPUs, Zuckerberg told ΤΑ ΝΕΑ.&lt;/p&gt;</description></item></channel></rss>"""

PREPARE_SCRIPT = """
import pickle, sys
from datetime import datetime, UTC
from pathlib import Path
from bot import compiled, cluster
from bot.prepare import parse_and_prepare
fetched_at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
out = []
for path in sys.argv[3:]:
    body = Path(path).read_bytes()
    feed = parse_and_prepare(body, "https://feeds.example/" + Path(path).name, None,
                             fetched_at, sys.argv[2], None, True)
    out.append(feed)
assert compiled.is_compiled(cluster) == (sys.argv[1] == "compiled"), cluster.__file__
sys.stdout.buffer.write(pickle.dumps(out))
"""


def _wants_compiled() -> bool:
    return os.environ.get("BRIEFBOT_COMPILE", "1") != "0" and not os.environ.get("BRIEFBOT_PURE")


def test_built_modules_are_the_ones_imported() -> None:
    """After `make install`, every listed module runs compiled; a stale or missing build
    would quietly cost the ingest its speed."""
    if not _wants_compiled():
        pytest.skip("pure Python asked for (BRIEFBOT_COMPILE=0 or BRIEFBOT_PURE=1)")
    assert compiled.built_library() is not None, "not compiled: run `make install`"
    assert compiled.stale() == [], "sources changed since the build: run `make install`"
    for name in compiled.MODULES:
        module = importlib.import_module(name)
        assert compiled.is_compiled(module), f"{name} imported from {module.__file__}"


def _prepare(mode: str, paths: list[Path]) -> list[object]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("BRIEFBOT_PURE", None)
    if mode == "pure":
        env["BRIEFBOT_PURE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", PREPARE_SCRIPT, mode, str(default_pack_path())]
        + [str(p) for p in paths],
        capture_output=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    result: list[object] = pickle.loads(proc.stdout)
    return result


def _feeds(tmp_path: Path) -> list[Path]:
    greek = tmp_path / "greek.xml"
    greek.write_text(GREEK_FEED, encoding="utf-8")
    samples = sorted((REPO / "bot" / "samples").glob("*.xml"))
    # Every 5th file of feedparser's corpus: broken encodings, entities, odd dates, HTML.
    corpus = sorted(CORPUS.rglob("*.xml"))[::5]
    return [greek, *samples, *corpus]


def test_compiled_and_pure_prepare_the_same_entries(tmp_path: Path) -> None:
    """Parse, tag, summarise, sign and link claims, both ways: equal results, pickled
    across processes as the parse workers send them."""
    if not _wants_compiled():
        pytest.skip("pure Python asked for (BRIEFBOT_COMPILE=0 or BRIEFBOT_PURE=1)")
    paths = _feeds(tmp_path)
    assert len(paths) > 400
    built, pure = _prepare("compiled", paths), _prepare("pure", paths)
    assert len(built) == len(pure) == len(paths)
    for path, a, b in zip(paths, built, pure, strict=True):
        assert _untimed(a) == _untimed(b), path.name
    entries = sum(len(feed.entries) for feed in built)  # type: ignore[attr-defined]
    assert entries > 300
    greek = built[0].entries[0].item  # type: ignore[attr-defined]
    assert greek.relevant and "ΛΟΓΟΣ" in greek.title
    assert greek.canonical_url.startswith("https://xn--")  # the host, IDNA-encoded


def _untimed(feed: Any) -> Any:
    """The feed without the tagger's timings, which differ from run to run."""
    entries = tuple(dataclasses.replace(e, tag_seconds=0.0) for e in feed.entries)
    return dataclasses.replace(feed, entries=entries)


def test_pure_mode_imports_every_listed_module_from_source() -> None:
    script = (
        "import importlib, sys\n"
        "from bot import compiled\n"
        "mods = [importlib.import_module(m) for m in compiled.MODULES]\n"
        "print(all(m.__file__.endswith('.py') for m in mods))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "BRIEFBOT_PURE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stdout.strip() == "True"


def test_a_source_newer_than_the_build_is_reported_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "ROOT", tmp_path)
    (tmp_path / ".git").mkdir()
    for name in compiled.MODULES:
        source = compiled.source_of(name)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
    library = tmp_path / f"{compiled.GROUP}__mypyc{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    library.write_bytes(b"")
    later = time.time() + 60
    os.utime(library, (later, later))
    assert compiled.stale() == []
    edited = tmp_path / "bot" / "tagger.py"
    os.utime(edited, (later + 60, later + 60))
    assert compiled.stale() == ["bot.tagger"]
    # An installed package (no checkout) trusts its build, whatever the file times say.
    (tmp_path / ".git").rmdir()
    assert compiled.stale() == []

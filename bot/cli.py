"""The `briefbot` command line. Bad input gets one clear line on stderr, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

from bot.app import App, open_app
from bot.config import load_settings
from bot.ingest import FeedReport, RunReport
from bot.logs import Redactor, settings_secrets, setup_logging
from bot.opml import OPMLError, Outline, parse_opml, render_opml
from bot.ssrf import check_url_syntax
from storage import db as storage_db
from storage import feeds as feed_repo

app = typer.Typer(
    help="briefbot: Meta AI coverage, briefed into Slack and Discord.",
    pretty_exceptions_enable=False,
)
feeds_app = typer.Typer(help="Manage the feed list.")
db_app = typer.Typer(help="Database schema.")
app.add_typer(feeds_app, name="feeds")
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True, soft_wrap=True)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(1)


@contextmanager
def opened() -> Iterator[App]:
    application = open_app()
    try:
        yield application
    finally:
        application.close()


# -- db ---------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (also done automatically at start)."""
    with opened() as a:
        storage_db.upgrade(a.db.engine, revision)
        out.print(f"database at revision {storage_db.current_revision(a.db.engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" empties the database)."""
    with opened() as a:
        storage_db.downgrade(a.db.engine, revision)
        out.print(f"database at revision {storage_db.current_revision(a.db.engine)}")


@db_app.command("current")
def db_current() -> None:
    with opened() as a:
        out.print(storage_db.current_revision(a.db.engine) or "empty")


# -- feeds ------------------------------------------------------------------------------


@feeds_app.command("list")
def feeds_list() -> None:
    """Every feed with its state and last error."""
    with opened() as a, a.db.session() as session:
        feeds = feed_repo.list_feeds(session)
        if not feeds:
            out.print("no feeds yet: `briefbot feeds add URL` or `briefbot feeds import-opml FILE`")
            return
        table = Table("id", "feed", "state", "last success", "errors", "last error")
        for f in feeds:
            state = "ok" if f.enabled else "paused"
            if f.enabled and f.consecutive_errors:
                state = "failing"
            table.add_row(
                str(f.id),
                f"{f.title or ''}\n{f.url}".strip(),
                state,
                _ago(f.last_success_at),
                str(f.consecutive_errors),
                (f.paused_reason or f.last_error or "")[:120],
            )
        out.print(table)


@feeds_app.command("add")
def feeds_add(url: str) -> None:
    """Follow a feed (http or https)."""
    with opened() as a:
        checked = _check_feed_url(url)
        try:
            with a.db.session() as session:
                feed_repo.add_feed(session, checked)
        except feed_repo.FeedExists as exc:
            raise fail(str(exc)) from None
        out.print(f"following {checked}")


@feeds_app.command("remove")
def feeds_remove(url: str) -> None:
    """Stop following a feed (its stored items are removed too)."""
    _on_feed(url, feed_repo.remove_feed, "removed")


@feeds_app.command("resume")
def feeds_resume(url: str) -> None:
    """Resume a feed that was paused after repeated failures."""
    _on_feed(url, feed_repo.resume_feed, "resumed")


def _on_feed(url: str, action: Callable[[Session, str], object], done: str) -> None:
    with opened() as a:
        try:
            with a.db.session() as session:
                action(session, url)
        except feed_repo.FeedNotFound as exc:
            raise fail(str(exc)) from None
    out.print(f"{done} {url}")


@feeds_app.command("import-opml")
def feeds_import(path: Path) -> None:
    """Follow every feed of an OPML file (feeds already followed are kept)."""
    try:
        outlines = parse_opml(path.read_bytes())
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None
    except OPMLError as exc:
        raise fail(f"{path}: {exc}") from None
    added, skipped, refused = 0, 0, []
    with opened() as a:
        for o in outlines:
            try:
                url = _check_feed_url(o.url)
                with a.db.session() as session:
                    feed_repo.add_feed(session, url, title=o.title)
                added += 1
            except feed_repo.FeedExists:
                skipped += 1
            except typer.Exit:
                refused.append(o.url)
    out.print(f"imported {added} feeds, {skipped} already followed, {len(refused)} refused")


@feeds_app.command("export-opml")
def feeds_export(path: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Write the feed list as OPML (to stdout without PATH)."""
    with opened() as a, a.db.session() as session:
        outlines = [
            Outline(url=f.url, title=f.title, site_url=f.site_url)
            for f in feed_repo.list_feeds(session)
            if not f.url.startswith("file:")
        ]
    text = render_opml(outlines)
    if path is None:
        sys.stdout.write(text + "\n")
    else:
        path.write_text(text + "\n", encoding="utf-8")
        out.print(f"wrote {len(outlines)} feeds to {path}")


# -- fetch and ingest -------------------------------------------------------------------


@app.command()
def fetch(
    once: Annotated[bool, typer.Option("--once", help="Fetch what is due, then exit.")] = False,
    all_feeds: Annotated[bool, typer.Option("--all", help="Ignore schedules and backoff.")] = False,
) -> None:
    """Fetch due feeds: once, or in a loop honouring each feed's schedule."""
    with opened() as a:
        ingestor = a.ingestor()
        while True:
            report = _with_progress("fetching", ingestor.fetch_due, force=all_feeds)
            _print_run(report)
            if once:
                return
            asyncio.run(asyncio.sleep(60))


@app.command()
def ingest(sources: Annotated[list[str], typer.Argument(help="Feed files or URLs.")]) -> None:
    """Store the entries of local feed files or URLs, tagged like fetched ones (operator-only)."""
    with opened() as a:
        ingestor = a.ingestor()
        paths = [s for s in sources if not s.startswith(("http://", "https://"))]
        urls = [s for s in sources if s.startswith(("http://", "https://"))]
        for p in paths:
            if not Path(p).is_file():
                raise fail(f"no such file: {p}")
        reports: list[FeedReport] = []
        for p in paths:
            path = Path(p).resolve()
            reports.append(asyncio.run(ingestor.ingest_document(path.as_uri(), path.read_bytes())))
        if urls:
            with a.db.session() as session:
                for url in urls:
                    checked = _check_feed_url(url)
                    try:
                        feed_repo.add_feed(session, checked)
                    except feed_repo.FeedExists:
                        feed = feed_repo.get_feed_by_url(session, checked)
                        feed.next_fetch_at = datetime.now(UTC)
            reports.extend(_with_progress("fetching", ingestor.fetch_due).feeds)
        _print_run(RunReport(feeds=reports))
        if any(r.error for r in reports):
            raise typer.Exit(1)


def _with_progress(label: str, work: object, **kwargs: object) -> RunReport:
    assert callable(work)
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def done(_: FeedReport) -> None:
            progress.advance(task)

        result = asyncio.run(work(on_feed_done=done, **kwargs))
    assert isinstance(result, RunReport)
    return result


def _print_run(report: RunReport) -> None:
    for f in report.feeds:
        if f.error:
            note = " (paused)" if f.paused else ""
            err.print(f"[yellow]{f.url}[/yellow]: {f.error}{note}", highlight=False)
        elif f.parse_problem:
            err.print(f"{f.url}: parsed with a problem: {f.parse_problem}", highlight=False)
    dupes = sum(f.duplicates for f in report.feeds)
    unchanged = sum(1 for f in report.feeds if f.not_modified)
    out.print(
        f"{len(report.feeds)} feeds: {report.stored} new entries, {dupes} duplicates, "
        f"{unchanged} unchanged, {len(report.failed)} failed"
    )


def _check_feed_url(url: str) -> str:
    """Syntax only: the operator may follow private hosts they allowlisted; the fetcher
    still vets every address it connects to."""
    url = url.strip()
    problem = check_url_syntax(url)
    if problem:
        raise fail(f"{url}: {problem}")
    return url


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    minutes = int((datetime.now(UTC) - when).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // 1440} d ago"


def main() -> None:
    settings = None
    try:
        settings = load_settings()
        setup_logging(settings)
        app()
    except CLIError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one clear line, no traceback
        logging.getLogger("briefbot").debug("unexpected error", exc_info=True)
        redact = Redactor(settings_secrets(settings) if settings else ())
        message = redact(f"{type(exc).__name__}: {exc}").splitlines()[0][:300]
        err.print(f"error: {message}", highlight=False, markup=False)
        sys.exit(1)


# -- intelligence -----------------------------------------------------------------------

MAX_STDIN = 2 * 1024 * 1024


@app.command()
def tag(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Tag one article read from stdin: JSON {"title", "text"} or plain text."""
    from bot.htmltext import html_to_text, one_line
    from bot.pack import load_pack
    from bot.summarise import extractive_summary
    from bot.tagger import Tagger

    title, text = _read_article(sys.stdin.read(MAX_STDIN))
    if "<" in text and ">" in text:
        text = html_to_text(text)
    title = one_line(html_to_text(title)) if "<" in title else one_line(title)
    if not (title or text).strip():
        raise fail('nothing to tag: give JSON {"title": ..., "text": ...} or plain text on stdin')
    result = Tagger(load_pack()).tag(title, text)
    answer = {
        "relevant": result.relevant,
        "relevance": round(result.relevance, 4),
        "themes": [
            {"id": t.id, "score": round(t.score, 4), "evidence": list(t.evidence)}
            for t in result.themes
        ],
        "summary": extractive_summary(title, text),
    }
    if as_json:
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        return
    verdict = "relevant" if result.relevant else "not relevant"
    out.print(f"{verdict} ({result.relevance:.2f}): {'; '.join(result.reasons)}", markup=False)
    for t in result.themes:
        out.print(f"  {t.id:<20} {t.score:.2f}  {', '.join(t.evidence)}", markup=False)
    out.print(f"summary: {answer['summary']}", markup=False)


def _read_article(raw: str) -> tuple[str, str]:
    stripped = raw.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise fail(f"stdin is not valid JSON: {exc.msg} (line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise fail('expected a JSON object {"title": ..., "text": ...}')
        title, text = data.get("title") or "", data.get("text") or data.get("summary") or ""
        if not isinstance(title, str) or not isinstance(text, str):
            raise fail('"title" and "text" must be strings')
        return title, text
    first, _, rest = stripped.partition("\n")
    return (first, rest) if rest.strip() else ("", first)


@app.command()
def claim(
    query: Annotated[list[str], typer.Argument(help="What to look up, e.g. 350k H100s")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=50)] = 5,
) -> None:
    """Look up tracked claims: what was claimed, by whom, when, and the coverage that followed."""
    from bot.claims.lookup import LookupEngine, StoredClaims
    from bot.commands.handlers import claim_answer
    from bot.textrender import render_text

    text = " ".join(query)
    with opened() as a:
        result = LookupEngine(StoredClaims(a.db)).lookup(text, limit=limit)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        return
    out.print(render_text(claim_answer(result)), markup=False, highlight=False, end="")


@app.command("eval")
def evaluate_cmd(
    data: Annotated[
        Path | None, typer.Option(help="Labelled JSONL (default: the dev set).")
    ] = None,
    misses: Annotated[bool, typer.Option("--misses", help="List misclassified items.")] = False,
) -> None:
    """Per-theme precision / recall / F1 and relevance accuracy on a labelled set."""
    from bot.evaluate import evaluate, format_report, load_items
    from bot.pack import load_pack
    from bot.tagger import Tagger

    path = data or Path.cwd() / "tests" / "data" / "devset.jsonl"
    if not path.is_file():
        raise fail(f"no labelled data at {path} (use --data PATH)")
    try:
        items = load_items(path)
    except ValueError as exc:
        raise fail(f"{path}: {exc}") from None
    report = evaluate(Tagger(load_pack()), items)
    out.print(format_report(report, show_misses=misses), markup=False, highlight=False)


# -- digests, status, the bot -------------------------------------------------------------


@app.command()
def digest(
    since: Annotated[str, typer.Option(help="Window, e.g. 24h, 90m, 3d.")] = "24h",
    fmt: Annotated[str, typer.Option("--format", help="text, json, slack or discord")] = "text",
) -> None:
    """Preview the digest that would be posted now (nothing is posted or marked)."""
    from bot.digest import build_digest
    from bot.messages import dump_message
    from bot.plugins import renderers
    from bot.textrender import render_text

    window = _parse_window(since)
    formats = {"text", "json", *renderers()}
    if fmt not in formats:
        raise fail(f"unknown format {fmt!r}: use one of {', '.join(sorted(formats))}")
    now = datetime.now(UTC)
    with opened() as a, a.db.session() as session:
        message = build_digest(session, a.pack, since=now - window, until=now)
    if fmt == "text":
        sys.stdout.write(render_text(message))
    elif fmt == "json":
        sys.stdout.write(json.dumps(dump_message(message), ensure_ascii=False, indent=2) + "\n")
    else:
        payloads = renderers()[fmt](message, destination="PREVIEW")
        sys.stdout.write(json.dumps(payloads, ensure_ascii=False, indent=2) + "\n")


def _parse_window(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d{1,5})\s*([mhd])\s*", text.lower())
    if not match:
        raise fail(f"bad --since {text!r}: use minutes, hours or days such as 90m, 24h, 3d")
    value, unit = int(match.group(1)), match.group(2)
    delta = {"m": timedelta(minutes=value), "h": timedelta(hours=value)}.get(
        unit, timedelta(days=value)
    )
    if delta <= timedelta(0) or delta > timedelta(days=365):
        raise fail("--since must be between 1 minute and 365 days")
    return delta


@app.command()
def status() -> None:
    """Feeds, the outbox and the delivery failures that need attention."""
    from bot.outbox import outbox_status

    with opened() as a, a.db.session() as session:
        feeds = feed_repo.list_feeds(session)
        report = outbox_status(session)
    paused = [f for f in feeds if not f.enabled and not f.url.startswith("file:")]
    failing = [f for f in feeds if f.enabled and f.consecutive_errors]
    out.print(f"feeds: {len(feeds)} ({len(failing)} failing, {len(paused)} paused)")
    for f in paused:
        out.print(f"  paused: {f.url}: {f.paused_reason}", markup=False)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(report.counts.items())) or "empty"
    out.print(f"outbox: {counts}")
    if report.oldest_pending_age is not None:
        out.print(f"  oldest pending: {report.oldest_pending_age}")
    for failure in report.failures:
        out.print(
            f"  failed {failure.kind} to {failure.dest} at {failure.when:%Y-%m-%d %H:%M}: "
            f"{failure.error}",
            markup=False,
        )


@app.command()
def run() -> None:
    """Run the bot: Slack and/or Discord when configured, else the console."""
    from bot.launch import run_bot

    asyncio.run(run_bot())


@app.command()
def demo() -> None:
    """Run the whole bot offline on the bundled sample feeds, then exit."""
    from bot.demo import run_demo

    def say(text: str) -> None:
        out.print(text, markup=False, highlight=False)

    asyncio.run(run_demo(say))

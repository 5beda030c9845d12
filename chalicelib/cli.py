"""The command line: extract, ingest, events, feeds, reextract, alerts, digest, serve, demo.

An edge, like app.py: it reads the settings and passes what each command needs down (the store URL,
the alert channel, the digest's mail settings).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

from pydantic import ValidationError

from chalicelib.api.query import FILTER_NAMES, FILTERS, MAX_LIMIT, event_query
from chalicelib.errors import ApiError, ChiptrackerError, StoreError
from chalicelib.models import ExtractRequest, ExtractResult
from chalicelib.settings import DEFAULT_DB, settings
from chalicelib.text import one_line, printable

log = logging.getLogger("chalicelib")


def _terminal_safe(text: str) -> str:
    """Titles, evidence, feed errors and exception messages are text from the web (or stored before
    ingest cleaned it), and a terminal obeys the escape sequences in them (ESC, CSI): none reaches it,
    nor a carriage return, which would let a line print over what came before it. JSON lines stay JSON
    (it escapes C0 controls itself; a raw C1 or DEL inside a string is just dropped)."""
    return printable(text).replace("\r", "")


def _say(text: str, *, err: bool = False) -> None:
    """Every line the command line prints, on stdout or (err) stderr."""
    print(_terminal_safe(text), file=sys.stderr if err else sys.stdout, flush=True)


class _SafeFormatter(logging.Formatter):
    """Log lines on stderr, as _say: a URL or an error quoted in a warning is text from the web too."""

    def format(self, record: logging.LogRecord) -> str:
        return _terminal_safe(super().format(record))


def extract_lines(lines: Iterable[str]) -> Iterator[ExtractResult]:
    """One result per input line, in order; a bad line gives an error result, never a crash."""
    from chalicelib.extract import extract
    from chalicelib.text import looks_like_text, with_title

    for number, line in enumerate(lines, 1):
        line_id = None
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("a line must be a JSON object")
            line_id = str(data["id"]) if data.get("id") is not None else None
            request = ExtractRequest.model_validate(data)
            if not looks_like_text(request.text):
                raise ValueError("text looks like binary data, not an article")
            found = extract(with_title(request.title, request.text), request.lang)
            yield ExtractResult(id=request.id, lang=found.lang, events=found.events, nvidia_models=found.nvidia_models)
        except json.JSONDecodeError as exc:
            yield ExtractResult(id=None, error=f"line {number}: not JSON: {exc.msg} at column {exc.colno}")
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
            yield ExtractResult(id=line_id, error=f"line {number}: {problems}")
        except ValueError as exc:
            yield ExtractResult(id=line_id, error=f"line {number}: {exc}")
        except Exception as exc:  # an extractor bug must not shift every later line
            log.exception("extract failed on line %d", number)
            yield ExtractResult(id=line_id, error=f"line {number}: internal error: {type(exc).__name__}: {exc}")


def _cmd_extract(args: argparse.Namespace) -> int:
    failed = 0
    with open(args.input, encoding="utf-8", errors="replace") if args.input else nullcontext(sys.stdin) as source:
        for result in extract_lines(source):
            failed += result.error is not None
            if args.pretty:
                _say(result.model_dump_json(indent=2, exclude_none=True))
            else:
                _say(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
    if failed:
        _say(f"extract: {failed} line(s) had errors (see their 'error' field)", err=True)
    return 0


def _open(args: argparse.Namespace, *, read_only: bool = False):
    """The store of --db (else the setting, the one default of every command), closed at the end of a
    `with` block. A read-only command given a SQLite file that is not there stops (StoreError) rather
    than create an empty store and read nothing from it."""
    from contextlib import closing

    from chalicelib.store import open_store

    url = args.db or settings().db
    if read_only:
        _must_exist(url)
    return closing(open_store(url))


def _must_exist(url: str) -> None:
    """A SQLite store's file must be there (a DynamoDB table that is not there fails when opened)."""
    from chalicelib.store import sqlite_path

    path = sqlite_path(url)
    if path and not Path(path).is_file():
        raise StoreError(f"no store at {str(path)!r} ({url}): nothing to read; run `ingest` (or `demo`) first, "
                         "or give --db (or CHIPTRACKER_DB) the store to read")


def _cmd_ingest(args: argparse.Namespace) -> int:
    from chalicelib.feeds import BUNDLED_FEEDS, load_feed_list

    feeds = load_feed_list(args.feeds or BUNDLED_FEEDS)
    return _ingest(feeds, args, allow_loopback=args.allow_loopback)


def _ingest(feeds: list[str], args: argparse.Namespace, allow_loopback: bool) -> int:
    from chalicelib.ingest import Options
    from chalicelib.jobs import run_cycle
    from chalicelib.notify.slack import configured_channel

    config = settings()
    with _open(args) as store:
        options = Options(allow_loopback=allow_loopback, google_news_url=config.google_news_url)
        summary = run_cycle(feeds, store, options, args.workers,
                            progress=_progress(len(feeds)), channel=configured_channel(config),
                            seed=config.seed_catalog)
    for result in summary.results:
        if result.error:
            _say(f"  {result.status}: {result.feed}: {result.error}", err=True)
    _say(summary.line())
    return 0


def _progress(total: int):
    """A progress bar on a terminal; a plain line per feed otherwise (logs, CI)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="feed", file=sys.stderr, leave=False)
        return lambda result: bar.update(1) if result.status != "retry" else bar.close()
    done = [0]

    def line(result) -> None:
        if result.status == "retry":
            return
        done[0] += 1
        _say(f"[{done[0]}/{total}] {result.status}: {result.feed} ({result.new_articles} new articles, "
             f"{result.new_events} new events)", err=True)

    return line


def _cmd_events(args: argparse.Namespace) -> int:
    values = {name: getattr(args, name) for name in FILTER_NAMES if getattr(args, name) is not None}
    try:  # checked as the API checks them
        query = event_query({**values, "limit": str(max(min(args.limit, MAX_LIMIT), 1))})
    except ApiError as exc:
        _say(f"events: --{exc.parameter}: {exc}", err=True)
        return 2
    with _open(args, read_only=True) as store:
        print_events(store, query, args.limit, args.brief)
    return 0


def print_events(store, query, limit: int, brief: bool) -> None:
    """Up to `limit` events of `query`, newest first: JSON lines, or (brief) one readable line each."""
    printed, cursor = 0, None
    while printed < limit:
        page, cursor = store.query_events(query, cursor)
        for event in page[: limit - printed]:
            _say(_brief(event) if brief else event.model_dump_json())
            printed += 1
        if cursor is None:
            break


def _brief(event) -> str:
    """One readable line: chip, fab, use, Nvidia parts, title."""
    from chalicelib.labels import is_unnamed

    fab = event.fab or "-"
    if event.previous_fab:
        fab += f" (was {event.previous_fab})"
    if is_unnamed(event.family):  # "alibaba unnamed (family)" would read as a family called unnamed
        chip = f"{event.company} (unnamed new chip)"
    else:
        chip = f"{event.company} {event.family} {event.model or '(family)'}"
    nvidia = ",".join(event.nvidia_models) or "-"
    title = one_line(event.article.title)[:60]  # one line per event, whatever line ends the stored title holds
    return f"{chip:<28} fab={fab:<22} use={event.use or '-':<10} nvidia={nvidia:<14} {title}"


def _cmd_feeds(args: argparse.Namespace) -> int:
    with _open(args, read_only=True) as store:
        for state in store.list_feeds():
            _say(state.model_dump_json())
    return 0


def _cmd_feeds_check(args: argparse.Namespace) -> int:
    """Each listed feed read once (nothing stored): a line per feed, a summary; exit 1 if a feed failed."""
    from chalicelib.feedcheck import check_feeds, summary_line
    from chalicelib.feeds import BUNDLED_FEEDS, load_feed_list
    from chalicelib.ingest import Options

    config = settings()
    feeds = load_feed_list(args.feeds or config.feeds or BUNDLED_FEEDS)
    options = Options(allow_loopback=args.allow_loopback, google_news_url=config.google_news_url)
    reports = check_feeds(feeds, options, pages=max(args.pages, 0), workers=args.workers,
                          progress=lambda report: _say(report.line()))
    _say(summary_line(reports))
    return 1 if any(not report.ok for report in reports) else 0


def _cmd_reextract(args: argparse.Namespace) -> int:
    from chalicelib.ingest import reextract

    with _open(args) as store:
        articles, added, removed = reextract(store)
    _say(f"re-extracted {articles} articles: {added} events added, {removed} removed")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    """The API's routes on 127.0.0.1, through Chalice's local server (no API key locally)."""
    with _open(args, read_only=True) as store:
        serve_api(store, args.port, announce=True).serve_forever()
    return 0


def serve_api(store, port: int, announce: bool = False):
    """A Chalice local server for the API over `store`; the caller runs serve_forever() (and closes the store)."""
    from chalicelib.api.local import local_server

    server = local_server(store, port)
    if announce:
        bound = server.server.server_address[1]
        _say(f"serving the API on http://127.0.0.1:{bound}/ (try /events, /chips, /dependence, /openapi.json)",
             err=True)
    return server


def _cmd_digest(args: argparse.Namespace) -> int:
    from chalicelib.notify.digest import build_digest, render_html, render_text, send_digest

    with _open(args, read_only=not args.send) as store:  # sending records the date sent
        if args.send:
            _say(send_digest(store, args.date, settings(), force=args.force))
        elif args.out:
            Path(args.out).write_text(render_html(build_digest(store, args.date)), encoding="utf-8")
            _say(f"wrote {args.out}")
        else:
            _say(render_text(build_digest(store, args.date)))
    return 0


def _cmd_alerts(args: argparse.Namespace) -> int:
    from chalicelib.dates import utc_now
    from chalicelib.notify.slack import configured_channel, deliver_alerts

    with _open(args) as store:
        sent, failed = deliver_alerts(store, configured_channel(settings()), utc_now())
    _say(f"alerts: {sent} sent, {failed} failed (failed ones stay pending and are tried again later)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from contextlib import suppress

    from chalicelib.demo import sample_site
    from chalicelib.models import EventQuery

    # the sample site stays up while the API is served: the articles' links (in the API, the page and the
    # digest) point at it
    with sample_site() as feeds:
        site = feeds[0].rsplit("/", 2)[0]
        _say(f"serving the sample feeds and articles on {site}", err=True)
        _ingest(feeds, args, allow_loopback=True)  # the sample site is on 127.0.0.1
        _say("events, newest first:")
        with _open(args) as store:
            print_events(store, EventQuery(), limit=50, brief=True)
            if not args.serve:
                return 0
            server = serve_api(store, args.port)
            _say(f"the page: http://127.0.0.1:{server.server.server_address[1]}/ (the JSON API under it: /events, "
                 f"/chips, /dependence, /openapi.json; the sample articles on {site}; Ctrl-C stops both)")
            with suppress(KeyboardInterrupt):
                server.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    extract = commands.add_parser(
        "extract",
        help="JSON lines of articles in, one JSON line of chip events out per line",
        description='Reads {"id","url","title","text","lang","published"} per line; '
        'writes {"id","lang","events","nvidia_models"} (or {"id","error"}) per line, same order.',
    )
    extract.add_argument("--input", help="read this file instead of standard input")
    extract.add_argument("--pretty", action="store_true", help="indented JSON, for reading")
    extract.set_defaults(run=_cmd_extract)

    def with_db(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--db", help="sqlite:///FILE or dynamodb://TABLE?region=…&endpoint_url=… "
                         f"(default: the setting CHIPTRACKER_DB, else {DEFAULT_DB}; the same for every command, "
                         "demo too)")
        return sub

    def with_fetching(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--workers", type=int, default=4, help="feeds fetched at once (default 4)")
        sub.add_argument("--allow-loopback", "--allow-private-hosts", dest="allow_loopback", action="store_true",
                         help="allow fetching from 127.0.0.1 and ::1 (tests, a local site); never the private "
                              "network or the metadata service (the old name is kept as an alias)")
        return sub

    ingest = with_fetching(with_db(commands.add_parser("ingest", help="one ingest cycle over the feed list")))
    ingest.add_argument("--feeds", help="a feed list (one URL a line) or an OPML file; default: the bundled list")
    ingest.set_defaults(run=_cmd_ingest)

    events = with_db(commands.add_parser("events", help="stored events as JSON lines, newest first"))
    for spec in FILTERS:  # the API's filters, checked the same way
        events.add_argument(f"--{spec.name}", help=spec.description)
    events.add_argument("--limit", type=int, default=1000)
    events.add_argument("--brief", action="store_true", help="one readable line per event instead of JSON")
    events.set_defaults(run=_cmd_events)

    feeds = with_db(commands.add_parser("feeds", help="each feed's state as JSON lines; `feeds check` reads them"))
    feeds.set_defaults(run=_cmd_feeds)
    check = with_fetching(feeds.add_subparsers(dest="feeds_command").add_parser(
        "check", help="fetch each listed feed once and report what it gives (needs internet; stores nothing)"))
    check.add_argument("--feeds", help="a feed list (one URL a line) or an OPML file; default: the bundled list")
    check.add_argument("--pages", type=int, default=5, help="articles read per feed (default 5)")
    check.set_defaults(run=_cmd_feeds_check)

    reextract = with_db(commands.add_parser("reextract", help="rebuild events from stored texts (no fetching)"))
    reextract.set_defaults(run=_cmd_reextract)

    demo = with_fetching(with_db(commands.add_parser(
        "demo", help="serve the sample feeds on 127.0.0.1, ingest them, print the events")))
    demo.add_argument("--serve", action="store_true", help="then serve the API on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8000, help="the API's port (default 8000)")
    demo.set_defaults(run=_cmd_demo)

    digest = with_db(commands.add_parser("digest", help="preview or send the daily digest of a date"))
    digest.add_argument("--date", type=_date, required=True, help="YYYY-MM-DD (UTC)")
    where = digest.add_mutually_exclusive_group()
    where.add_argument("--out", help="write the HTML digest to this file")
    where.add_argument("--send", action="store_true", help="send it (SMTP or SES, see the README)")
    digest.add_argument("--force", action="store_true", help="with --send: send even if sent before")
    digest.set_defaults(run=_cmd_digest)

    alerts = with_db(commands.add_parser("alerts", help="send the Slack alerts waiting in the outbox"))
    alerts.set_defaults(run=_cmd_alerts)

    serve = with_db(commands.add_parser("serve", help="serve the JSON API on 127.0.0.1"))
    serve.add_argument("--port", type=int, default=8000, help="default 8000; 0 picks a free port")
    serve.set_defaults(run=_cmd_serve)

    args = parser.parse_args(argv)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[stderr])
    for stream in (sys.stdin, sys.stdout):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    try:
        return args.run(args)
    except (ChiptrackerError, OSError, ValidationError) as exc:
        _say(f"{parser.prog} {args.command}: {exc}", err=True)
        return 2


def _date(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


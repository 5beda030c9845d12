"""The offline demo: the bundled sample articles served as feeds and pages on 127.0.0.1.

`samples/articles.jsonl` (written for this project, en/zh/ja) becomes one RSS feed per
language and one HTML page per article, with a comment section that trafilatura must leave
out. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "articles.jsonl"


def load_samples(path: Path = SAMPLES) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def render_page(article: dict) -> bytes:
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in article["text"].split("\n") if p.strip())
    return (
        f'<!doctype html><html lang="{article["lang"]}"><head><meta charset="utf-8">'
        f"<title>{escape(article['title'])}</title></head><body>"
        f"<nav><a href='/'>Home</a> · <a href='/tech'>Tech</a></nav>"
        f"<article><h1>{escape(article['title'])}</h1>{paragraphs}</article>"
        f"<section class='comments'><h2>Comments</h2><div class='comment'><p>Reader: great piece, "
        f"but what about the Ascend 999 nobody has heard of?</p></div></section>"
        f"<footer>© sample site</footer></body></html>"
    ).encode()


def render_feed(base: str, lang: str, articles: list[dict]) -> bytes:
    items = "".join(
        f"<item><title>{xml_escape(a['title'])}</title><link>{base}/articles/{a['id']}.html?utm_source=rss</link>"
        f"<guid isPermaLink='false'>{xml_escape(a['id'])}</guid>"
        f"<pubDate>{format_datetime(datetime.fromisoformat(a['published'].replace('Z', '+00:00')))}</pubDate>"
        f"</item>"
        for a in articles
        if a["lang"] == lang and "T" in a["published"]
    ) + "".join(
        f"<item><title>{xml_escape(a['title'])}</title><link>{base}/articles/{a['id']}.html</link></item>"
        for a in articles
        if a["lang"] == lang and "T" not in a["published"]
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Sample {lang} news</title>"
        f"<link>{base}/</link><description>chiptracker demo feed</description>{items}</channel></rss>"
    ).encode()


DEMO_PORT = 8765  # fixed, so that a second demo run finds the same URLs (and ingests nothing new)


@contextmanager
def sample_site(articles: list[dict] | None = None, port: int = DEMO_PORT) -> Iterator[list[str]]:
    """Serve the samples on 127.0.0.1 (`port`, or a free one if that is taken); yields the feed URLs."""
    articles = articles if articles is not None else load_samples()
    pages = {f"/articles/{a['id']}.html": render_page(a) for a in articles}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            path = self.path.split("?")[0]
            if path.startswith("/feeds/") and path.endswith(".xml"):
                body, kind = render_feed(base, path[len("/feeds/"):-4], articles), "application/rss+xml"
            elif path in pages:
                body, kind = pages[path], "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        langs = sorted({a["lang"] for a in articles})
        yield [f"http://127.0.0.1:{port}/feeds/{lang}.xml" for lang in langs]
    finally:
        server.shutdown()
        server.server_close()

"""Headless Chromium (Debian's `chromium`) for the browser tests and bench/screenshots.py.

`render(html, width)` serves the HTML on 127.0.0.1 from a server that is also the browser's proxy for
every address, loopback included, so that every request the browser makes is recorded; then
1. loads a copy with a probe script appended (never the copy that is drawn) and dumps the DOM: the
   probe writes what the layout measured (viewport and scroll width, the elements that stick out, each
   bar of the trend chart in pixels, every resource the page fetched, the page's height, the DOM it
   built) into a <pre id="probe"> of the frame around it;
2. draws the page as served, at `width` and the whole height the probe measured, to a PNG.

The page is shown in an iframe `width` px wide at the top left of a frame page: headless Chromium's window
is at least 500 px wide (a --window-size of 390 gives a 500 px layout, cut to 390 in the screenshot), and
an iframe is a viewport of exactly its own width. Headless Chromium also asks Google's update, time and
account services about itself, whatever the page: those requests (BROWSER_SERVICES) are the browser's.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from lxml import html as lxml_html

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--no-pings", "--disable-domain-reliability",
         "--disable-client-side-phishing-detection", "--disable-component-extensions-with-background-pages",
         "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter,AutofillServerCommunication,"
         "CertificateTransparencyComponentUpdater,SigninInterceptBubble,AccountConsistency"]
MAX_HEIGHT = 8000  # px: a screenshot is cut there
BROWSER_SERVICES = ("update.googleapis.com", "clients2.google.com", "accounts.google.com")

PROBE = """<script>(() => {
  const root = document.documentElement, view = root.clientWidth;
  const sticking_out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > view + 0.5) {
      sticking_out.push(`${el.tagName.toLowerCase()}.${el.className} ${box.right}`);
    }
  }
  const px = (row, kind) => {
    const cell = row.querySelector('td.' + kind);
    return cell ? cell.getBoundingClientRect().width : 0;
  };
  const bars = [...document.querySelectorAll('tr.bar')].map(row => ({
    week: row.dataset.week, domestic: +row.dataset.domestic, nvidia: +row.dataset.nvidia,
    domestic_px: px(row, 'domestic'), nvidia_px: px(row, 'nvidia'), rest_px: px(row, 'rest')}));
  const fetched = performance.getEntriesByType('resource').map(entry => entry.name);
  const probe = parent.document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = JSON.stringify({viewport: view, scroll_width: root.scrollWidth, height: root.scrollHeight,
                                      sticking_out: sticking_out.slice(0, 20), bars, fetched,
                                      dom: root.outerHTML});
  parent.document.body.appendChild(probe);
})();</script>"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


@dataclass
class Rendered:
    png: bytes
    layout: dict  # what the probe measured
    dom: lxml_html.HtmlElement  # the DOM the browser built (of the probed copy)
    requests: list[str]  # every request the browser made: "GET http://127.0.0.1:…/page.html"
    page_urls: list[str]  # the addresses the page (and the frame around it) was served at

    def requests_of_the_page(self) -> list[str]:
        """The requests less the browser's own (BROWSER_SERVICES)."""
        return [r for r in self.requests if not any(host in r.split(" ", 1)[1] for host in BROWSER_SERVICES)]


class _Recorder(ThreadingHTTPServer):
    pages: dict[str, bytes]
    requests: list[str]


@contextmanager
def _recording_server(pages: dict[str, str]) -> Iterator[_Recorder]:
    """`pages` (path → HTML) on 127.0.0.1; as a proxy too, it records every request, to any address."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.server.requests.append(f"{self.command} {self.path}")
            body = self.server.pages.get(urlsplit(self.path).path) if self.command == "GET" else None
            if body is None:
                self.send_error(404 if self.command == "GET" else 405)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_CONNECT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = _Recorder(("127.0.0.1", 0), Handler)
    server.pages = {path: html.encode("utf-8") for path, html in pages.items()}
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _run(chromium: str, profile: Path, proxy: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>",
         *args],
        capture_output=True, timeout=90, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


def frame(path: str, width: int, height: int) -> str:
    return (f'<!doctype html><html><head><link rel="icon" href="data:,"></head><body style="margin:0">'
            f'<iframe src="{path}" style="display:block;border:0;width:{width}px;height:{height}px"></iframe>'
            f"</body></html>")


def render(chromium: str, html: str, width: int, height: int | None = None) -> Rendered:
    """`html` at `width` px: measured, then drawn `height` px high (default: the page's whole height)."""
    probed = html.replace("</body>", f"{PROBE}</body>") if "</body>" in html else html + PROBE
    pages = {"/page.html": html, "/probe.html": probed, "/measure.html": frame("/probe.html", width, 1000)}
    with tempfile.TemporaryDirectory(prefix="chiptracker-chromium-") as work, _recording_server(pages) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        profile, png = Path(work) / "profile", Path(work) / "shot.png"
        dumped = _run(chromium, profile, base, f"--window-size={max(width, 500)},1000", "--dump-dom",
                      f"{base}/measure.html")
        dom = lxml_html.fromstring(dumped.stdout.decode("utf-8"))
        layout = json.loads(dom.get_element_by_id("probe").text_content())
        shot_height = height or min(max(layout["height"], 200), MAX_HEIGHT)
        server.pages["/shoot.html"] = frame("/page.html", width, shot_height).encode()
        _run(chromium, profile, base, f"--window-size={width},{shot_height}", f"--screenshot={png}",
             f"{base}/shoot.html")
        built = lxml_html.fromstring(layout.pop("dom"))
        return Rendered(png=png.read_bytes(), layout=layout, dom=built, requests=list(server.requests),
                        page_urls=[f"{base}{path}" for path in ("/page.html", "/probe.html", "/measure.html",
                                                                 "/shoot.html")])

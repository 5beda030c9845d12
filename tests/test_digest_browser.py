"""The digest's HTML in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run)
renders a realistic digest (the sample articles through the pipeline) to a PNG, and the DOM it
built holds every event's chip and link.

Without chromium this is a skip on a developer's machine and a failure in CI (env CI set).
`CHIPTRACKER_DIGEST_SCREENSHOT=docs/digest.png` also copies the screenshot there (the README's).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from lxml import html as lxml_html

from chalicelib.notify.digest import build_digest, render_html
from chalicelib.store import open_store
from tests.test_digest import DAY, chip_label, events_on, sample_feeds, seed_from_samples

pytestmark = pytest.mark.e2e

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH, HEIGHT = 800, 1800


def needed(what: str, found: str | None, install: str) -> str:
    if not found:
        message = f"{what} not found ({install}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_chromium_renders_every_event_chip_and_link(tmp_path):
    chromium = needed("chromium", shutil.which("chromium") or shutil.which("chromium-browser"),
                      "apt-get install chromium")
    store = open_store(f"sqlite:///{tmp_path}/digest.db")
    try:
        with sample_feeds() as feeds:
            seed_from_samples(store, feeds)
        digest = build_digest(store, DAY)
        events = events_on(store, DAY)
    finally:
        store.close()
    assert digest.events == len(events) > 5 and digest.new_chips and digest.new_fabs
    page = tmp_path / "digest.html"
    page.write_text(render_html(digest), encoding="utf-8")
    png = tmp_path / "digest.png"

    done = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
         f"--window-size={WIDTH},{HEIGHT}", "--dump-dom", page.as_uri()],
        capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]

    # the DOM the browser built: every event's chip and link, the news first
    dom = lxml_html.fromstring(done.stdout.decode("utf-8"))
    assert dom.findtext(".//title") == "chiptracker 2026-11-21"
    chips = {node.get("data-chip"): node.text_content() for node in dom.xpath('//*[@class="chip"]')}
    links = {a.get("href"): a.text_content() for a in dom.xpath("//a[@href]")}
    for event in events:
        label = chip_label(event)
        assert label in chips and chips[label].startswith(label), label
        assert links.get(event.article.url) == event.article.title, event.article.url
    news = [node.get("data-chip") for node in dom.xpath('//*[@class="news"]')]
    assert news == [chip_label(e) for e in (*digest.new_chips, *digest.new_fabs)]
    order = [node.get("class") for node in dom.xpath('//*[@class="news" or @class="chip"]')]
    assert order == sorted(order, key=lambda kind: kind != "news")  # new chips and foundries at the top
    assert "昇騰950PR" in dom.text_content() and "含光800" in dom.text_content()  # CJK came through

    data = png.read_bytes()
    assert png_size(data) == (WIDTH, HEIGHT)
    assert len(data) > 40_000  # a page of text, not a blank one
    if target := os.environ.get("CHIPTRACKER_DIGEST_SCREENSHOT"):
        shutil.copyfile(png, target)


def test_fonts_for_chinese_and_japanese_are_installed():
    """Without CJK fonts the screenshot shows the sample articles' titles as boxes."""
    fc_list = needed("fc-list", shutil.which("fc-list"), "apt-get install fontconfig")
    for lang in ("zh-cn", "zh-tw", "ja"):
        families = subprocess.run([fc_list, f":lang={lang}", "family"], capture_output=True, text=True,
                                  timeout=30).stdout
        needed(f"a font for {lang}", families.strip() or None, "apt-get install fonts-noto-cjk")


@pytest.mark.unit
def test_the_readme_screenshot_is_a_digest():
    data = (Path(__file__).resolve().parents[1] / "docs" / "digest.png").read_bytes()
    assert png_size(data) == (WIDTH, HEIGHT)

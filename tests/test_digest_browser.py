"""The digest's HTML in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run,
driven by tests/browser.py) renders a realistic digest (the sample articles through the pipeline) at
390 and 1200 px: the DOM it built holds every event's chip and link and each quote's language, nothing
sticks out at 390 px, the 12-week chart is drawn to scale, and nothing but the mail itself is fetched.

Without chromium this is a skip on a developer's machine and a failure in CI (env CI set). The README's
screenshots (docs/*.png) come from bench/screenshots.py, over the demo's data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chalicelib.notify.digest import DigestDay, build_digest, render_html
from chalicelib.store import open_store
from tests.browser import MAX_HEIGHT, chromium_path, png_size, render
from tests.test_digest import DAY, chip_label, events_on, sample_feeds, seed_from_samples

pytestmark = pytest.mark.e2e

def needed(what: str, found: str | None, install: str) -> str:
    if not found:
        message = f"{what} not found ({install}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def digest_html(tmp_path_factory) -> tuple[str, DigestDay, list]:
    """A realistic digest: the sample articles through the pipeline."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('digest')}/digest.db")
    try:
        with sample_feeds() as feeds:
            seed_from_samples(store, feeds)
        digest = build_digest(store, DAY)
        events = events_on(store, DAY)
    finally:
        store.close()
    assert digest.events == len(events) > 5 and digest.new_chips and digest.new_fabs
    return render_html(digest), digest, events


@pytest.mark.parametrize("width", [390, 1200])
def test_chromium_renders_every_event_chip_and_link(digest_html, width):
    chromium = needed("chromium", chromium_path(), "apt-get install chromium")
    html, digest, events = digest_html
    shot = render(chromium, html, width)

    # the DOM the browser built: every event's chip and link, the news first
    dom = shot.dom
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
    assert {e.get("lang") for e in dom.xpath('//*[@class="evidence"]')} == {"en", "ja", "zh-Hans", "zh-Hant"}

    # laid out for a phone and a desktop: nothing sticks out, the 12-week chart drawn to scale
    layout = shot.layout
    assert layout["viewport"] == width and layout["scroll_width"] <= width and layout["sticking_out"] == []
    assert [bar["week"] for bar in layout["bars"]] == [p.period for p in digest.trend]
    widest = max(b["domestic_px"] + b["nvidia_px"] + b["rest_px"] for b in layout["bars"])
    most = max(b["domestic"] + b["nvidia"] for b in layout["bars"])
    for bar in layout["bars"]:
        for side in ("domestic", "nvidia"):
            assert abs(bar[f"{side}_px"] - widest * bar[side] / most) <= max(2, widest * 0.01), bar
    assert layout["fetched"] == []  # a mail fetches nothing: no image, font, stylesheet
    assert set(shot.requests_of_the_page()) <= {f"GET {url}" for url in shot.page_urls}

    assert png_size(shot.png) == (width, min(layout["height"], MAX_HEIGHT))
    assert len(shot.png) > 40_000  # a page of text, not a blank one


def test_fonts_for_chinese_and_japanese_are_installed():
    """Without CJK fonts the screenshot shows the sample articles' titles as boxes."""
    fc_list = needed("fc-list", shutil.which("fc-list"), "apt-get install fontconfig")
    for lang in ("zh-cn", "zh-tw", "ja"):
        families = subprocess.run([fc_list, f":lang={lang}", "family"], capture_output=True, text=True,
                                  timeout=30).stdout
        needed(f"a font for {lang}", families.strip() or None, "apt-get install fonts-noto-cjk")


@pytest.mark.unit
@pytest.mark.parametrize(("name", "width"), [("digest", 800), ("digest-390", 390), ("digest-1200", 1200),
                                             ("page-390", 390), ("page-1200", 1200)])
def test_the_readme_screenshots_are_there(name, width):
    """bench/screenshots.py draws them from the demo's data; each as wide as it says."""
    data = (Path(__file__).resolve().parents[1] / "docs" / f"{name}.png").read_bytes()
    assert png_size(data)[0] == width and len(data) > 40_000

"""What the desk reads, shared by the daily digest (chalicelib/notify) and the page at `/` (chalicelib/api/page.py).

- One Jinja environment for both: HTML autoescaped, every value cleaned of control characters, the
  templates of chalicelib/notify/templates and chalicelib/api/templates.
- Names a reader knows: "SMIC, previously TSMC" for fab ids, "Japanese" for `ja`, the outlet of an
  article (its site's domain), dates, plurals ("1 new chip", "no new chips").
- The `lang` of quoted text (ja, zh-Hans, zh-Hant or zh), so that a browser or mail client picks
  Japanese glyphs for Japanese and the right Chinese ones for each script.
- The Nvidia-dependence trend of the last 12 weeks and its chart (templates/chart.html): a table of
  bars made of sized cells with inline styles, no script, no image, no stylesheet, so that the same
  chart renders in a mail client and on the page (templates/parts.html, with the quote and source lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib.catalog import load_catalog
from chalicelib.dependence import period_start, signal
from chalicelib.labels import chip_label, chip_name, company_name, evidence_fab_first, fab_evidence, is_unnamed, quotes
from chalicelib.models import DependencePeriod
from chalicelib.store import EventStore
from chalicelib.text import CJK, detect_language, printable

TEMPLATE_DIRS = [Path(__file__).parent / "notify" / "templates", Path(__file__).parent / "api" / "templates"]
TREND_WEEKS = 12

# Fab ids whose catalog names are no name a reader would use ("domestic" is a claim, not a company).
FAB_WORDS = {"domestic": "an unnamed domestic foundry"}
USE_WORDS = {"both": "training and inference"}
# Each CJK language's fonts first (Apple, Windows, Noto), so that a mail client that ignores `lang` still
# draws Japanese with Japanese glyphs and each Chinese script with its own; the page's fonts are Latin only.
LANG_FONTS = {
    "ja": "'Hiragino Sans','Yu Gothic','Meiryo','Noto Sans CJK JP','Noto Sans JP'",
    "zh-Hans": "'PingFang SC','Microsoft YaHei','Noto Sans CJK SC','Noto Sans SC'",
    "zh-Hant": "'PingFang TC','Microsoft JhengHei','Noto Sans CJK TC','Noto Sans TC'",
    "zh": "'PingFang SC','Microsoft YaHei','Noto Sans CJK SC','Noto Sans SC'",
}
LANG_NAMES = {"en": "English", "ja": "Japanese", "zh": "Chinese", "zh-Hans": "Chinese (simplified)",
              "zh-Hant": "Chinese (traditional)"}


# Names ------------------------------------------------------------------------------------------------

def fab_name(fab: str) -> str:
    """The name a reader knows a fab by: "SMIC", "Hua Hong"; the catalog's first Latin name."""
    if fab in FAB_WORDS:
        return FAB_WORDS[fab]
    spec = next((f for f in load_catalog().fabs if f.id == fab), None)
    return next((name for name in (spec.names if spec else []) if name.isascii()), fab)


def fab_claim(fab: str | None, previous: str | None = None, missing: str = "not said") -> str:
    """"SMIC, previously TSMC"; `missing` when the article names no fab."""
    if not fab:
        return missing
    return f"{fab_name(fab)}, previously {fab_name(previous)}" if previous else fab_name(fab)


def use_words(use: str | None, missing: str = "not said") -> str:
    return USE_WORDS.get(use, use) if use else missing


def count(n: int, noun: str, plural: str | None = None) -> str:
    """"no new chips", "1 new chip", "3 new foundries" (`plural` when it is not noun + "s")."""
    many = plural or f"{noun}s"
    return f"no {many}" if n == 0 else f"{n} {noun if n == 1 else many}"


def outlet(url: str) -> str:
    """Who published an article, as its link says: the site's domain without "www."."""
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or url


def day_text(moment: datetime | date | None, missing: str = "date not given") -> str:
    """"24 Nov 2026" (UTC for a datetime)."""
    if moment is None:
        return missing
    return f"{moment.day} {moment.strftime('%b %Y')}"


def is_web_link(url: str) -> bool:
    return url.startswith(("http://", "https://"))


# Languages --------------------------------------------------------------------------------------------

def lang_tag(text: str, declared: str | None = None) -> str:
    """The BCP 47 tag of `text`: the article's language when known (`declared`), its script told apart
    for Chinese (zh-Hans, zh-Hant; zh when the text does not say), else guessed from the text."""
    lang = declared or detect_language(text)
    return _chinese_script(text) if lang == "zh" else lang


def _chinese_script(text: str) -> str:
    """zh-Hans or zh-Hant by the characters that only one of the two scripts writes (those GB 2312 holds
    and Big5 lacks are simplified, and the reverse); zh when neither side has more."""
    simplified = traditional = 0
    for char in CJK.findall(text):
        in_gb, in_big5 = _encodes(char, "gb2312"), _encodes(char, "big5")
        simplified += in_gb and not in_big5
        traditional += in_big5 and not in_gb
    return "zh-Hans" if simplified > traditional else "zh-Hant" if traditional > simplified else "zh"


def _encodes(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def lang_name(tag: str) -> str:
    return LANG_NAMES.get(tag, tag)


def lang_font(tag: str) -> str:
    """An inline style's font-family for text in `tag` ("" for a language the page's own fonts draw)."""
    return f"font-family:{LANG_FONTS[tag]},sans-serif;" if tag in LANG_FONTS else ""


# The 12-week trend ------------------------------------------------------------------------------------

def weekly_trend(store: EventStore, last_day: date, weeks: int = TREND_WEEKS) -> list[DependencePeriod]:
    """The signal per ISO week, `weeks` of them up to the one holding `last_day`, counted up to and
    including `last_day` (that week's period ends the day after it): one read of the day summaries."""
    first = period_start(last_day, "week") - timedelta(weeks=weeks - 1)
    return signal(store, first, last_day + timedelta(days=1), "week")


@dataclass(frozen=True)
class TrendBar:
    """One week of the chart: its bar's parts in percent of the widest week's (domestic, Nvidia, the rest)."""

    period: DependencePeriod
    domestic: int
    nvidia: int

    @property
    def rest(self) -> int:
        return 100 - self.domestic - self.nvidia

    @property
    def label(self) -> str:
        return f"{self.period.start.day} {self.period.start.strftime('%b')}"

    def text(self, width: int = 24) -> str:
        """The bar in plain text: "#" for the domestic part, "+" for the Nvidia part."""
        def chars(percent: int) -> int:
            return max(1, round(width * percent / 100)) if percent else 0

        return "#" * chars(self.domestic) + "+" * chars(self.nvidia)

    @property
    def share(self) -> str:
        share = self.period.domestic_share
        return "–" if share is None else f"{share * 100:.0f}%"


def trend_bars(periods: list[DependencePeriod]) -> list[TrendBar]:
    """Each week's bar, scaled to the busiest week; a side that was named at all shows at least 1%."""
    widest = max((p.domestic_articles + p.nvidia_articles for p in periods), default=0) or 1

    def width(n: int) -> int:
        return max(1, round(100 * n / widest)) if n else 0

    bars = []
    for period in periods:
        domestic, nvidia = width(period.domestic_articles), width(period.nvidia_articles)
        bars.append(TrendBar(period, domestic, min(nvidia, 100 - domestic)))
    return bars


# Templates --------------------------------------------------------------------------------------------

def _printable(value: object) -> object:
    """Every {{ … }} of every template: stored titles and evidence may predate cleaning at ingest, and a
    control character has no place in a mail or a page (a terminal showing the text part obeys ESC). Markup
    (a macro's output, HTML built of values cleaned here already) is left as it is, or autoescape would
    escape it again."""
    from markupsafe import Markup

    return printable(value) if isinstance(value, str) and not isinstance(value, Markup) else value


@cache
def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIRS), autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, finalize=_printable,
    )
    # the same chip names and evidence order as the Slack alerts (chalicelib/labels.py)
    env.globals.update(
        label=lambda e: chip_label(e.company, e.family, e.model), chip_label=chip_label, chip_name=chip_name,
        company_name=company_name, is_unnamed=is_unnamed, quotes=quotes, evidence_fab_first=evidence_fab_first,
        is_fab_sentence=lambda e, ev: ev is fab_evidence(e),
        fab_name=fab_name, fab_claim=fab_claim, use_words=use_words, count=count, outlet=outlet, day_text=day_text,
        is_web_link=is_web_link, lang_tag=lang_tag, lang_name=lang_name, lang_font=lang_font, trend_bars=trend_bars,
    )
    return env


def render(template: str, **values: object) -> str:
    return environment().get_template(template).render(**values)

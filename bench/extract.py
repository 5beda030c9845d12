"""Benchmark of `chalicelib.extract`: throughput, cost next to trafilatura, import time, memory.

Run from the project root with `make bench` or `.venv/bin/python bench/extract.py [--repeat N] [--shared PATH]`.

It measures, in one run:
- articles/s and chars/s of `extract()` over the dev corpus (`shared/corpus/dev/*.json`);
- for every HTML page of `shared/realworld/html`, `trafilatura.extract()` on the page, then
  `extract()` on the text trafilatura gave, and the ratio of the two costs (target < 0.5);
- the load time of the zh and ja tokenisers (kept out of the throughput by a warm-up);
- the import time of `chalicelib.extract` in fresh interpreters, without and with both tokenisers
  loaded (median of 3), and their peak RSS;
- the peak Python heap of extraction (tracemalloc, one extra pass) and the peak RSS of this run;
- one long paragraph without a sentence end (100,000 characters of Chinese, 50,000 of English,
  written here) against a target of 1 s each, and its cost per character next to the dev corpus's.
Times are the median of `--repeat` passes. The shared data is read in place, never copied.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import subprocess
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from chalicelib.extract import extract, warm_up  # noqa: E402

_IMPORT = "import chalicelib.extract"
_LOAD_TOKENIZERS = "from chalicelib.extract import warm_up; warm_up(('zh', 'ja'))"
# Peak RSS of the probe is VmHWM: ru_maxrss would start at this process's peak (Linux keeps it across exec).
_PROBE = """
import json, time
t = time.perf_counter()
{code}
t = time.perf_counter() - t
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps([t, int(hwm)]))
"""


@dataclass
class Page:
    path: Path
    html: bytes
    text: str | None = None  # trafilatura's output
    trafilatura_s: list[float] = field(default_factory=list)
    extract_s: list[float] = field(default_factory=list)
    error: str | None = None  # traceback of our extractor, if it raised


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def load_dev(shared: Path) -> list[tuple[str, str]]:
    """(name, text) of each dev article, in file name order."""
    paths = sorted((shared / "corpus" / "dev").glob("*.json"))
    return [(p.stem, json.loads(p.read_text(encoding="utf-8"))["text"]) for p in paths]


def load_pages(shared: Path) -> list[Page]:
    """Every HTML page (`*.html`, `*.html.gz`) under realworld/html, as bytes (trafilatura decodes)."""
    pages = []
    for path in sorted((shared / "realworld" / "html").rglob("*")):
        if path.is_file() and path.name.endswith((".html", ".html.gz")):
            raw = path.read_bytes()
            pages.append(Page(path, gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw))
    return pages


def probe(code: str, repeat: int = 3) -> tuple[float, float]:
    """Median seconds of `code` in fresh interpreters, and the largest peak RSS (KiB) among them."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(code=code)], cwd=ROOT, check=True, capture_output=True, text=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def bench_pages(pages: list[Page]) -> None:
    """One pass: trafilatura on each page, then our extractor on the text it gave."""
    for page in pages:
        start = time.perf_counter()
        text = trafilatura.extract(page.html, include_comments=False)
        page.trafilatura_s.append(time.perf_counter() - start)
        page.text = text
        if text is None or page.error:
            continue
        start = time.perf_counter()
        try:
            extract(text)
        except Exception:
            page.error = traceback.format_exc()
            continue
        page.extract_s.append(time.perf_counter() - start)


def row(name: str, articles: int, chars: int, seconds: float) -> str:
    return f"{name:<24}{articles:>9}{chars:>13,}{seconds:>10.3f}{articles / seconds:>12.1f}{chars / seconds:>14,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared data folder")
    parser.add_argument("--repeat", type=int, default=3, help="passes to take the median of (default 3)")
    args = parser.parse_args()
    repeat = max(args.repeat, 1)

    dev = load_dev(args.shared)
    pages = load_pages(args.shared)

    # Warm-up: catalog and regexes, then each tokeniser (timed on its own).
    warm_catalog = timed(lambda: extract("warm-up"))
    load_s = {lang: timed(lambda lang=lang: warm_up((lang,))) for lang in ("zh", "ja")}
    for lang in ("zh", "ja"):
        extract(next(text for name, text in dev if name.startswith(f"{lang}-")))

    dev_passes = []
    for _ in range(repeat):
        dev_passes.append(sum(timed(lambda text=text: extract(text)) for _, text in dev))
        bench_pages(pages)

    ok = [p for p in pages if p.text is not None and p.error is None]
    none = [p for p in pages if p.text is None]
    broken = [p for p in pages if p.error]
    n = min(len(p.extract_s) for p in ok) if ok else 0
    traf_passes = [sum(p.trafilatura_s[i] for p in ok) for i in range(n)]
    ext_passes = [sum(p.extract_s[i] for p in ok) for i in range(n)]
    dev_chars = sum(len(text) for _, text in dev)
    page_chars = sum(len(p.text or "") for p in ok)
    html_bytes = sum(len(p.html) for p in ok)

    # Peak Python heap of extraction alone, in one extra (untimed) pass.
    tracemalloc.start()
    for text in [t for _, t in dev] + [p.text for p in ok if p.text]:
        extract(text)
    heap_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    import_s, import_rss = probe(_IMPORT)
    loaded_s, loaded_rss = probe(_LOAD_TOKENIZERS)

    print(f"chalicelib.extract benchmark: median of {repeat} pass(es), times in seconds")
    print(f"shared: {args.shared}")
    print()
    print(f"{'':<24}{'articles':>9}{'chars':>13}{'seconds':>10}{'articles/s':>12}{'chars/s':>14}")
    print(row("dev corpus extract", len(dev), dev_chars, statistics.median(dev_passes)))
    if n:
        print(row("realworld trafilatura", len(ok), html_bytes, statistics.median(traf_passes)) + "  (chars = bytes)")
        print(row("realworld extract", len(ok), page_chars, statistics.median(ext_passes)))
        ratio = statistics.median(e / t for e, t in zip(ext_passes, traf_passes, strict=True))
        print(f"\nextract / trafilatura time ratio: {ratio:.2f} (target < 0.5)")
    print(f"realworld pages: {len(pages)} found, {len(none)} where trafilatura returned None, "
          f"{len(broken)} where extract() raised")
    for p in none:
        print(f"  trafilatura None: {p.path.relative_to(args.shared)}")

    if ok:
        print("\nslowest extract() on realworld pages (median s, chars, trafilatura s):")
        slow = sorted(ok, key=lambda p: statistics.median(p.extract_s), reverse=True)[:5]
        for p in slow:
            print(f"  {statistics.median(p.extract_s):.4f}  {len(p.text or ''):>7,}  "
                  f"{statistics.median(p.trafilatura_s):.4f}  {p.path.relative_to(args.shared)}")

    print(f"\nwarm-up: catalog + regexes {warm_catalog:.3f} s, "
          f"tokeniser load zh {load_s['zh']:.3f} s, ja {load_s['ja']:.3f} s")
    print("import time (fresh interpreter, median of 3):")
    print(f"  import chalicelib.extract            {import_s:.3f} s   peak RSS {mib(import_rss)}")
    print(f"  ... + zh and ja tokenisers loaded    {loaded_s:.3f} s   peak RSS {mib(loaded_rss)}")
    print(f"peak memory: extraction heap (tracemalloc) {heap_peak / 2**20:.1f} MiB, "
          f"this whole run (RSS, incl. trafilatura) {mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}")

    print("\none paragraph without a sentence end (median of the passes; target < 1 s each):")
    dev_rate = statistics.median(dev_passes) / dev_chars
    for lang, text in long_paragraphs().items():
        seconds = statistics.median(timed(lambda text=text, lang=lang: extract(text, lang)) for _ in range(repeat))
        print(f"  {lang}: {len(text):>7,} chars  {seconds:.3f} s  "
              f"({seconds / len(text) / dev_rate:.1f}x the dev corpus's time per character)")

    for p in broken:
        print(f"\nextract() raised on {p.path.relative_to(args.shared)}:\n{p.error}", file=sys.stderr)


def long_paragraphs() -> dict[str, str]:
    """A page that is one paragraph with no full stop, dense with chips, fabs and uses (own words)."""
    zh = ("华为昇腾910C芯片由中芯国际代工，用于训练和推理，阿里巴巴正在研发一款新的AI芯片，"
          "百度昆仑芯P800集群规模扩大，英伟达H20受限，")
    en = ("Huawei's Ascend 910C is made by SMIC and used for training, while Alibaba is testing a new "
          "inference chip and Baidu deploys Kunlun P800 clusters next to Nvidia H20 parts, ")
    return {"zh": (zh * (100_000 // len(zh) + 1))[:100_000], "en": (en * (50_000 // len(en) + 1))[:50_000]}


if __name__ == "__main__":
    main()

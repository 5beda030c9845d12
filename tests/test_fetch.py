"""The fetcher: limits, the address guard on every hop, decoding, page text."""

from __future__ import annotations

import gzip
import time

import pytest

from chalicelib.fetch import FetchError, Limits, _allowed, check_html, decode_html, fetch, page_text
from tests.localsite import LocalSite, page

FAST = Limits(connect_timeout=2, read_timeout=1, total_timeout=2, max_bytes=1_000_000, max_redirects=3)


@pytest.fixture
def site():
    with LocalSite() as running:
        yield running


def test_plain_fetch_and_loopback_opt_in(site):
    url = site.route("/a", body=b"hello")
    with pytest.raises(FetchError) as refused:
        fetch(url)
    assert refused.value.kind == "blocked" and "127.0.0.1" in str(refused.value)
    response = fetch(url, allow_private=True, limits=FAST)
    assert (response.status, response.body) == (200, b"hello")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "224.0.0.1", "0.0.0.0",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "100.64.0.1", "240.0.0.1"],
)
def test_guard_refuses_non_public_addresses(address):
    import ipaddress

    ip = ipaddress.ip_address(address)
    ip = ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip
    assert not _allowed(ip, allow_private=False)
    assert _allowed(ipaddress.ip_address("93.184.216.34"), allow_private=False)
    assert not _allowed(ipaddress.ip_address("169.254.169.254"), allow_private=True)  # metadata: never


def test_literal_private_urls_are_refused_without_a_connection():
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::1]:9/", "http://10.0.0.1/"):
        with pytest.raises(FetchError) as refused:
            fetch(url, limits=FAST)
        assert refused.value.kind == "blocked"


def test_redirect_to_loopback_and_metadata_is_refused_on_the_hop(site):
    # the first hop is allowed (opted in), the redirect target is not: each hop is checked
    url = site.route("/to-meta", status=302, headers={"Location": "http://169.254.169.254/latest/"})
    with pytest.raises(FetchError) as refused:
        fetch(url, allow_private=True, limits=FAST)
    assert refused.value.kind == "blocked"


def test_redirects_are_followed_and_limited(site):
    site.route("/r1", status=301, headers={"Location": "/r2"})
    site.route("/r2", status=302, headers={"Location": "/final"})
    site.route("/final", body=b"done")
    response = fetch(site.url("/r1"), allow_private=True, limits=FAST)
    assert response.body == b"done" and response.url == site.url("/final") and len(response.redirects) == 2
    site.route("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="loop"):
        fetch(site.url("/loop"), allow_private=True, limits=FAST)
    for n in range(6):
        site.route(f"/chain{n}", status=302, headers={"Location": f"/chain{n + 1}"})
    with pytest.raises(FetchError, match="more than 3 redirects"):
        fetch(site.url("/chain0"), allow_private=True, limits=FAST)


def test_http_errors_carry_status_and_retry_after(site):
    site.route("/busy", status=429, headers={"Retry-After": "120"}, body=b"slow down")
    with pytest.raises(FetchError) as busy:
        fetch(site.url("/busy"), allow_private=True, limits=FAST)
    assert (busy.value.kind, busy.value.status, busy.value.retry_after) == ("http", 429, 120.0)
    site.route("/gone", status=404)
    with pytest.raises(FetchError) as gone:
        fetch(site.url("/gone"), allow_private=True, limits=FAST)
    assert gone.value.permanent


def test_size_limit_and_gzip_bomb(site):
    site.route("/big", body=b"x" * 2_000_000)
    with pytest.raises(FetchError) as big:
        fetch(site.url("/big"), allow_private=True, limits=FAST)
    assert big.value.kind == "too_large"
    bomb = gzip.compress(b"\0" * 50_000_000)  # 50 MB that gzips to ~50 KB
    site.route("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as exploded:
        fetch(site.url("/bomb"), allow_private=True, limits=FAST)
    assert exploded.value.kind == "too_large"
    site.route("/gz", body=gzip.compress(b"compressed fine"), headers={"Content-Encoding": "gzip"})
    assert fetch(site.url("/gz"), allow_private=True, limits=FAST).body == b"compressed fine"


def test_slow_drip_hits_the_total_deadline(site):
    site.route("/drip", drip=(b"x" * 50, 0.2))  # 10 s in all, each byte well within the read timeout
    started = time.monotonic()
    with pytest.raises(FetchError) as slow:
        fetch(site.url("/drip"), allow_private=True, limits=FAST)
    assert slow.value.kind == "timeout" and time.monotonic() - started < 4


def test_connection_reset_is_a_connection_error(site):
    site.route("/reset", reset=True)
    with pytest.raises(FetchError) as reset:
        fetch(site.url("/reset"), allow_private=True, limits=FAST)
    assert reset.value.kind == "connection"


def test_decoding_uses_http_charset_then_meta_then_detection():
    text = "华为昇腾910C芯片由中芯国际代工生产，主要用于推理任务，这是一条足够长的中文新闻句子。" * 5
    gbk = page("昇腾", text, charset="gbk", meta=False)
    assert text in decode_html(gbk, {"content-type": "text/html; charset=gbk"})
    assert text in decode_html(gbk, {"content-type": "text/html"})  # detected
    sjis = page("昇騰", "ファーウェイの昇騰910Cは推論に使われる。" * 5, charset="shift_jis", meta=True)
    assert "ファーウェイの昇騰910C" in decode_html(sjis, {})


def test_page_text_leaves_out_navigation_and_non_html():
    html = page("Ascend news", "Huawei said its Ascend 910C chips are made by SMIC on its 7nm process.",
                "Analysts expect shipments to double next year as customers move away from Nvidia.").decode()
    text = page_text(html)
    assert "Ascend 910C" in text and "Home | World" not in text
    from chalicelib.fetch import Response

    with pytest.raises(FetchError) as pdf:
        check_html(Response("http://x/", 200, {"content-type": "application/pdf"}, b"%PDF-1.7"))
    assert pdf.value.kind == "not_html"

"""The fetcher: limits, the address guard on every hop, decoding, page text."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import ipaddress
import socket
import threading
import time

import pytest

from chalicelib.decoding import decode_page
from chalicelib.errors import FetchError
from chalicelib.fetch import Limits, _allowed, check_html, fetch, page_text
from tests.localsite import LocalSite, page

pytestmark = pytest.mark.functional

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
    response = fetch(url, allow_loopback=True, limits=FAST)
    assert (response.status, response.body) == (200, b"hello")


# IPv6 spellings of internal IPv4 addresses: a NAT64 translator, a 6to4 relay or Teredo delivers them
# to the IPv4 address inside, so each is judged by that address (Python calls several "global").
EMBEDDED_INTERNAL_IPV4 = [
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:0:a9fe:a9fe",  # IPv4-translated (SIIT): 169.254.169.254
    "::10.0.0.1",  # IPv4-compatible
    "::ffff:0:7f00:1",  # translated 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix: 169.254.169.254
    "64:ff9b::10.1.2.3",
    "64:ff9b::c0a8:101",  # 192.168.1.1
    "64:ff9b:1::a9fe:a9fe",  # NAT64 local-use prefix: a site's own translator
    "64:ff9b:1:ffff::1",
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:0a00:0001::",  # 6to4 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1 (stored inverted)
]


@pytest.mark.unit
@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "224.0.0.1", "0.0.0.0",
     "::1", "fe80::1", "fc00::1", "fd00:ec2::254", "::ffff:127.0.0.1", "100.64.0.1", "240.0.0.1", "::",
     *EMBEDDED_INTERNAL_IPV4],
)
def test_guard_refuses_non_public_addresses(address):
    assert not _allowed(ipaddress.ip_address(address), allow_loopback=False)


@pytest.mark.unit
@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946",
                                     "64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:93.184.216.34"])
def test_guard_lets_public_addresses_through(address):
    assert _allowed(ipaddress.ip_address(address), allow_loopback=False)  # 93.184.216.34 in each v6 form


@pytest.mark.unit
@pytest.mark.parametrize(
    ("address", "allowed"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
     # the opt-in is for loopback only: not the private network, never the metadata services
     ("10.1.2.3", False), ("192.168.1.1", False), ("fc00::1", False), ("fe80::1", False),
     ("169.254.169.254", False), ("fd00:ec2::254", False), ("fd00:ec2::23", False), ("::ffff:169.254.169.254", False),
     ("64:ff9b::a9fe:a9fe", False), ("2002:a9fe:a9fe::1", False)],
)
def test_the_opt_in_admits_loopback_and_nothing_else(address, allowed):
    assert _allowed(ipaddress.ip_address(address), allow_loopback=True) is allowed


@pytest.fixture
def no_connect(monkeypatch):
    """A tripwire: any connection attempt fails the test."""
    def tripwire(*args, **kwargs):
        raise AssertionError(f"connect attempted: {args[:1]}")

    monkeypatch.setattr(socket, "create_connection", tripwire)
    monkeypatch.setattr("urllib3.util.connection.create_connection", tripwire)


@pytest.mark.unit
@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/", "http://10.0.0.1/",
    *(f"http://[{address}]/latest/meta-data/" for address in EMBEDDED_INTERNAL_IPV4),
    "http://[fd00:ec2::254]/latest/meta-data/",
])
def test_literal_internal_urls_are_refused_before_any_connect(url, no_connect):
    with pytest.raises(FetchError) as refused:
        fetch(url, limits=FAST)
    assert refused.value.kind == "blocked" and "refused" in str(refused.value)
    if "ec2" in url or "a9fe" in url or "169.254" in url:  # the metadata service: the opt-in does not help
        with pytest.raises(FetchError) as still:
            fetch(url, allow_loopback=True, limits=FAST)
        assert still.value.kind == "blocked"


def test_redirect_to_loopback_and_metadata_is_refused_on_the_hop(site):
    # the first hop is allowed (opted in), the redirect target is not: each hop is checked
    url = site.route("/to-meta", status=302, headers={"Location": "http://169.254.169.254/latest/"})
    with pytest.raises(FetchError) as refused:
        fetch(url, allow_loopback=True, limits=FAST)
    assert refused.value.kind == "blocked"


def test_redirects_are_followed_and_limited(site):
    site.route("/r1", status=301, headers={"Location": "/r2"})
    site.route("/r2", status=302, headers={"Location": "/final"})
    site.route("/final", body=b"done")
    response = fetch(site.url("/r1"), allow_loopback=True, limits=FAST)
    assert response.body == b"done" and response.url == site.url("/final") and len(response.redirects) == 2
    site.route("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="loop"):
        fetch(site.url("/loop"), allow_loopback=True, limits=FAST)
    for n in range(6):
        site.route(f"/chain{n}", status=302, headers={"Location": f"/chain{n + 1}"})
    with pytest.raises(FetchError, match="more than 3 redirects"):
        fetch(site.url("/chain0"), allow_loopback=True, limits=FAST)


def test_http_errors_carry_status_and_retry_after(site):
    site.route("/busy", status=429, headers={"Retry-After": "120"}, body=b"slow down")
    with pytest.raises(FetchError) as busy:
        fetch(site.url("/busy"), allow_loopback=True, limits=FAST)
    assert (busy.value.kind, busy.value.status, busy.value.retry_after) == ("http", 429, 120.0)
    site.route("/gone", status=404)
    with pytest.raises(FetchError) as gone:
        fetch(site.url("/gone"), allow_loopback=True, limits=FAST)
    assert gone.value.permanent


def test_size_limit_and_gzip_bomb(site):
    site.route("/big", body=b"x" * 2_000_000)
    with pytest.raises(FetchError) as big:
        fetch(site.url("/big"), allow_loopback=True, limits=FAST)
    assert big.value.kind == "too_large"
    bomb = gzip.compress(b"\0" * 50_000_000)  # 50 MB that gzips to ~50 KB
    site.route("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as exploded:
        fetch(site.url("/bomb"), allow_loopback=True, limits=FAST)
    assert exploded.value.kind == "too_large"
    site.route("/gz", body=gzip.compress(b"compressed fine"), headers={"Content-Encoding": "gzip"})
    assert fetch(site.url("/gz"), allow_loopback=True, limits=FAST).body == b"compressed fine"


def test_slow_drip_hits_the_total_deadline(site):
    site.route("/drip", drip=(b"x" * 50, 0.2))  # 10 s in all, each byte well within the read timeout
    started = time.monotonic()
    with pytest.raises(FetchError) as slow:
        fetch(site.url("/drip"), allow_loopback=True, limits=FAST)
    assert slow.value.kind == "timeout" and time.monotonic() - started < 4


def _drip_headers(request) -> None:
    """A status line, then one header byte every 0.3 s: no read ever waits a whole read timeout."""
    request.wfile.write(b"HTTP/1.1 200 OK\r\n")
    try:
        for byte in b"X-Slow: " + b"a" * 100:
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
            time.sleep(0.3)
    except OSError:  # the client hung up at its deadline
        pass


def test_header_drip_hits_the_total_deadline(site):
    site.route("/drip-headers", handler=_drip_headers)  # 30 s of headers, each byte within the read timeout
    started = time.monotonic()
    with pytest.raises(FetchError) as slow:
        fetch(site.url("/drip-headers"), allow_loopback=True, limits=FAST)
    assert (slow.value.kind, str(slow.value)) == ("timeout", "no answer from 127.0.0.1 within 2 s")
    assert time.monotonic() - started < FAST.total_timeout + 1


@pytest.fixture
def tls_drip_server():
    """A TCP server on 127.0.0.1 that answers a TLS ClientHello with the start of a 16 KB handshake
    record, then one byte of it every 0.3 s: the TLS handshake itself is dripped."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"\x16\x03\x03\x40\x00")
                while not stop.is_set():
                    connection.sendall(b"\x02")
                    time.sleep(0.3)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    server.close()


def test_tls_handshake_drip_hits_the_total_deadline(tls_drip_server):
    started = time.monotonic()
    with pytest.raises(FetchError) as slow:
        fetch(tls_drip_server, allow_loopback=True, limits=FAST)
    assert slow.value.kind == "timeout"
    assert time.monotonic() - started < FAST.total_timeout + 1


def test_ipv6_literal_host_header_keeps_its_brackets():
    try:
        probe = socket.create_server(("::1", 0), family=socket.AF_INET6)
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.HTTPServer):
        address_family = socket.AF_INET6

    server = Server(("::1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        response = fetch(f"http://[::1]:{server.server_address[1]}/", allow_loopback=True, limits=FAST)
    finally:
        server.server_close()
    assert response.body == b"ok" and seen == [f"[::1]:{server.server_address[1]}"]


@pytest.mark.unit
def test_a_slow_name_lookup_hits_the_total_deadline(monkeypatch):
    def slow_resolver(*args, **kwargs):
        time.sleep(10)
        raise socket.gaierror("too late")

    monkeypatch.setattr(socket, "getaddrinfo", slow_resolver)
    started = time.monotonic()
    with pytest.raises(FetchError) as slow:
        fetch("http://slow-dns.test/", limits=FAST)
    assert (slow.value.kind, str(slow.value)) == ("timeout", "cannot resolve slow-dns.test within 2 s")
    assert time.monotonic() - started < FAST.total_timeout + 1


def test_connection_reset_is_a_connection_error(site):
    site.route("/reset", reset=True)
    with pytest.raises(FetchError) as reset:
        fetch(site.url("/reset"), allow_loopback=True, limits=FAST)
    assert reset.value.kind == "connection"


@pytest.mark.unit
def test_decoding_uses_http_charset_then_meta_then_detection():
    text = "华为昇腾910C芯片由中芯国际代工生产，主要用于推理任务，这是一条足够长的中文新闻句子。" * 5
    gbk = page("昇腾", text, charset="gbk", meta=False)
    assert text in decode_page(gbk, {"content-type": "text/html; charset=gbk"}).text
    assert text in decode_page(gbk, {"content-type": "text/html"}).text  # detected
    sjis = page("昇騰", "ファーウェイの昇騰910Cは推論に使われる。" * 5, charset="shift_jis", meta=True)
    assert "ファーウェイの昇騰910C" in decode_page(sjis, {}).text


@pytest.mark.unit
def test_page_text_leaves_out_navigation_and_non_html():
    html = page("Ascend news", "Huawei said its Ascend 910C chips are made by SMIC on its 7nm process.",
                "Analysts expect shipments to double next year as customers move away from Nvidia.").decode()
    text = page_text(html)
    assert "Ascend 910C" in text and "Home | World" not in text
    from chalicelib.fetch import Response

    with pytest.raises(FetchError) as pdf:
        check_html(Response("http://x/", 200, {"content-type": "application/pdf"}, b"%PDF-1.7"))
    assert pdf.value.kind == "not_html"

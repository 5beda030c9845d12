"""`python -m chalicelib extract`: one output line per input line, in order, whatever the input."""

from __future__ import annotations

import json
import subprocess
from urllib.parse import quote

import pytest

from tests.conftest import ROOT

GOOD_ZH = {"id": "zh-1", "text": "华为昇腾910C芯片由中芯国际代工。", "lang": None}
GOOD_JA = {"id": "ja-1", "text": "ファーウェイの昇騰910Bは推論に使われる。"}


def run_extract(stdin: bytes, python: str) -> tuple[list[dict], str]:
    done = subprocess.run(
        [python, "-m", "chalicelib", "extract"], input=stdin, capture_output=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()], done.stderr.decode()


def line(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def test_bad_lines_get_an_error_and_do_not_shift_the_output(python):
    lines = [
        line(GOOD_JA),  # Japanese first: the tokeniser's dictionary build must not print on stdout
        b"this is not json\n",
        line({"id": "empty", "text": "   "}),
        line({"id": "junk", "text": "\x00\x01\x02\x03\x04\x05\x06\x07" * 100}),
        line({"id": "huge", "text": "Ascend 910C. " * 400_000}),  # 5.2 MB
        line({"id": "no-text"}),
        line({"text": "no id here"}),
        line(["an", "array"]),
        line({"id": "bad-lang", "text": "Huawei Ascend 910C", "lang": "fr"}),
        b"\n",
        line({"id": 7, "text": "Baidu's Kunlun P800 trains Ernie.", "lang": "en"}),
        line(GOOD_ZH),
    ]
    out, stderr = run_extract(b"".join(lines), python)
    assert len(out) == len(lines)
    assert [o["id"] for o in out] == [
        "ja-1", None, "empty", "junk", "huge", "no-text", None, None, "bad-lang", None, "7", "zh-1"
    ]
    errors = [o.get("error") for o in out]
    assert errors[0] is None and errors[-1] is None and errors[-2] is None
    assert "not JSON" in errors[1]
    assert "text is empty" in errors[2]
    assert "binary" in errors[3]
    assert "at most 1000000 characters" in errors[4]
    assert "text: Field required" in errors[5]
    assert "id: Field required" in errors[6]
    assert "JSON object" in errors[7]
    assert "lang" in errors[8]
    assert "line 10: not JSON" in errors[9]  # a blank line is a line: its error keeps the count
    assert "9 line(s) had errors" in stderr
    assert out[-1]["events"][0]["fab"] == "smic" and out[-1]["lang"] == "zh"
    assert out[0]["events"][0]["use"] == "inference" and out[0]["lang"] == "ja"


def test_output_matches_the_contract(python):
    out, _ = run_extract(line(GOOD_ZH), python)
    (result,) = out
    assert set(result) == {"id", "lang", "events", "nvidia_models", "error"}
    (event,) = result["events"]
    assert set(event) == {
        "company", "family", "model", "model_in_catalog", "fab", "previous_fab", "use",
        "nvidia_models", "evidence", "extractor", "lang",
    }
    [evidence] = event["evidence"]
    assert set(evidence) == {"text", "start", "end", "supports"}
    assert evidence | {"supports": None} == {"text": GOOD_ZH["text"], "start": 0, "end": len(GOOD_ZH["text"]),
                                             "supports": None}
    # one sentence names the chip and its fab: it says it supports both
    assert event["fab"] == "smic" and {"chip", "fab"} <= set(evidence["supports"])


def test_mis_encoded_input_bytes_become_an_error_not_a_crash(python):
    gbk = json.dumps({"id": "gbk", "text": "华为昇腾"}, ensure_ascii=False).encode("gbk") + b"\n"
    out, _ = run_extract(gbk + line(GOOD_ZH), python)
    assert len(out) == 2 and out[1]["id"] == "zh-1"
    # read as UTF-8 with replacement characters, the GBK text is no longer text: an error, no events
    assert "binary data" in out[0]["error"] and out[0]["events"] == []


# `events --brief` ---------------------------------------------------------------------------------

def test_events_brief_names_an_unnamed_chip_readably(tmp_path, capsys):
    from datetime import UTC, datetime

    from chalicelib.cli import main
    from chalicelib.keys import event_id
    from chalicelib.models import ArticleRef, Evidence, StoredEvent
    from chalicelib.store import open_store

    def event(url: str, company: str, family: str, model: str | None, **fields) -> StoredEvent:
        return StoredEvent(id=event_id(url, company, family, model), company=company, family=family, model=model,
                           extractor="test", lang="en", evidence=[Evidence(text="…", start=0, end=1)],
                           article=ArticleRef(url=url, title=f"About {family}"),
                           first_seen=datetime(2026, 11, 21, 9, len(url), tzinfo=UTC), **fields)

    db = f"sqlite:///{tmp_path}/brief.db"
    store = open_store(db)
    store.put_events([event("https://a.example/1", "alibaba", "unnamed", None, fab="domestic", previous_fab="tsmc"),
                      event("https://a.example/22", "huawei", "ascend", "910C", use="inference"),
                      event("https://a.example/333", "baidu", "kunlun", None)])
    store.close()
    assert main(["events", "--db", db, "--brief"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["baidu kunlun (family)", "huawei ascend 910C",
                                                        "alibaba (unnamed new chip)"]
    assert "fab=domestic (was tsmc)" in lines[2] and "unnamed (family)" not in "\n".join(lines)
    assert main(["events", "--db", db, "--brief", "--family", "unnamed"]) == 0
    assert capsys.readouterr().out.startswith("alibaba (unnamed new chip)")


# No control characters reach the terminal ------------------------------------------------------------

CONTROLS = ("\x1b", "\x0b", "\x9b", "\x07", "\r")


def test_stored_text_prints_without_control_characters(tmp_path, capsys):
    """Titles, evidence and feed errors stored before ingest cleaned them: `events --brief`, the JSON
    lines of `events` and `feeds`, and the digest preview print no escape sequence (ESC, CSI), no bell,
    no carriage return (which would print over a line); each event stays one line."""
    from datetime import UTC, datetime

    from chalicelib.cli import main
    from chalicelib.keys import event_id
    from chalicelib.models import ArticleRef, Evidence, FeedState, StoredEvent
    from chalicelib.store import open_store

    url = "https://a.example/escapes"
    title = "\x1b]0;pwned\x07\x1b[2J Huawei\x0b ships\x9b the 910C\r\nfaked line"
    db = f"sqlite:///{tmp_path}/controls.db"
    store = open_store(db)
    store.put_events([StoredEvent(
        id=event_id(url, "huawei", "ascend", "910C"), company="huawei", family="ascend", model="910C",
        extractor="test", lang="en", article=ArticleRef(url=url, title=title),
        evidence=[Evidence(text="Huawei\x0b ships the 910C.\x1b[31m\x9b", start=0, end=30)],
        first_seen=datetime(2026, 11, 21, 9, tzinfo=UTC))])
    store.put_feed(FeedState(url="https://a.example/feed.xml", last_status="HTTP 500: \x1b[2J\x9b2Jbroken\r"))
    store.close()

    assert main(["events", "--db", db, "--brief"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("huawei ascend 910C") and line.endswith("]0;pwned[2J Huawei ships the 910C faked line")
    assert main(["events", "--db", db]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["evidence"][0]["text"].startswith("Huawei\x0b ships")  # JSON escapes C0 itself
    assert main(["feeds", "--db", db]) == 0
    feeds = capsys.readouterr().out
    assert json.loads(feeds)["last_status"] == "HTTP 500: \x1b[2J2Jbroken\r"  # a raw CSI is dropped
    assert main(["digest", "--db", db, "--date", "2026-11-21"]) == 0
    digest = capsys.readouterr().out
    assert "Huawei ships the 910C.[31m" in digest
    for printed in (line, out, feeds, digest):
        assert not any(char in printed for char in CONTROLS), printed


def test_log_lines_on_stderr_carry_no_control_characters():
    import logging

    from chalicelib.cli import _SafeFormatter

    record = logging.LogRecord("chalicelib.fetch", logging.WARNING, __file__, 1, "feed %s: %s", (
        "https://a.example/feed.xml", "\x1b[2Jbroken\x9b\r"), None)
    assert _SafeFormatter("%(levelname)s %(message)s").format(record) == (
        "WARNING feed https://a.example/feed.xml: [2Jbroken")


# One definition of the filters: the CLI checks what the API checks -----------------------------------------

def test_events_filters_are_checked_as_the_api_checks_them(tmp_path, capsys):
    from chalicelib.api.query import FILTER_NAMES
    from chalicelib.cli import main
    from chalicelib.store import open_store

    db = f"sqlite:///{tmp_path}/filters.db"
    open_store(db).close()
    assert main(["events", "--db", db, "--family", "foo"]) == 2
    assert "events: --family: family must be one of" in capsys.readouterr().err
    assert main(["events", "--db", db, "--use", "gaming"]) == 2
    assert "--use: use must be one of training, inference, both" in capsys.readouterr().err
    assert main(["events", "--db", db, "--model", "910C; drop"]) == 2
    assert "--model: model must be a model name" in capsys.readouterr().err
    assert main(["events", "--db", db, "--since", "2026-11-27", "--until", "2026-11-26"]) == 2
    assert "since must be before until" in capsys.readouterr().err
    assert main(["events", "--db", db, "--family", "KUNLUN", "--lang", "ZH", "--since", "2026-11-01"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["events", "--db", db, "--until", "soon"]) == 2
    assert "events: --until: until must be an ISO date or datetime" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["events", "--help"])
    usage = capsys.readouterr().out
    assert all(f"--{name}" in usage for name in FILTER_NAMES)


def test_serve_mounts_the_api_without_importing_the_app(tmp_path, python):
    code = (
        "import sys, json, threading, urllib.request\n"
        "from chalicelib.cli import serve_api\n"
        "from chalicelib.store import open_store\n"
        f"server = serve_api(open_store('sqlite:///{tmp_path}/serve.db'), 0)\n"
        "threading.Thread(target=server.server.serve_forever, daemon=True).start()\n"
        "base = f'http://127.0.0.1:{server.server.server_address[1]}'\n"
        "health = json.load(urllib.request.urlopen(base + '/health', timeout=10))\n"
        "events = json.load(urllib.request.urlopen(base + '/events', timeout=10))\n"
        "print(json.dumps([health['status'], events, 'app' in sys.modules, sys.path[0] == '']))\n"
        "server.shutdown()\n"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    status, events, app_imported, _ = json.loads(done.stdout.splitlines()[-1])
    assert (status, events, app_imported) == ("ok", {"events": [], "next_cursor": None}, False)


# The same checks as the API, word for word --------------------------------------------------------------

CLI_AND_API = [  # (option, bad value)
    ("family", "foo"), ("family", "dcu"), ("company", "nvidia"), ("fab", "intel"), ("use", "gaming"), ("lang", "fr"),
    ("model", "<script>"), ("nvidia", "foo"), ("nvidia", "910C"), ("since", "yesterday"), ("until", "2026-13-01"),
    ("seen_since", "soon"), ("seen_until", "0001-01-01T00:00:00+01:00"),
]


@pytest.mark.parametrize(("option", "value"), CLI_AND_API, ids=[f"{o}={v}" for o, v in CLI_AND_API])
def test_events_refuses_what_the_api_refuses_with_its_message(tmp_path, capsys, option, value):
    from chalice.test import Client

    from chalicelib.api.routes import local_app
    from chalicelib.cli import main
    from chalicelib.store import open_store

    db = f"sqlite:///{tmp_path}/same.db"
    store = open_store(db)
    try:
        with Client(local_app(store)) as client:
            reply = client.http.get(f"/events?{option}={quote(value)}")
    finally:
        store.close()
    assert reply.status_code == 400
    api = json.loads(reply.body)["error"]
    assert api["parameter"] == option
    assert main(["events", "--db", db, f"--{option}", value]) == 2
    assert capsys.readouterr().err.strip() == f"events: --{option}: {api['message']}"


def test_events_takes_nvidia_any_and_a_product_as_the_api_does(tmp_path, capsys):
    from chalicelib.cli import main
    from chalicelib.store import open_store

    db = f"sqlite:///{tmp_path}/nvidia.db"
    open_store(db).close()
    for value in ("any", "ANY", "h20", "rtx-4090d", "Blackwell"):
        assert main(["events", "--db", db, "--nvidia", value]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == ""


# One default store; read-only commands never create one --------------------------------------------------

READ_ONLY = [["events"], ["events", "--brief"], ["feeds"], ["digest", "--date", "2026-11-21"],
             ["serve", "--port", "0"]]


@pytest.mark.parametrize("command", READ_ONLY, ids=[" ".join(c) for c in READ_ONLY])
def test_a_read_only_command_refuses_a_store_that_is_not_there(tmp_path, capsys, monkeypatch, command):
    from chalicelib.cli import main

    missing = tmp_path / "nowhere" / "missing.db"
    assert main([*command, "--db", f"sqlite:///{missing}"]) == 2
    err = capsys.readouterr().err
    assert f"no store at {str(missing)!r}" in err and "nothing to read" in err
    assert not missing.exists() and not missing.parent.exists()
    monkeypatch.chdir(tmp_path)  # the default store, not there either
    assert main(command) == 2
    assert "no store at '.chiptracker/chiptracker.db'" in capsys.readouterr().err
    assert not (tmp_path / ".chiptracker").exists()


def test_demo_and_every_command_share_one_default_store(tmp_path, capsys, monkeypatch):
    """`make demo` runs `demo` without --db: `events` and `feeds` without --db then read what it stored."""
    from chalicelib.cli import main
    from chalicelib.settings import DEFAULT_DB, settings

    monkeypatch.chdir(tmp_path)
    assert settings().db == DEFAULT_DB == "sqlite:///.chiptracker/chiptracker.db"
    assert main(["demo"]) == 0
    demo = capsys.readouterr().out
    assert (tmp_path / ".chiptracker" / "chiptracker.db").is_file()
    assert not (tmp_path / ".chiptracker" / "demo.db").exists()
    assert main(["events", "--brief"]) == 0
    events = capsys.readouterr().out.splitlines()
    assert events and all(line in demo for line in events)
    assert main(["feeds"]) == 0
    feeds = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert feeds and all(f["last_status"] == "ok" for f in feeds)

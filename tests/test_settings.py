"""Settings are checked when they are read (at a function's cold start): a value that would split a mail
header or a request line stops start-up with a message naming the setting, not a send with a traceback."""

from __future__ import annotations

import pytest

from chalicelib.errors import SettingsError
from chalicelib.settings import settings

pytestmark = pytest.mark.unit


def read(monkeypatch, **env: str):
    """settings() with these CHIPTRACKER_* variables set (name in lower case, without the prefix)."""
    for name, value in env.items():
        monkeypatch.setenv(f"CHIPTRACKER_{name.upper()}", value)
    settings.cache_clear()
    return settings()


@pytest.mark.parametrize(("sender", "recipients"), [
    ("desk@example.com", "ops@example.com"),
    ("Chip desk <desk@example.com>", "ops@example.com, Analyst <analyst@example.org>"),
    ('"Desk, Chip" <desk@example.com>', '["ops@example.com", "\\"Ops, Night\\" <night@example.org>"]'),
    ("芯片组 <desk@example.com>", "ops@localhost"),
])
def test_plain_mail_addresses_are_taken_as_given(monkeypatch, sender, recipients):
    config = read(monkeypatch, digest_from=sender, digest_to=recipients)
    assert config.digest_from == sender
    assert len(config.digest_to) == (2 if "," in recipients else 1)


@pytest.mark.parametrize("sender", [
    "desk@example.com\r\nBcc: everyone@example.org",  # a header injected
    "desk@example.com\n",
    "Chip desk\x1b[31m <desk@example.com>",
    "desk@example.com\x85",  # NEL, a C1 line end
    "desk@example.com, other@example.org",  # two addresses
    "desk", "desk@", "@example.com", "desk@exa mple.com", "Chip desk desk@example.com", "undisclosed:;",
])
def test_a_sender_that_is_not_one_plain_address_stops_start_up(monkeypatch, sender):
    with pytest.raises(SettingsError, match=r"^bad configuration: CHIPTRACKER_DIGEST_FROM: "):
        read(monkeypatch, digest_from=sender)


@pytest.mark.parametrize("recipients", [
    "ops@example.com,desk\r\nBcc: everyone@example.org",
    '["ops@example.com", "night@example.org\\r\\nBcc: everyone@example.org"]',
    "ops@example.com, not an address",
    '["ops@example.com"',  # a JSON list cut short
])
def test_each_recipient_must_be_one_plain_address(monkeypatch, recipients):
    with pytest.raises(SettingsError, match=r"^bad configuration: CHIPTRACKER_DIGEST_TO: "):
        read(monkeypatch, digest_to=recipients)


@pytest.mark.parametrize("name", ["stage", "smtp_host", "smtp_user", "ses_region", "slack_webhook_param",
                                  "slack_webhook_url"])
@pytest.mark.parametrize("control", ["\r\n", "\n", "\x01", "\x1b", "\t", "\x7f", "\x9b", "\u2028"])
def test_control_characters_in_header_and_host_settings_stop_start_up(monkeypatch, name, control):
    value = f"prod{control}X-Injected: 1" if name == "stage" else f"value{control}more"
    with pytest.raises(SettingsError, match=rf"^bad configuration: CHIPTRACKER_{name.upper()}: .*control character"):
        read(monkeypatch, **{name: value})


def test_the_message_names_the_setting_but_never_echoes_a_webhook_url(monkeypatch):
    secret = "https://hooks.slack.com/services/T000/B000/secret\r\n"
    with pytest.raises(SettingsError) as failed:
        read(monkeypatch, slack_webhook_url=secret)
    assert "CHIPTRACKER_SLACK_WEBHOOK_URL" in str(failed.value) and "secret" not in str(failed.value)


@pytest.mark.functional
def test_the_app_does_not_start_with_a_bad_sender(monkeypatch, python):
    import subprocess

    from tests.conftest import ROOT

    env = {"CHIPTRACKER_DIGEST_FROM": "desk@example.com\r\nBcc: everyone@example.org", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([python, "-c", "import app"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=60)
    assert done.returncode != 0
    assert "SettingsError: bad configuration: CHIPTRACKER_DIGEST_FROM:" in done.stderr

"""Slack alerts for first sightings: a new chip, or a new fab for a chip.

Alerts wait in the store's outbox (written with the first sighting, so exactly one exists per
sighting). `deliver_alerts` leases each due alert, posts it, and marks it sent only when Slack
answers 200; a 429, a 5xx, a timeout or a refused connection leaves it pending with a later
attempt, so nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from chalicelib.backoff import backoff, parse_retry_after
from chalicelib.errors import DeliveryError
from chalicelib.labels import chip_name, company_name, is_unnamed, quotes, unnamed_description
from chalicelib.models import Alert
from chalicelib.settings import Settings
from chalicelib.store import EventStore
from chalicelib.text import one_line

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # how long a worker holds an alert while posting it
RETRY_BASE = timedelta(minutes=2)
RETRY_MAX = timedelta(hours=6)


class AlertChannel(Protocol):
    def send(self, payload: dict) -> None:
        """Deliver one message; raise DeliveryError if it was not accepted."""
        ...


# The message ---------------------------------------------------------------------------------------
#
# Article text (titles, evidence sentences) is untrusted: it must not ping a channel, link elsewhere or
# format itself. Slack's mrkdwn has no escape for *bold*, _italic_, ~strike~ or `code`, so that text goes
# in plain_text objects, which Slack never formats; mrkdwn carries only our own labels and link, and the
# short values beside them (chip, fab, Nvidia names) with their formatting marks made inert.

def escape(text: str) -> str:
    """Untrusted text for any Slack text object: one printable line (stored text may predate cleaning at
    ingest), Slack's three control characters as entities, so `<!channel>`, `<@U123>` and links stay text."""
    return one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# mrkdwn's formatting marks and look-alikes that format nothing: ∗ ＿ ∼ ˋ
_INERT = str.maketrans({"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb"})


def inert(text: str) -> str:
    """Untrusted text inside mrkdwn (a field's value beside our bold label, the notification text)."""
    return escape(text).translate(_INERT)


def plain(*lines: str, limit: int = 3000) -> dict:
    """A plain_text object of untrusted lines: no formatting, links, mentions or :emoji: codes; at most
    `limit` characters (Slack's), cut between characters, never inside an entity."""
    text = "\n".join(escape(line) for line in lines)
    if len(text) > limit:
        text = re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"
    return {"type": "plain_text", "text": text or "–", "emoji": False}  # Slack refuses an empty text


def _link(url: str, label: str) -> str:
    """<url|label>, with the URL unable to close the link early; the label is ours."""
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    return f"<{safe_url.replace('|', '%7C').replace('>', '%3E')}|{label}>"


def alert_message(alert: Alert) -> dict:
    """The Block Kit message of an alert."""
    e = alert.event
    chip = chip_name(e.family, e.model)
    company = company_name(e.company)
    unnamed = is_unnamed(e.family)
    if alert.kind == "new chip" and unnamed:
        # no name to announce: what the article says of it is the headline
        headline = f"New chip: {company}, {unnamed_description(e.use)}"
        if e.fab:
            headline += f"; {e.fab.upper()} fab" + (f" (was {e.previous_fab.upper()})" if e.previous_fab else "")
    elif alert.kind == "new chip":
        headline = f"New chip: {company} {chip}"
    else:
        headline = f"New foundry for {company} {chip}: {(e.fab or '?').upper()}"
    # "(not in the catalog)" flags a possible new model; "unnamed chip" says so already
    flag = "" if e.model_in_catalog or unnamed else " (not in the catalog)"
    fields = [("Company", company), ("Chip", chip + flag),
              ("Fab", (e.fab or "not said").upper()), ("Previous fab", (e.previous_fab or "not said").upper()),
              ("Use", e.use or "not said"), ("Nvidia named", ", ".join(e.nvidia_models) or "none")]
    evidence = [f"“{ev.text}”" for ev in quotes(e)]  # the fab's sentence first
    seen = f"{_link(e.article.url, 'source')} · first seen {e.first_seen:%Y-%m-%d %H:%M} UTC"
    return {
        "text": inert(headline),  # the notification's text, where mrkdwn (and so mentions) would apply
        "blocks": [
            {"type": "header", "text": plain(headline, limit=150)},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{inert(value)}"}
                                           for name, value in fields]},
            {"type": "section", "text": plain(*evidence) if evidence else
             {"type": "mrkdwn", "text": "_no evidence sentence_"}},
            {"type": "context", "elements": [plain(one_line(e.article.title) or e.article.url),
                                             {"type": "mrkdwn", "text": seen}]},
        ],
    }


# Channels ----------------------------------------------------------------------------------------

class SlackWebhook:
    """An incoming webhook. The URL is operator configuration: loopback is allowed (tests, proxies)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        import urllib3

        self.url = url
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5.0, read=timeout), retries=False)

    def send(self, payload: dict) -> None:
        import urllib3

        try:
            response = self._http.request("POST", self.url, body=json.dumps(payload).encode(),
                                          headers={"Content-Type": "application/json"})
        except urllib3.exceptions.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {exc}") from None
        if response.status != 200:  # Slack answers 200 "ok"; anything else was not posted
            raise DeliveryError(
                f"webhook answered HTTP {response.status}: {response.data[:200].decode('utf-8', 'replace')}",
                parse_retry_after(response.headers.get("Retry-After")),
            )


class FileSink:
    """Locally, without a webhook: each alert as a JSON line in a file (the operator can read it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def send(self, payload: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(payload, ensure_ascii=False) + "\n")


def configured_channel(config: Settings) -> AlertChannel | None:
    """The webhook from CHIPTRACKER_SLACK_WEBHOOK_URL, or from the SSM parameter named by
    CHIPTRACKER_SLACK_WEBHOOK_PARAM; locally, else the alerts file; deployed, else none (alerts wait)."""
    if config.slack_webhook_url:
        return SlackWebhook(config.slack_webhook_url)
    if config.slack_webhook_param:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            parameter = boto3.client("ssm").get_parameter(Name=config.slack_webhook_param, WithDecryption=True)
        except (BotoCoreError, ClientError) as exc:
            # ingestion goes on; the alerts wait in the outbox until the parameter can be read
            log.error("cannot read the Slack webhook from SSM parameter %s: %s", config.slack_webhook_param, exc)
            return None
        return SlackWebhook(parameter["Parameter"]["Value"])
    if config.in_lambda:
        log.warning("no Slack webhook configured: alerts stay pending")
        return None
    return FileSink(config.alerts_file)


# The outbox ------------------------------------------------------------------------------------------

def deliver_alerts(store: EventStore, channel: AlertChannel | None, now: datetime) -> tuple[int, int]:
    """Send the due alerts; return (sent, failed). Safe to run from several workers at once. Without a
    channel nothing is sent: the alerts wait in the outbox."""
    sent = failed = 0
    if channel is None:
        return sent, failed
    for listed in store.pending_alerts(now):
        # the list may be stale: the lease checks again that the alert is due, and returns it as stored
        alert = store.lease_alert(listed.key, now, now + LEASE)
        if alert is None:
            continue  # another worker has it, or has tried it meanwhile
        attempts = alert.attempts + 1
        try:
            channel.send(alert_message(alert))
        except DeliveryError as exc:
            wait = backoff(attempts, RETRY_BASE, RETRY_MAX, exc.retry_after)
            store.update_alert(alert.model_copy(update={
                "attempts": attempts, "last_error": str(exc)[:300], "next_attempt": now + wait}))
            log.warning("alert %s not delivered (attempt %d): %s", alert.key, attempts, exc)
            failed += 1
        else:
            store.update_alert(alert.model_copy(update={
                "status": "sent", "attempts": attempts, "sent_at": now, "last_error": None}))
            sent += 1
    return sent, failed

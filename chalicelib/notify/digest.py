"""The daily digest: what the tracker first saw on a day, as HTML and plain text.

New chips and new foundries at the top, then every event of the day per company and chip with
its fab ("SMIC, previously TSMC"), use, evidence (the sentence naming the fab first, marked "fab",
each in an element with its `lang`) and its article (title, outlet, publication date, language),
and the day's Nvidia-dependence figures next to the week before, with the 12-week trend (the chart
the page at `/` shows too). A new chip without a name reads "Alibaba · unnamed new chip". Each
date is sent once (recorded in the store); `force` sends it again. Names, languages, the chart and
the Jinja environment are chalicelib/present.py's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from chalicelib.dates import utc_now
from chalicelib.dependence import figures
from chalicelib.errors import SettingsError
from chalicelib.keys import MarkerKind, SightingKind
from chalicelib.models import DependencePeriod, EventQuery, Marker, StoredEvent
from chalicelib.present import render, weekly_trend
from chalicelib.settings import Settings
from chalicelib.store import EventStore
from chalicelib.text import one_line

# Bodies 7-bit clean (quoted-printable or base64, whichever is shorter, for non-ASCII text): smtplib
# sends without BODY=8BITMIME, so an 8bit part is not guaranteed to cross every relay intact.
SEVEN_BIT = policy.default.clone(cte_type="7bit")


class ChipGroup(BaseModel):
    company: str
    family: str
    model: str | None
    events: list[StoredEvent]


class DigestDay(BaseModel):
    day: date
    events: int
    new_chips: list[StoredEvent]
    new_fabs: list[StoredEvent]
    groups: list[ChipGroup]  # per company, then chip
    today: DependencePeriod
    week_before: DependencePeriod  # the seven days before `day`
    trend: list[DependencePeriod]  # the last 12 ISO weeks, the last one up to `day`


def build_digest(store: EventStore, day: date) -> DigestDay:
    """Everything first seen on `day` (UTC): by the time the tracker stored it, not its publication."""
    start = datetime.combine(day, time(), UTC)
    events: list[StoredEvent] = []
    query, cursor = EventQuery(seen_since=start, seen_until=start + timedelta(days=1), limit=200), None
    while True:
        page, cursor = store.query_events(query, cursor)
        events += page
        if cursor is None:
            break
    new_chips = _first_on(store, SightingKind.CHIP, day)
    new_chip_ids = {event.id for event in new_chips}
    # a new chip's fab is shown with the chip; "new foundry" is a new fab for a chip known before
    new_fabs = [event for event in _first_on(store, SightingKind.FAB, day) if event.id not in new_chip_ids]
    groups: dict[tuple, list[StoredEvent]] = {}
    for event in sorted(events, key=lambda e: (e.company, e.family, e.model or "", e.first_seen)):
        groups.setdefault((event.company, event.family, event.model), []).append(event)
    return DigestDay(
        day=day, events=len(events), new_chips=new_chips, new_fabs=new_fabs,
        groups=[ChipGroup(company=c, family=f, model=m, events=evs) for (c, f, m), evs in groups.items()],
        today=figures(store, day, day + timedelta(days=1), day.isoformat()),
        week_before=figures(store, day - timedelta(days=7), day, f"{day - timedelta(days=7)} to {day}"),
        trend=weekly_trend(store, day),
    )


def _first_on(store: EventStore, kind: SightingKind, day: date) -> list[StoredEvent]:
    """The events that were the first sighting of a chip (or a fab) on `day`; the catalog seed is not news."""
    sightings = [s for s in store.list_sightings(kind) if s.first_seen.astimezone(UTC).date() == day]
    found = (store.get_event(s.event_id) for s in sightings if s.event_id != "catalog")
    return [event for event in found if event is not None]


def render_html(digest: DigestDay) -> str:
    return render("digest.html", d=digest)


def render_text(digest: DigestDay) -> str:
    return render("digest.txt", d=digest)


def subject(digest: DigestDay) -> str:
    news = len(digest.new_chips) + len(digest.new_fabs)
    headline = f"{news} new chip or foundry sighting{'s' if news != 1 else ''}, " if news else ""
    # one printable line: a header holds neither line ends nor control characters
    return one_line(f"chiptracker {digest.day}: {headline}{digest.events} event{'s' if digest.events != 1 else ''}")


def message(digest: DigestDay, sender: str, recipients: list[str]) -> EmailMessage:
    """One multipart/alternative message: the plain text, then the HTML."""
    mail = EmailMessage(policy=SEVEN_BIT)
    mail["Subject"] = subject(digest)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = format_datetime(datetime.now(UTC))  # RFC 5322: Date and From are required
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or "localhost")
    mail.set_content(render_text(digest))
    mail.add_alternative(render_html(digest), subtype="html")
    return mail


# When and whether to send -------------------------------------------------------------------------------

def due_day(now: datetime, hour: int, zone: str) -> date:
    """The day whose digest is due at `now`: yesterday (in `zone`) once `hour` has passed there, but
    never a day that has not ended in UTC yet (a digest covers a UTC day, and each is sent once)."""
    local = now.astimezone(ZoneInfo(zone))
    day = local.date() - timedelta(days=1 if local.hour >= hour else 2)
    return min(day, now.astimezone(UTC).date() - timedelta(days=1))


def send_digest(
    store: EventStore, day: date, config: Settings, *, force: bool = False, now: datetime | None = None
) -> str:
    """Send the digest of `day` by mail (config: recipients, sender, SMTP or SES) unless it went
    out already; returns what happened, in words."""
    from chalicelib.notify.mail import send_mail

    if not force and store.get_marker(MarkerKind.DIGEST_SENT, day.isoformat()):
        return f"the digest of {day} was sent already (use --force to send it again)"
    if not config.digest_to or not config.digest_from:
        raise SettingsError("the digest needs CHIPTRACKER_DIGEST_TO and CHIPTRACKER_DIGEST_FROM")
    digest = build_digest(store, day)
    if digest.events == 0 and config.digest_empty == "skip":
        outcome = f"no events on {day}: skipped"
    else:
        send_mail(message(digest, config.digest_from, config.digest_to), config)
        outcome = f"sent the digest of {day} ({digest.events} events) to {len(config.digest_to)} recipient(s)"
    store.claim_marker(Marker(kind=MarkerKind.DIGEST_SENT, name=day.isoformat(), done_at=now or utc_now()))
    return outcome

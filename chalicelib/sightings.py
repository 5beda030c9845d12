"""First sightings: the first time a chip, or a fab for a chip, is reported, each claimed once with its
Slack alert in the outbox; and the catalog seed, which records what is known already (no alert for it)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from chalicelib.catalog import load_catalog
from chalicelib.dates import utc_now
from chalicelib.keys import MarkerKind, SightingKey, SightingKind
from chalicelib.models import Alert, Marker, Sighting, StoredEvent
from chalicelib.store import EventStore


def claim_sightings(store: EventStore, events: Iterable[StoredEvent], now: datetime) -> int:
    """Claim the first sightings these events are, each with its Slack alert in the outbox: a new
    chip, and a new fab for a known chip (a new chip's alert names its fab already, so that fab is
    recorded as seen without an alert of its own). Returns how many were first. (When a chip was
    first named in the news is its summary's first time: chalicelib.summaries.)"""
    first = 0
    for event in events:
        chip = SightingKey(SightingKind.CHIP, event.company, event.family, event.model)
        new_chip = store.claim_sighting(*_sighting(chip, "new chip", event, now))
        first += new_chip
        if event.fab:
            sighting, alert = _sighting(chip.with_kind(SightingKind.FAB, event.fab), "new fab", event, now)
            first += store.claim_sighting(sighting, None if new_chip else alert)
    return first


def _sighting(key: SightingKey, kind: str, event: StoredEvent, now: datetime) -> tuple[Sighting, Alert]:
    alert = Alert(key=key, kind=kind, event=event, next_attempt=now)
    return Sighting(key=key, event_id=event.id, first_seen=now), alert


def seed_catalog(store: EventStore, now: datetime | None = None) -> int:
    """Record the catalog's chips and known fab claims as already seen (no alerts for them), once
    per catalog version: a new deployment does not flood Slack with old news. Returns how many."""
    catalog = load_catalog()
    now = now or utc_now()
    if store.get_marker(MarkerKind.CATALOG_SEEDED, catalog.version):
        return 0  # this catalog version is seeded already
    keys = []
    # catalog families only: an unnamed chip ("chip|alibaba|unnamed|") is never seeded, so each
    # company's first one is news
    for family in (f for f in catalog.families if f.report):
        for model, fabs in [(None, family.fabs), *((m.id, m.fabs) for m in family.models)]:
            chip = SightingKey(SightingKind.CHIP, family.company, family.id, model)
            keys += [chip, *(chip.with_kind(SightingKind.FAB, fab) for fab in fabs)]
    seeded = sum(store.claim_sighting(Sighting(key=key, event_id="catalog", first_seen=now)) for key in keys)
    # last: a seed cut short is completed by the next run (each claim is idempotent)
    store.claim_marker(Marker(kind=MarkerKind.CATALOG_SEEDED, name=catalog.version, done_at=now))
    return seeded

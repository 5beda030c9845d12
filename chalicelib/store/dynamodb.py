"""DynamoDB adapter: one table, every read on a request path a GetItem or a Query (never a Scan).

Key layout (`pk`, `sk` are strings; `<ts>` is `timestamp()`, fixed width, so string order is time order):

| item             | pk                          | sk               | other attributes                               |
|------------------|-----------------------------|------------------|------------------------------------------------|
| feed state       | `FEED`                      | feed URL         | data (FeedState JSON)                          |
| article          | `ARTICLE#<url_key>`         | `ARTICLE`        | data (JSON without text), status, text (zlib,  |
|                  |                             |                  | Binary) or chunks (count); gsi1 while failed   |
| article text     | `ARTICLE#<url_key>`         | `TEXT#0000`, …   | text (a slice of the compressed text)          |
| GUID claim       | `GUID#<sha256(guid)[:32]>`  | `GUID`           | url                                            |
| simhash band     | `SIMHASH#<band>#<value>`    | `<url_key>`      | url, simhash (decimal string: 64-bit),         |
|                  |                             |                  | expires_at (TTL: NEAR_DUPLICATE_DAYS)          |
| event            | `EVENT#<id>`                | `EVENT`          | data (StoredEvent JSON), gsi1/2/3, company,    |
|                  |                             |                  | family, model, fab, use, lang, nvidia          |
| first sighting   | `SIGHTING#<kind>`           | rest of the key  | event_id, first_seen ("chip|huawei|ascend|910C"|
|                  |                             |                  | is kind "chip", rest "huawei|ascend|910C");    |
|                  |                             |                  | alert (JSON), lease_until; gsi1 while pending  |
| once-only job    | `SIGHTING#digest`, `#seed`  | the day, version | event_id (the kind), first_seen (when done)    |
| article stats    | `STATS#YYYY-MM`             | `<day>#<url_key>`| data (ArticleStats JSON)                       |
| event months     | `META`                      | `MONTHS`         | months, seen (string sets of `YYYY-MM`)        |
| event filter key | `BY#<model|fab|nvidia>#<v>` | `<ts>#<id>`      | id (no data: the event is read back by id)     |
| event seen key   | `SEEN#YYYY-MM`              | `<ts(first_seen)>#<id>` | id (the stored-time axis)               |
| chip summary     | `TALLY#chip`                | chip key         | `n|<name>` counts, `f|<name>`, `l|<name>` times|
| day summary      | `TALLY#day`                 | `YYYY-MM-DD`     | `n|<name>` counts (chalicelib.summaries)       |

Global secondary indexes (gsi3 projects the keys only, the others ALL):

| index | partition key                 | sort key                    | what                                   |
|-------|-------------------------------|-----------------------------|----------------------------------------|
| gsi1  | `FAMILY#<family>`             | `<ts(published)>#<id>`      | events of a chip family, by time       |
| gsi1  | `RETRY`                       | `<ts(next_attempt)>#<key>`  | failed articles by due time (sparse)   |
| gsi1  | `ALERT`                       | `<ts(next_attempt)>#<key>`  | pending alerts by due time (sparse)    |
| gsi2  | `MONTH#YYYY-MM` (published)   | `<ts(published)>#<id>`      | events of a month, by time             |
| gsi3  | `ARTICLE#<url_key>`           | `EVENT#<id>`                | events of an article                   |
| gsi4  | `CHIP#<chip_key>`             | `<ts(first_seen)>#<id>`     | events claiming a fab or a use (sparse)|

Events are ordered by StoredEvent.published (`<ts>` above, unless marked): `query_events` reads the filter
keys of the rarest keyed filter the query names (model, nvidia, fab), else gsi1 when it names a family,
else walks the months listed in the META item newest first, reading gsi2; a query bounded by stored time
alone (common.by_seen) walks the SEEN keys of the months it spans instead, every filter checked on what
it reads. A cursor `(ts, id)` becomes the key condition `sk < "<ts>#<id>"`. The summaries are updated in
the same transaction as the event or stats write they count (chalicelib.summaries).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.duplicates import is_near, is_original, near_duplicate_expiry, simhash_bands
from chalicelib.errors import StoreError
from chalicelib.keys import MarkerKind, SightingKey, SightingKind, chip_key
from chalicelib.models import (
    ANY_NVIDIA,
    Alert,
    Article,
    ArticleStats,
    EventQuery,
    FeedState,
    Marker,
    Sighting,
    StoredEvent,
)
from chalicelib.store.common import (
    by_seen,
    compress_text,
    decode_cursor,
    decompress_text,
    encode_cursor,
    matches,
    timestamp,
    url_key,
)
from chalicelib.summaries import (
    CHIP,
    DAY,
    Contribution,
    Tally,
    difference,
    event_contribution,
    recount,
    reported_families,
    stats_contribution,
)

Item = dict[str, Any]  # an item in the low-level client's typed form: {"pk": {"S": "…"}, …}

# Items with this attribute (Unix seconds) are deleted by DynamoDB's TTL after that time.
TTL_ATTRIBUTE = "expires_at"

_INDEXES = {f"gsi{n}": (f"gsi{n}pk", f"gsi{n}sk") for n in (1, 2, 3, 4)}
# gsi3 (an article's events) is read only when an article is extracted again: keys only, the events read
# back by id, so that each event write does not copy the whole event into it (a write unit per KB)
_PROJECTIONS = {"gsi1": "ALL", "gsi2": "ALL", "gsi3": "KEYS_ONLY", "gsi4": "ALL"}

# DynamoDB items are at most 400 KB: compressed texts above this size go to chunk items.
_CHUNK_BYTES = 300_000

# One request reads at most this many events through filters that are not in a key (fab, use …):
# past it, the page ends short, with a cursor to go on from (SQLite answers such queries in full).
MAX_EXAMINED = 2000

# Query page size when filters beyond the key condition are applied to what a page returns.
_FILTERED_PAGE = 200
_RESIDUAL_FILTERS = ("company", "model", "fab", "use", "lang", "nvidia")  # filtered after the read
# Filters whose values are rare enough that each event writes a key item per value (`BY#fab#samsung`):
# a query naming one reads only matching events, rarest first. The others (company, use, lang) match a
# large share of events, so a page of them fills quickly from the family or month partitions.
_KEYED_FILTERS = ("model", "nvidia", "fab")

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=10)

_serializer = TypeSerializer()


def table_definition(name: str) -> dict[str, Any]:
    """The CreateTable arguments of the store's table (also the source of the CloudFormation resource)."""
    keys = [("pk", "sk"), *_INDEXES.values()]
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": attribute, "AttributeType": "S"} for pair in keys for attribute in pair
        ],
        "KeySchema": _key_schema("pk", "sk"),
        "GlobalSecondaryIndexes": [
            {"IndexName": index, "KeySchema": _key_schema(*pair), "Projection": {"ProjectionType": _PROJECTIONS[index]}}
            for index, pair in _INDEXES.items()
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def _key_schema(hash_key: str, range_key: str) -> list[dict[str, str]]:
    return [{"AttributeName": hash_key, "KeyType": "HASH"}, {"AttributeName": range_key, "KeyType": "RANGE"}]


class DynamoDBStore:
    """EventStore on one DynamoDB table. One boto3 client, shared by all threads (clients are thread-safe)."""

    def __init__(
        self, table: str, region: str | None = None, endpoint_url: str | None = None, create: bool = False
    ) -> None:
        self.table = table
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        # a session of our own: boto3's default session is not safe to share between threads
        self.client = boto3.session.Session().client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=_CONFIG
        )
        self._known_months: set[tuple[str, str]] = set()  # (set, month) already recorded in the META item
        where = f"in {region}" + (f" at {endpoint_url}" if endpoint_url else "")
        try:
            self._open(create)
        except (BotoCoreError, ClientError) as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                raise StoreError(
                    f"DynamoDB table {table!r} does not exist {where}: create it, or open the store with create=1"
                ) from exc
            raise StoreError(f"cannot open DynamoDB table {table!r} {where}: {exc}") from exc

    def _open(self, create: bool) -> None:
        try:
            description = self.client.describe_table(TableName=self.table)["Table"]
        except ClientError as exc:
            if not (create and _error_code(exc) == "ResourceNotFoundException"):
                raise
            try:
                self.client.create_table(**table_definition(self.table))
            except ClientError as race:
                if _error_code(race) != "ResourceInUseException":  # created meanwhile by another process
                    raise
            self.client.get_waiter("table_exists").wait(
                TableName=self.table, WaiterConfig={"Delay": 2, "MaxAttempts": 150}
            )
            return
        indexes = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
        if missing := sorted(_INDEXES.keys() - indexes):
            raise StoreError(f"DynamoDB table {self.table!r} lacks the indexes {', '.join(missing)}")

    def close(self) -> None:
        self.client.close()

    # feeds ------------------------------------------------------------------------------------
    def get_feed(self, url: str) -> FeedState | None:
        item = self._get("FEED", url)
        return FeedState.model_validate_json(item["data"]["S"]) if item else None

    def put_feed(self, state: FeedState) -> None:
        self._put(_item(pk="FEED", sk=state.url, data=state.model_dump_json()))

    def list_feeds(self) -> list[FeedState]:
        items = self._query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues=_values(pk="FEED"), ConsistentRead=True
        )
        return [FeedState.model_validate_json(item["data"]["S"]) for item in items]

    # articles ---------------------------------------------------------------------------------
    def get_article(self, url: str) -> Article | None:
        item = self._get(f"ARTICLE#{url_key(url)}", "ARTICLE")
        return self._article(item) if item else None

    def put_article(self, article: Article) -> None:
        pk = f"ARTICLE#{url_key(article.url)}"
        blob = compress_text(article.text)
        chunks = _split(blob) if len(blob) > _CHUNK_BYTES else []
        old = self._get(pk, "ARTICLE", ProjectionExpression="chunks")
        old_chunks = int(old["chunks"]["N"]) if old and "chunks" in old else 0
        # chunks first, then the article item that says how many to read, then the chunks no longer used
        for n, chunk in enumerate(chunks):
            self._put(_item(pk=pk, sk=_chunk_sk(n), text=chunk))
        item = _item(pk=pk, sk="ARTICLE", data=article.model_dump_json(exclude={"text"}), status=article.status)
        item |= _item(chunks=len(chunks)) if chunks else _item(text=blob)
        if article.status == "failed" and article.next_attempt is not None:  # the sparse retry index
            item |= _item(gsi1pk="RETRY", gsi1sk=f"{timestamp(article.next_attempt)}#{url_key(article.url)}")
        self._put(item)
        for n in range(len(chunks), old_chunks):
            self.client.delete_item(TableName=self.table, Key=_item(pk=pk, sk=_chunk_sk(n)))
        if is_original(article):
            for band, value in enumerate(simhash_bands(article.simhash)):
                self._put(_item(
                    pk=f"SIMHASH#{band}#{value}", sk=url_key(article.url),
                    url=article.url, simhash=str(article.simhash), **{TTL_ATTRIBUTE: near_duplicate_expiry(article)},
                ))

    def claim_guid(self, guid: str, url: str) -> str | None:
        pk = f"GUID#{hashlib.sha256(guid.encode()).hexdigest()[:32]}"
        if self._put_new(_item(pk=pk, sk="GUID", url=url)):
            return None
        holder = self._get(pk, "GUID")["url"]["S"]
        return None if holder == url else holder

    def find_near_duplicate(self, simhash: int, exclude_url: str) -> str | None:
        for band, value in enumerate(simhash_bands(simhash)):
            items = self._query(
                KeyConditionExpression="pk = :pk", ExpressionAttributeValues=_values(pk=f"SIMHASH#{band}#{value}")
            )
            now = int(time.time())  # TTL deletes expired items within days, not at once: skip them here
            candidates = sorted((item["url"]["S"], int(item["simhash"]["S"])) for item in items
                                if int(item.get(TTL_ATTRIBUTE, {}).get("N", now + 1)) > now)
            for url, other in candidates:
                if url != exclude_url and is_near(simhash, other):
                    return url
        return None

    def articles_to_retry(self, now: datetime, limit: int = 100) -> list[Article]:
        items = self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk <= :due",
            # "~" sorts after every url_key (hex), so articles due exactly `now` are included
            ExpressionAttributeValues=_values(pk="RETRY", due=f"{timestamp(now)}#~"),
            Limit=limit,
        )
        return [self._article(item) for item in itertools.islice(items, limit)]

    def iter_articles(self) -> Iterator[Article]:
        # a maintenance job, not a request path: the one Scan of this adapter
        for page in self.client.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="sk = :sk AND #status = :ok",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(sk="ARTICLE", ok="ok"),
        ):
            for item in page["Items"]:
                yield self._article(item)

    def _article(self, item: Item) -> Article:
        article = Article.model_validate_json(item["data"]["S"])
        article.text = decompress_text(self._text_blob(item))
        return article

    def _text_blob(self, item: Item) -> bytes:
        if "chunks" not in item:
            return item["text"]["B"] if "text" in item else b""
        count = int(item["chunks"]["N"])
        chunks = list(self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues=_values(pk=item["pk"]["S"], first=_chunk_sk(0), last=_chunk_sk(count - 1)),
            ConsistentRead=True,
        ))
        if len(chunks) != count:
            raise StoreError(f"article {item['pk']['S']}: {len(chunks)} text chunks stored, {count} expected")
        return b"".join(chunk["text"]["B"] for chunk in chunks)

    # events -----------------------------------------------------------------------------------
    def put_events(self, events: list[StoredEvent]) -> int:
        self._record_months(events)
        return sum(self._put_counted_event(event) for event in events)

    def replace_article_events(self, url: str, events: list[StoredEvent]) -> tuple[int, int]:
        old = {event.id: event for event in self.events_for_article(url)}
        keep = {event.id for event in events}
        removed = [event_id for event_id in old if event_id not in keep]
        for event_id in removed:
            delete = {"Delete": {"TableName": self.table, "Key": _item(pk=f"EVENT#{event_id}", sk="EVENT"),
                                 "ConditionExpression": "attribute_exists(pk)"}}
            self._write_counted(delete, event_contribution(old[event_id]).negated())
            gone = old[event_id]
            self._delete_filter_keys(_filter_keys(gone) + _filter_keys(gone, published=gone.first_seen))
        self._record_months(events)
        added = 0
        for event in events:
            if event.id not in old:
                if self._put_counted_event(event):
                    added += 1
                    continue
                # stored, but not yet visible in gsi3 (its reads are eventually consistent)
                old[event.id] = StoredEvent.model_validate_json(self._get(f"EVENT#{event.id}", "EVENT")["data"]["S"])
            event = event.model_copy(update={"first_seen": old[event.id].first_seen})  # keep when it was first seen
            keys = _filter_keys(event)
            for key in keys:
                self._put(key)
            # the keys it had: those of its old claims, and those stored before the publication axis (first seen)
            before = _filter_keys(old[event.id]) + _filter_keys(old[event.id], published=old[event.id].first_seen)
            self._delete_filter_keys([k for k in before if k not in keys])
            new = event_contribution(event)
            put = {"Put": {"TableName": self.table, "Item": _event_item(event)}}
            # same chip (the id says so): what the event claims may have changed
            self._write_counted(put, Contribution(new.scope, difference(new, event_contribution(old[event.id]))))
        return added, len(removed)

    def get_event(self, event_id: str) -> StoredEvent | None:
        item = self._get(f"EVENT#{event_id}", "EVENT")
        return _event(item) if item else None

    def events_for_article(self, url: str) -> list[StoredEvent]:
        keys = self._query(
            IndexName="gsi3",
            KeyConditionExpression="gsi3pk = :pk",
            ExpressionAttributeValues=_values(pk=f"ARTICLE#{url_key(url)}"),
        )
        events = self._events_by_id([key["pk"]["S"].removeprefix("EVENT#") for key in keys])
        return sorted(events, key=lambda e: (timestamp(e.first_seen), e.id))

    def query_events(self, query: EventQuery, cursor: str | None = None) -> tuple[list[StoredEvent], str | None]:
        # bounds on the index sort key "<ts>#<id>": since is inclusive, until and the cursor exclusive
        seen_axis = by_seen(query)
        since, until = (query.seen_since, query.seen_until) if seen_axis else (query.since, query.until)
        low = timestamp(since) if since else None
        highs = [timestamp(until)] if until else []
        if query.seen_until and not seen_axis:  # published <= first_seen: nothing later can pass
            highs.append(timestamp(query.seen_until))
        if cursor:
            highs.append("#".join(decode_cursor(cursor, query)))
        high = min(highs) if highs else None
        if low and high and low >= high:  # an empty range (DynamoDB refuses a BETWEEN whose bounds are reversed)
            return [], None
        keyed = None if seen_axis else self._rarest(
            [(name, value) for name in _KEYED_FILTERS if (value := getattr(query, name)) and value != ANY_NVIDIA])
        # filters the partition read does not answer: pages of many, most of which may not pass
        residual = [*_RESIDUAL_FILTERS, "seen_since", "seen_until", *(("family",) if seen_axis else ())]
        filtered = any(getattr(query, name) is not None for name in residual if not keyed or name != keyed[0])
        page_size = max(query.limit + 1, _FILTERED_PAGE) if filtered else query.limit + 1
        if seen_axis:
            partitions = [(None, f"SEEN#{month}") for month in self._months("seen", low, high)]
        elif keyed is not None:  # the rarest keyed filter given: read its keys
            partitions = [(None, f"BY#{keyed[0]}#{keyed[1]}")]
        elif query.family is not None:
            partitions = [("gsi1", f"FAMILY#{query.family}")]
        else:
            partitions = [("gsi2", f"MONTH#{month}") for month in self._months("months", low, high)]
        examined = (
            event
            for index, partition in partitions
            for event in self._events_between(index, partition, low, high, page_size)
        )
        events: list[StoredEvent] = []
        for count, event in enumerate(examined, 1):
            if matches(event, query):
                events.append(event)
                if len(events) > query.limit:
                    return events[: query.limit], encode_cursor(events[query.limit - 1], query)
            if count >= MAX_EXAMINED:
                # a filter that few events pass: answer with what this read found, and a cursor
                # after the last event read, rather than reading the whole table in one request
                return events, encode_cursor(event, query)
        return events, None

    def _rarest(self, keyed: list[tuple[str, str]]) -> tuple[str, str] | None:
        """Of the keyed filters a query gives, the one fewest events match (the chip summaries say)."""
        if len(keyed) < 2:
            return keyed[0] if keyed else None
        matching: dict[tuple[str, str], int] = {}
        for chip in self.tallies(CHIP):
            model = chip.scope.rsplit("|", 1)[1]
            for name, value in keyed:
                n = chip.counts.get("events", 0) if name == "model" and model == value else \
                    chip.counts.get(f"{name}:{value}", 0)
                matching[name, value] = matching.get((name, value), 0) + n
        return min(keyed, key=lambda filter_: matching.get(filter_, 0))

    def _events_between(
        self, index: str | None, partition: str, low: str | None, high: str | None, page_size: int
    ) -> Iterator[StoredEvent]:
        """The events of one index partition (or, index None, a partition of filter keys in the table)
        with low <= sort key < high, newest first."""
        pk, sk = _INDEXES[index] if index else ("pk", "sk")
        condition, values = f"{pk} = :pk", _values(pk=partition)
        if low and high:
            # BETWEEN is inclusive: the event at `high` itself (the cursor's) is dropped below
            condition += f" AND {sk} BETWEEN :low AND :high"
            values |= _values(low=low, high=high)
        elif low:
            condition += f" AND {sk} >= :low"
            values |= _values(low=low)
        elif high:
            condition += f" AND {sk} < :high"
            values |= _values(high=high)
        items = self._query(
            **({"IndexName": index} if index else {}), KeyConditionExpression=condition,
            ExpressionAttributeValues=values, ScanIndexForward=False, Limit=page_size,
        )
        items = (item for item in items if high is None or item[sk]["S"] < high)
        if index:
            yield from map(_event, items)
            return
        while keys := list(itertools.islice(items, page_size)):  # filter keys: the events, a batch at a time
            yield from self._events_by_id([key["id"]["S"] for key in keys])

    def _events_by_id(self, ids: list[str]) -> list[StoredEvent]:
        """Events by id, in the order given (one that is gone is left out), 100 to a BatchGetItem."""
        found: dict[str, StoredEvent] = {}
        for start in range(0, len(ids), 100):
            wanted = {"Keys": [_item(pk=f"EVENT#{i}", sk="EVENT") for i in ids[start:start + 100]]}
            while wanted:
                response = self.client.batch_get_item(RequestItems={self.table: wanted})
                for item in response["Responses"].get(self.table, []):
                    event = _event(item)
                    found[event.id] = event
                wanted = response.get("UnprocessedKeys", {}).get(self.table)
        return [found[i] for i in ids if i in found]

    def _delete_filter_keys(self, keys: list[Item]) -> None:
        for key in keys:
            self.client.delete_item(TableName=self.table, Key={"pk": key["pk"], "sk": key["sk"]})

    def _months(self, kind: str, low: str | None, high: str | None) -> list[str]:
        """The months that have events (published in them: "months"; first seen: "seen"), newest first,
        within the bounds."""
        item = self._get("META", "MONTHS")
        months = item[kind]["SS"] if item and kind in item else []
        return sorted(
            (m for m in months if (low is None or m >= low[:7]) and (high is None or m <= high[:7])), reverse=True
        )

    def _record_months(self, events: Iterable[StoredEvent]) -> None:
        """Add the events' months to the META item before the events are written (so no query misses them)."""
        months = {("months", timestamp(e.published)[:7]) for e in events} | \
            {("seen", timestamp(e.first_seen)[:7]) for e in events}
        months -= self._known_months
        if months:
            self.client.update_item(
                TableName=self.table,
                Key=_item(pk="META", sk="MONTHS"),
                UpdateExpression="ADD " + ", ".join(f"{kind} :{kind}" for kind in sorted({k for k, _ in months})),
                ExpressionAttributeValues={f":{kind}": {"SS": sorted(m for k, m in months if k == kind)}
                                           for kind in {k for k, _ in months}},
            )
            self._known_months |= months

    def chip_claims(self, company: str, family: str, model: str | None, limit: int = 500) -> list[StoredEvent]:
        items = self._query(
            IndexName="gsi4", KeyConditionExpression="gsi4pk = :pk", ScanIndexForward=False, Limit=min(limit, 500),
            ExpressionAttributeValues=_values(pk=f"CHIP#{chip_key(company, family, model)}"),
        )
        return [_event(item) for item in itertools.islice(items, limit)]

    # the dependence signal ----------------------------------------------------------------------
    def put_article_stats(self, stats: ArticleStats) -> None:
        day, reported = stats.day.isoformat(), reported_families()
        key = _item(pk=f"STATS#{day[:7]}", sk=f"{day}#{url_key(stats.url)}")
        new = stats_contribution(stats, reported)
        for _ in range(_CONTENDED_TRIES):  # replaced: the difference only, if no other writer came between
            stored = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
            before = stats_contribution(ArticleStats.model_validate_json(stored["data"]["S"]), reported) \
                if stored else None
            if stats.counted:
                write = {"Put": {"TableName": self.table, "Item": key | _item(data=stats.model_dump_json()),
                                 **_unchanged_since(stored)}}
            elif stored:  # nothing left to count (reextract): the stats go
                write = {"Delete": {"TableName": self.table, "Key": key, **_unchanged_since(stored)}}
            else:
                return
            if self._write_counted(write, Contribution(new.scope, difference(new, before))):
                return
        raise StoreError(f"article stats of {stats.url}: kept changing under {_CONTENDED_TRIES} tries")

    def article_stats(self, since: date, until: date) -> Iterator[ArticleStats]:
        if since >= until:
            return
        low, high = since.isoformat(), (until - timedelta(days=1)).isoformat()
        month = date(since.year, since.month, 1)
        while month.isoformat()[:7] <= high[:7]:
            items = self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues=_values(pk=f"STATS#{month.isoformat()[:7]}", low=low, high=f"{high}$"),
            )
            for item in items:
                yield ArticleStats.model_validate_json(item["data"]["S"])
            month = (month + timedelta(days=32)).replace(day=1)

    # summaries (chalicelib.summaries): one item per chip and per day, `n|<name>` counts, `f|`/`l|` times -----
    def tallies(self, prefix: str, start: str | None = None, end: str | None = None) -> list[Tally]:
        kind = prefix.rstrip("|")
        condition, values = "pk = :pk", {"pk": f"TALLY#{kind}"}
        if start or end:  # BETWEEN is inclusive: the `end` scope itself is dropped below
            condition += " AND sk BETWEEN :low AND :high"
            values |= {"low": start or "", "high": end or "\uffff"}
        items = self._query(KeyConditionExpression=condition, ExpressionAttributeValues=_values(**values))
        tallies = [_tally(prefix, item) for item in items if end is None or item["sk"]["S"] < end]
        return [tally for tally in tallies if tally.counts]

    def rebuild_tallies(self) -> None:
        # a maintenance job (reextract), not a request path: it Scans the events and stats
        events, stats = [], []
        for page in self.client.get_paginator("scan").paginate(
            TableName=self.table, FilterExpression="begins_with(pk, :event) OR begins_with(pk, :stats)",
            ExpressionAttributeValues=_values(event="EVENT#", stats="STATS#"),
        ):
            for item in page["Items"]:
                if item["pk"]["S"].startswith("EVENT#"):
                    events.append(_event(item))
                    for key in _filter_keys(events[-1]):  # a table from before filter keys gets them here
                        self._put(key)
                else:
                    stats.append(ArticleStats.model_validate_json(item["data"]["S"]))
        rebuilt = {tally.scope: tally for tally in recount(events, stats, reported_families())}
        for tally in rebuilt.values():
            kind, rest = tally.scope.split("|", 1)
            self._put(_item(pk=f"TALLY#{kind}", sk=rest) | _tally_attributes(tally))
        for prefix in (CHIP, DAY):
            for item in self._query(KeyConditionExpression="pk = :pk",
                                    ExpressionAttributeValues=_values(pk=f"TALLY#{prefix.rstrip('|')}")):
                if prefix + item["sk"]["S"] not in rebuilt:
                    self.client.delete_item(TableName=self.table, Key=_item(pk=item["pk"]["S"], sk=item["sk"]["S"]))

    def _put_counted_event(self, event: StoredEvent) -> bool:
        """Put a new event and count it in its chip's tally, in one transaction: True if it was new. Its
        filter keys go first (idempotent puts), so an event is never stored without them."""
        for key in _filter_keys(event):
            self._put(key)
        put = {"Put": {"TableName": self.table, "Item": _event_item(event),
                       "ConditionExpression": "attribute_not_exists(pk)"}}
        contribution = event_contribution(event)
        written = self._write_counted(put, contribution, newest=True)
        if written is None:  # not the chip's newest event (workers out of order): count, then widen the times
            written = bool(self._write_counted(put, contribution))
            if written:
                self._widen_times(contribution)
        return bool(written)

    def _write_counted(self, write: Item, contribution: Contribution, newest: bool = False) -> bool | None:
        """`write` and the contribution's counts in one transaction. False: `write`'s condition failed (it was
        done before); None (`newest`): the tally holds a later time than the contribution's."""
        kind, rest = contribution.scope.split("|", 1)
        names, values, adds, sets = {}, {}, [], []
        for i, (name, n) in enumerate(contribution.counts.items()):
            names[f"#n{i}"], values[f":n{i}"] = f"n|{name}", {"N": str(n)}
            adds.append(f"#n{i} :n{i}")
        for i, name in enumerate(contribution.timed):
            names[f"#f{i}"], names[f"#l{i}"] = f"f|{name}", f"l|{name}"
            sets.append(f"#f{i} = if_not_exists(#f{i}, :at)")
            sets.append(f"#l{i} = :at" if newest else f"#l{i} = if_not_exists(#l{i}, :at)")
        update: Item = {"TableName": self.table, "Key": _item(pk=f"TALLY#{kind}", sk=rest),
                        "UpdateExpression": "ADD " + ", ".join(adds) + (" SET " + ", ".join(sets) if sets else "")}
        if contribution.at is not None:
            values[":at"] = {"S": timestamp(contribution.at)}
        if newest and contribution.timed:  # the chip's newest event so far: its time is the last
            update["ConditionExpression"] = "attribute_not_exists(#l0) OR #l0 <= :at"
        update["ExpressionAttributeNames"], update["ExpressionAttributeValues"] = names, values  # never empty
        try:
            self.client.transact_write_items(TransactItems=[write, {"Update": update}])
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if _error_code(exc) != "TransactionCanceledException" or "ConditionalCheckFailed" not in reasons:
                raise
            return False if reasons[0] == "ConditionalCheckFailed" else None
        return True

    def _widen_times(self, contribution: Contribution) -> None:
        """Move each timed name's first time back, or last time on, to the contribution's if it lies outside."""
        kind, rest = contribution.scope.split("|", 1)
        for name in contribution.timed:
            for attribute, comparison in ((f"f|{name}", ">"), (f"l|{name}", "<")):
                try:
                    self.client.update_item(
                        TableName=self.table, Key=_item(pk=f"TALLY#{kind}", sk=rest),
                        UpdateExpression="SET #t = :at", ConditionExpression=f"#t {comparison} :at",
                        ExpressionAttributeNames={"#t": attribute},
                        ExpressionAttributeValues={":at": {"S": timestamp(contribution.at)}},
                    )
                except ClientError as exc:
                    if _error_code(exc) != "ConditionalCheckFailedException":
                        raise

    # first sightings --------------------------------------------------------------------------
    def claim_sighting(self, sighting: Sighting, alert: Alert | None = None) -> bool:
        kind, rest = _sighting_key(sighting.key)
        # most chips and fabs are known: a read unit says so, where a refused conditional put of the
        # alert-sized item costs one to three write units (each five times the price); the put still decides
        if self._get(f"SIGHTING#{kind}", rest, ProjectionExpression="pk"):
            return False
        return self._put_new(_item(
            pk=f"SIGHTING#{kind}", sk=rest, event_id=sighting.event_id, first_seen=timestamp(sighting.first_seen),
            **_alert_attributes(alert),
        ))

    def pending_alerts(self, now: datetime, limit: int = 50) -> list[Alert]:
        items = self._query(
            IndexName="gsi1", KeyConditionExpression="gsi1pk = :pk AND gsi1sk <= :due",
            ExpressionAttributeValues=_values(pk="ALERT", due=f"{timestamp(now)}$"),
        )
        return [Alert.model_validate_json(item["alert"]["S"]) for item in itertools.islice(items, limit)]

    def lease_alert(self, key: SightingKey, now: datetime, until: datetime) -> Alert | None:
        kind, rest = _sighting_key(key)
        try:
            answer = self.client.update_item(
                TableName=self.table, Key=_item(pk=f"SIGHTING#{kind}", sk=rest),
                UpdateExpression="SET lease_until = :until",
                # pending (in gsi1), due ("<due ts>#<key>" sorts before "<now ts>$"), and not leased
                ConditionExpression=(
                    "attribute_exists(gsi1pk) AND gsi1sk < :due "
                    "AND (attribute_not_exists(lease_until) OR lease_until <= :now)"
                ),
                ExpressionAttributeValues=_values(
                    until=timestamp(until), now=timestamp(now), due=f"{timestamp(now)}$"),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return Alert.model_validate_json(answer["Attributes"]["alert"]["S"])

    def update_alert(self, alert: Alert) -> None:
        kind, rest = _sighting_key(alert.key)
        attributes = _alert_attributes(alert)
        removed = ["lease_until"] + [name for name in ("gsi1pk", "gsi1sk") if name not in attributes]
        self.client.update_item(
            TableName=self.table, Key=_item(pk=f"SIGHTING#{kind}", sk=rest),
            UpdateExpression=(
                "SET " + ", ".join(f"{name} = :{name}" for name in attributes) + " REMOVE " + ", ".join(removed)
            ),
            ExpressionAttributeValues=_values(**attributes),
        )

    def get_sighting(self, key: SightingKey) -> Sighting | None:
        kind, rest = _sighting_key(key)
        item = self._get(f"SIGHTING#{kind}", rest)
        return _sighting(kind, item) if item else None

    def list_sightings(self, kind: SightingKind) -> list[Sighting]:
        items = self._query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=_values(pk=f"SIGHTING#{kind}"))
        return [_sighting(kind, item) for item in items]

    # once-only jobs: items beside the sightings (SIGHTING#digest, SIGHTING#seed), without alerts ----
    def claim_marker(self, marker: Marker) -> bool:
        return self._put_new(_item(pk=f"SIGHTING#{marker.kind}", sk=marker.name, event_id=str(marker.kind),
                                   first_seen=timestamp(marker.done_at)))

    def get_marker(self, kind: MarkerKind, name: str) -> Marker | None:
        item = self._get(f"SIGHTING#{kind}", name)
        return Marker(kind=kind, name=name, done_at=datetime.fromisoformat(item["first_seen"]["S"])) if item else None

    # low-level helpers --------------------------------------------------------------------------
    def _get(self, pk: str, sk: str, **options: Any) -> Item | None:
        response = self.client.get_item(TableName=self.table, Key=_item(pk=pk, sk=sk), ConsistentRead=True, **options)
        return response.get("Item")

    def _put(self, item: Item) -> None:
        self.client.put_item(TableName=self.table, Item=item)

    def _put_new(self, item: Item) -> bool:
        """Put an item whose key is not stored yet: True if written, False if the key was taken."""
        try:
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _query(self, **request: Any) -> Iterator[Item]:
        """The items of a Query, page after page (LastEvaluatedKey), read lazily."""
        while True:
            page = self.client.query(TableName=self.table, **request)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# A write that reads before it writes (article stats) tries this often while other writers change the item.
_CONTENDED_TRIES = 8


def _unchanged_since(stored: Item | None) -> dict[str, Any]:
    """A condition that the item is as it was read (or still absent)."""
    if stored is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {"ConditionExpression": "#data = :data", "ExpressionAttributeNames": {"#data": "data"},
            "ExpressionAttributeValues": {":data": stored["data"]}}


def _tally(prefix: str, item: Item) -> Tally:
    tally = Tally(scope=prefix + item["sk"]["S"])
    for attribute, value in item.items():
        kind, _, name = attribute.partition("|")
        if kind == "n" and int(value["N"]):
            tally.counts[name] = int(value["N"])
        elif kind == "f":
            tally.first[name] = datetime.fromisoformat(value["S"])
        elif kind == "l":
            tally.last[name] = datetime.fromisoformat(value["S"])
    return tally


def _tally_attributes(tally: Tally) -> Item:
    attributes: Item = {f"n|{name}": {"N": str(n)} for name, n in tally.counts.items()}
    for name, at in tally.first.items():
        attributes[f"f|{name}"] = {"S": timestamp(at)}
        attributes[f"l|{name}"] = {"S": timestamp(tally.last[name])}
    return attributes


def _alert_attributes(alert: Alert | None) -> dict[str, str]:
    """The alert on its sighting item; while pending, also in gsi1 (ALERT, by due time)."""
    if alert is None:
        return {}
    attributes = {"alert": alert.model_dump_json()}
    if alert.status == "pending":
        attributes |= {"gsi1pk": "ALERT", "gsi1sk": f"{timestamp(alert.next_attempt)}#{alert.key}"}
    return attributes


def _sighting_key(key: SightingKey | str) -> tuple[str, str]:
    kind, _, rest = str(key).partition("|")
    return kind, rest or "-"


def _sighting(kind: str, item: Item) -> Sighting:
    rest = item["sk"]["S"]
    return Sighting(key=f"{kind}|{rest}" if rest != "-" else kind, event_id=item["event_id"]["S"],
                    first_seen=datetime.fromisoformat(item["first_seen"]["S"]))


def _filter_keys(event: StoredEvent, published: datetime | None = None) -> list[Item]:
    """The event's key items, one per value of a keyed filter, and its key on the stored-time axis: small
    (no data), found by Query, read back by id. (`published`: the time its keys had before, if other.)"""
    key = f"{timestamp(published or event.published)}#{event.id}"
    values = [("model", event.model), ("fab", event.fab), *(("nvidia", m) for m in sorted(set(event.nvidia_models)))]
    seen = timestamp(event.first_seen)
    return [*(_item(pk=f"BY#{name}#{value}", sk=key, id=event.id) for name, value in values if value),
            _item(pk=f"SEEN#{seen[:7]}", sk=f"{seen}#{event.id}", id=event.id)]


def _event_item(event: StoredEvent) -> Item:
    stamp, key = timestamp(event.published), f"{timestamp(event.published)}#{event.id}"
    claims = event.fab is not None or event.use is not None
    return _item(
        pk=f"EVENT#{event.id}", sk="EVENT", data=event.model_dump_json(),
        gsi1pk=f"FAMILY#{event.family}", gsi1sk=key,
        gsi2pk=f"MONTH#{stamp[:7]}", gsi2sk=key,
        gsi3pk=f"ARTICLE#{url_key(event.article.url)}", gsi3sk=f"EVENT#{event.id}",
        gsi4pk=f"CHIP#{chip_key(event.company, event.family, event.model)}" if claims else None,
        gsi4sk=f"{timestamp(event.first_seen)}#{event.id}" if claims else None,  # newest claims: by first seen
        # flat copies of the filterable fields, for FilterExpressions and for reading the table by hand
        company=event.company, family=event.family, model=event.model, fab=event.fab, use=event.use,
        lang=event.lang, nvidia=event.nvidia_models,
    )


def _event(item: Item) -> StoredEvent:
    return StoredEvent.model_validate_json(item["data"]["S"])


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + _CHUNK_BYTES] for i in range(0, len(blob), _CHUNK_BYTES)]


def _chunk_sk(n: int) -> str:
    return f"TEXT#{n:04d}"


def _item(**attributes: Any) -> Item:
    """Attributes in the client's typed form; None values are left out (DynamoDB has no use for them)."""
    return {name: _serializer.serialize(value) for name, value in attributes.items() if value is not None}


def _values(**values: Any) -> Item:
    """ExpressionAttributeValues: `_values(pk="FEED")` is {":pk": {"S": "FEED"}}."""
    return {f":{name}": typed for name, typed in _item(**values).items()}


def _error_code(exc: Exception) -> str | None:
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None

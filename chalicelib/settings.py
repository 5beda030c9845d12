"""Configuration: one pydantic settings model, read from the environment (CHIPTRACKER_*).

Deployed, the stage's `environment_variables` in .chalice/config.json set these; locally, the
shell does. app.py reads them when it is imported, so a bad value stops a function's cold start
(and `make package`) with a message naming the setting. AWS endpoints and credentials are boto3's
own (AWS_REGION, AWS_ENDPOINT_URL …), not settings here.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from chalicelib.errors import SettingsError

DEFAULT_DB = "sqlite:///.chiptracker/chiptracker.db"

# Control characters (C0 with tab and line ends, DEL, C1) and Unicode's line and paragraph separators:
# in a header-ish or host-ish value, a CR/LF splits a mail header or a request line, and would fail
# (or inject) only when the value is first used, far from its setting.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _mail_address(text: str) -> str:
    """`text` if it is one plain address, "desk@example.com" or "Chip desk <desk@example.com>"."""
    if _CONTROL.search(text):
        raise ValueError(f"{text!r} holds a control character (a line end?); give one address")
    from email.policy import default

    try:  # the parser of To and From headers: it notes what is wrong as defects
        header = default.header_factory("To", text)
        single = not header.defects and len(header.addresses) == 1
        plain = single and bool(header.addresses[0].username and header.addresses[0].domain)
    except Exception:  # it raises more than ValueError on odd input (IndexError on "desk@")
        plain = False
    if not plain:
        raise ValueError(f"{text!r} is not one mail address (desk@example.com or Chip desk <desk@example.com>)")
    return text


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHIPTRACKER_", extra="ignore")

    stage: str = "local"
    db: str = DEFAULT_DB  # sqlite:///… or dynamodb://TABLE?region=…; the one default of every command, demo too
    queue: str = Field(default="chiptracker-feed-jobs", pattern=r"^[A-Za-z0-9_-]{1,80}$")  # the feed jobs' SQS queue
    feeds: str | None = None  # a feed list file; None: the bundled list
    seed_catalog: bool = True  # a new store starts knowing the catalog's chips and fabs (no alerts for them)
    # fetch from loopback (127.0.0.0/8, ::1): the offline demo and tests only, never in Lambda
    allow_loopback_fetch: bool = False
    # Google News's decoding endpoint, for news-search links whose id does not hold the URL
    google_news_url: str = Field(default="https://news.google.com", pattern=r"^https?://[^\s/?#]+/?$")

    # Slack: a webhook URL (locally), or the SSM parameter that holds it (deployed)
    slack_webhook_url: str | None = None
    slack_webhook_param: str | None = None
    alerts_file: str = ".chiptracker/alerts.jsonl"  # locally, without a webhook, alerts are written here

    # the daily digest
    digest_to: Annotated[list[str], NoDecode] = []
    digest_from: str | None = None
    digest_hour: int = Field(default=7, ge=0, le=23)  # sent once this hour has passed in digest_tz …
    digest_tz: str = "UTC"  # … for the day before
    digest_empty: Literal["send", "skip"] = "send"
    mail: Literal["auto", "ses", "smtp"] = "auto"  # auto: SMTP when smtp_host is set, else SES
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    ses_region: str | None = None

    @field_validator("digest_to", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """CHIPTRACKER_DIGEST_TO=a@x.com,b@y.com, or a JSON list (for a display name with a comma)."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)  # NoDecode: pydantic-settings leaves the JSON to us; bad JSON is a ValueError
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("digest_to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [_mail_address(address) for address in value]

    @field_validator("digest_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return _mail_address(value) if value else None

    @field_validator("stage", "smtp_host", "smtp_user", "ses_region", "slack_webhook_param", "slack_webhook_url")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            # the value is not echoed: it may be a webhook URL, a secret
            raise ValueError("holds a control character (a line end?)")
        return value

    @field_validator("db")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "dynamodb://")):
            raise ValueError(f"{value!r} is not a store URL (sqlite:///file.db or dynamodb://TABLE)")
        return value or DEFAULT_DB

    @property
    def in_lambda(self) -> bool:
        """Running as a deployed function (Lambda sets AWS_LAMBDA_FUNCTION_NAME)."""
        return _in_lambda()

    @field_validator("allow_loopback_fetch")
    @classmethod
    def _not_in_lambda(cls, value: bool) -> bool:
        if value and _in_lambda():
            raise ValueError("must not be set in a deployed function (it opens fetches to internal addresses)")
        return value

    @field_validator("digest_tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value


def _in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


@cache
def settings() -> Settings:
    """The settings, read once per process."""
    try:
        return Settings()
    except _SourceError as exc:
        raise SettingsError(f"bad configuration: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"CHIPTRACKER_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"bad configuration: {problems}") from None

"""Configuration: one pydantic settings model, read from the environment (CHIPTRACKER_*).

Deployed, the stage's `environment_variables` in .chalice/config.json set these; locally, the
shell does. A bad value fails at start-up with a message naming the setting.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError


class SettingsError(ValueError):
    """A configuration value is missing or invalid."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHIPTRACKER_", extra="ignore")

    stage: str = "local"
    db: str | None = None  # sqlite:///… or dynamodb://TABLE?region=…; None: the local default
    queue: str = "chiptracker-feed-jobs"
    feeds: str | None = None  # a feed list file; None: the bundled list
    seed_catalog: bool = True  # a new store starts knowing the catalog's chips and fabs (no alerts for them)

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
        """CHIPTRACKER_DIGEST_TO=a@x.com,b@y.com (or a JSON list)."""
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
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

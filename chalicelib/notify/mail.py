"""Sending mail: SES (boto3) when deployed, or SMTP when configured."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from chalicelib.errors import SettingsError
from chalicelib.settings import Settings


def send_mail(mail: EmailMessage, config: Settings) -> None:
    """Send through SMTP if CHIPTRACKER_SMTP_HOST is set (or CHIPTRACKER_MAIL=smtp), else SES."""
    mode = config.mail if config.mail != "auto" else ("smtp" if config.smtp_host else "ses")
    if mode == "smtp":
        if not config.smtp_host:
            raise SettingsError("CHIPTRACKER_MAIL=smtp needs CHIPTRACKER_SMTP_HOST")
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=30) as smtp:
            if config.smtp_starttls:
                smtp.starttls()
            if config.smtp_user:
                smtp.login(config.smtp_user, config.smtp_password or "")
            smtp.send_message(mail)
        return
    import boto3

    ses = boto3.client("ses", region_name=config.ses_region)
    ses.send_raw_email(
        Source=mail["From"],
        Destinations=[address.strip() for address in mail["To"].split(",")],
        RawMessage={"Data": mail.as_bytes()},
    )

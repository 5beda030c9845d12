"""Notifications: Slack alerts for first sightings (slack.py) and the daily email digest
(digest.py renders it, mail.py sends it)."""

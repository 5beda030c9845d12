"""Chalice wiring only: routes and schedules call functions in chalicelib."""

from chalice import Chalice

from chalicelib import __version__

app = Chalice(app_name="chiptracker")


@app.route("/health")
def health() -> dict:
    return {"status": "ok", "version": __version__}

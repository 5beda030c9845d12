"""Chalice wiring only: the API's routes, the schedules and the queue handler call chalicelib.

The API path imports neither the NLP stack nor trafilatura: those are imported inside the ingest
handlers, which run in their own Lambda functions. Deployed, every route but /health and
/openapi.json needs an API key; `chalice local` and `python -m chalicelib serve` do not check keys.
"""

from chalice import Chalice, Rate

from chalicelib.api import routes
from chalicelib.settings import settings
from chalicelib.store import LazyStore

# Read and checked at import: a bad setting stops the cold start (and `make package`) with its name.
SETTINGS = settings()
# The process's one store, shared by the routes and the handlers, opened when first needed.
STORE = LazyStore(SETTINGS.db)

app = Chalice(app_name="chiptracker")
routes.mount(app, STORE)


@app.schedule(Rate(1, unit=Rate.HOURS))
def plan_feed_jobs(event) -> dict:
    """Hourly: the due feeds in SQS jobs of 25, plus the retry job."""
    from chalicelib.lambdas import plan_feed_jobs as plan

    return plan(SETTINGS, STORE())


@app.on_sqs_message(queue=SETTINGS.queue, batch_size=1)
def run_feed_jobs(event) -> None:
    """One job per invocation: its feeds side by side (or the retry job); a job that raises returns its
    message to the queue, a feed that fails does not."""
    from chalicelib.lambdas import run_feed_jobs as run

    run((record.body for record in event), SETTINGS, STORE())


@app.schedule(Rate(1, unit=Rate.HOURS))
def send_daily_digest(event) -> str:
    """Hourly check; the digest goes out once a day, after the configured hour in the configured zone."""
    from chalicelib.lambdas import send_daily_digest as send

    return send(SETTINGS, STORE())

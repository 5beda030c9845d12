"""Logs and metrics of the deployed functions, with aws-lambda-powertools.

In Lambda every log line of `chalicelib.*` is one JSON object carrying a correlation id: the API
request's (the caller's X-Correlation-Id, else API Gateway's request id) or the feed job's (set by
the planner, carried in the SQS message). Metrics go out in CloudWatch's embedded metric format:
a JSON line in the log that CloudWatch turns into metrics, so no PutMetricData call and no extra
IAM permission. The JSON logs are on in Lambda and wherever the stage's configuration is in effect
(POWERTOOLS_SERVICE_NAME set); elsewhere (CLI, tests, `serve`) logging stays as the caller set it.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

__all__ = ["MetricUnit", "correlated", "metrics", "observe_request", "request_correlation_id"]

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "chiptracker")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "chiptracker")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

log = logging.getLogger(__name__)

# anything else in the header is replaced, not logged; matched whole (fullmatch), as "$" would let a
# trailing newline through
_CALLER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "POWERTOOLS_SERVICE_NAME" in os.environ:
    # the library logs through powertools' JSON handler, so its lines carry the same keys
    _library = logging.getLogger("chalicelib")
    _library.handlers = [logger.registered_handler]
    _library.setLevel(logger.log_level)
    _library.propagate = False


@contextmanager
def correlated(correlation_id: str, **keys: Any) -> Iterator[None]:
    """Every log line inside carries this correlation id and these keys."""
    logger.set_correlation_id(correlation_id)
    logger.append_keys(**keys)
    try:
        yield
    finally:
        logger.remove_keys(["correlation_id", *keys])


def request_correlation_id(header: str | None, request_id: str | None) -> str:
    """The caller's X-Correlation-Id when it is a plain token, else API Gateway's request id."""
    if header and _CALLER_ID.fullmatch(header):
        return header
    return request_id or uuid.uuid4().hex


def observe_request(request: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice HTTP middleware: one log line per request, the correlation id echoed in the response."""
    context = request.context or {}
    correlation_id = request_correlation_id(request.headers.get("x-correlation-id"), context.get("requestId"))
    with correlated(correlation_id):
        started = time.perf_counter()
        response = get_response(request)
        response.headers["X-Correlation-Id"] = correlation_id
        log.info("request", extra={
            "method": request.method,
            "path": context.get("resourcePath"),
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        })
    return response

"""The hand-written IAM policies (.chalice/policy-*.json) grant what the code calls, and nothing else.

The AWS calls are found in the source: every `client("service")` names a service, and every call
of one of that service's operations (`.put_item(`, `get_paginator("scan")`, `get_waiter(…)`) is an
operation the code makes. A new boto3 call without a policy line fails here, and so does a policy
line no code needs. The packaged smoke test (test_deploy.py) checks the same policies against the
calls each function really makes.
"""

from __future__ import annotations

import ast
import json
import re
from fnmatch import fnmatchcase
from functools import cache

import botocore.session
import pytest
from botocore import xform_name

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

STAGES = ("dev", "prod")

# Operations whose IAM action has another name (SQS authorises a batch as its single action; DynamoDB
# authorises a transaction item by item: the summaries' transactions put, update and delete items, and
# UpdateItem stands for them here: PutItem and DeleteItem are granted and called on their own too).
ACTION_OF = {"sqs:SendMessageBatch": "sqs:SendMessage", "dynamodb:TransactWriteItems": "dynamodb:UpdateItem"}

# Calls the Lambda functions never make: the operator's tools, run with the operator's own credentials.
OPERATOR_ONLY = {
    "dynamodb:CreateTable": "open_store('dynamodb://…?create=1'): local stores and tests",
    "dynamodb:Scan": "iter_articles, for `python -m chalicelib reextract` after a catalog update",
}

# What AWS itself needs from a role, beyond the code's calls.
SERVICE_NEEDS = {
    "logs:CreateLogStream", "logs:PutLogEvents",  # the function's own log group (made by the template)
}
SQS_EVENT_SOURCE = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}  # Lambda polling the queue

# The API only reads.
READ_ONLY = {"dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}


@cache
def code_calls() -> frozenset[str]:
    """service:Operation for every AWS call in chalicelib/.

    A call is an AWS call when its receiver is a client of a service: `boto3.client("ssm").get_parameter`,
    a name that says the service (`ses.send_raw_email`, `_sqs().get_queue_url`), or the module's one
    client (`self.client.put_item` in the DynamoDB adapter). Other calls of the same name (jinja's
    `get_template`) are not."""
    session = botocore.session.get_session()
    found: set[str] = set()
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        calls = [node for node in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(node, ast.Call)]
        created = {_first_string(c) for c in calls if _method(c) == "client"} - {None}
        for call in calls:
            if (name := _method(call)) is None or name == "client":
                continue
            receiver = ast.unparse(call.func.value)
            if isinstance(call.func.value, ast.Call) and _method(call.func.value) == "client":
                services = {_first_string(call.func.value)}
            elif named := set(_SERVICES) & set(re.split(r"[^a-z0-9]+", receiver.lower())):
                services = named
            elif receiver.endswith("client") and len(created) == 1:
                services = created
            else:
                continue
            for service in services:
                found |= _operations(session, service, name, _first_string(call))
    return frozenset(found)


_SERVICES = ("dynamodb", "sqs", "ses", "ssm", "sns", "s3", "secretsmanager", "cloudwatch", "logs", "kms")


def _method(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _first_string(call: ast.Call) -> str | None:
    arg = call.args[0] if call.args else None
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def _operations(session, service: str, method: str, argument: str | None) -> set[str]:
    """The operation a client method call makes (paginators and waiters name theirs)."""
    model = session.get_service_model(service)
    by_method = {xform_name(op): op for op in model.operation_names}
    if method == "get_paginator":
        return {f"{service}:{by_method[argument]}"}
    if method == "get_waiter":
        waiters = session.get_waiter_model(service)
        (waiter,) = [w for w in waiters.waiter_names if xform_name(w) == argument]
        return {f"{service}:{waiters.get_waiter(waiter).operation}"}
    if method in by_method:
        return {f"{service}:{by_method[method]}"}
    if method in {"close", "get_paginator", "get_waiter", "can_paginate", "exceptions", "meta"}:
        return set()
    raise AssertionError(f"{service} client has no method {method!r}")


def granted(policy: dict) -> set[str]:
    actions = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


def policy(name: str) -> dict:
    return json.loads((ROOT / ".chalice" / name).read_text())


def stage_env(stage: str) -> dict[str, str]:
    return json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage]["environment_variables"]


def test_the_scan_finds_the_calls_it_must():
    calls = code_calls()
    assert {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:DescribeTable", "dynamodb:Scan", "sqs:SendMessageBatch",
            "sqs:GetQueueUrl", "ssm:GetParameter", "ses:SendRawEmail"} <= calls


@pytest.mark.parametrize("stage", STAGES)
def test_ingest_policy_grants_every_call_and_nothing_else(stage):
    needed = {ACTION_OF.get(call, call) for call in code_calls() if call not in OPERATOR_ONLY}
    expected = needed | SERVICE_NEEDS | SQS_EVENT_SOURCE
    actions = granted(policy(f"policy-{stage}.json"))
    assert not expected - actions, f"calls the policy does not grant: {sorted(expected - actions)}"
    assert not actions - expected, f"granted but never called: {sorted(actions - expected)}"


@pytest.mark.parametrize("stage", STAGES)
def test_api_policy_only_reads_the_store(stage):
    assert granted(policy(f"policy-api-{stage}.json")) == READ_ONLY | SERVICE_NEEDS
    assert code_calls() >= READ_ONLY


@pytest.mark.parametrize("stage", STAGES)
def test_policies_name_only_the_stages_own_resources(stage):
    env = stage_env(stage)
    table = env["CHIPTRACKER_DB"].removeprefix("dynamodb://")
    own = [
        f"arn:aws:dynamodb:*:*:table/{table}", f"arn:aws:dynamodb:*:*:table/{table}/index/*",
        f"arn:aws:sqs:*:*:{env['CHIPTRACKER_QUEUE']}",
        f"arn:aws:ssm:*:*:parameter{env['CHIPTRACKER_SLACK_WEBHOOK_PARAM']}",
        f"arn:aws:logs:*:*:log-group:/aws/lambda/chiptracker-{stage}-*:*",
    ]
    for name in (f"policy-{stage}.json", f"policy-api-{stage}.json"):
        for statement in policy(name)["Statement"]:
            actions = statement["Action"]
            assert "*" not in "".join(a.split(":")[1] for a in actions), f"{name}: wildcard action"
            listed = statement["Resource"]
            for resource in [listed] if isinstance(listed, str) else listed:
                if resource == "arn:aws:ses:*:*:identity/*":
                    # SES checks the sending identity; the condition pins it to the stage's sender
                    sender = env["CHIPTRACKER_DIGEST_FROM"]
                    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": sender}}
                    continue
                assert any(fnmatchcase(resource, pattern) for pattern in own), f"{name}: {resource} is not ours"

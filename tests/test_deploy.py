"""What ships to AWS, checked without an AWS account.

`make package` builds each stage (Chalice's template merged with deploy/template.py, and the
deployment zip) and runs cfn-lint on it. Then: the package fits Lambda's 250 MiB; the template
holds the table, queues, schedules, API key, alarms and the hand-written policies; and a smoke test
runs the packaged handlers, imported from the unzipped package alone, against moto_server with
the packaged configuration: a schedule event queues jobs, an SQS message runs a feed job into
DynamoDB (and posts the alert), an API event answers JSON, the digest goes out through SES.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path

import boto3
import pytest

from chalicelib.store.dynamodb import TTL_ATTRIBUTE, table_definition
from deploy.template import pinned
from tests.conftest import ROOT
from tests.localsite import LocalSite, rss
from tests.test_alerts import WebhookSink
from tests.test_pipeline import ARTICLES
from tests.test_policy import ACTION_OF

pytestmark = pytest.mark.e2e

LIMIT = 250 * 1024 * 1024  # Lambda's, unzipped
BUDGET = 150 * 1024 * 1024  # ours: room for the next dependency (issue 15)
VENV = Path(sys.executable).parents[1]
# what the Lambda Python runtime provides besides the standard library
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py")


def make_package(stage: str, build: Path) -> Path:
    done = subprocess.run(["make", "package", f"STAGE={stage}", f"BUILD={build}", f"VENV={VENV}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=os.environ | {"AWS_DEFAULT_REGION": "us-east-1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # chalice package or cfn-lint failed
    return build / stage


@pytest.fixture(scope="session")
def prod(tmp_path_factory) -> Path:
    return make_package("prod", tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="session")
def template(prod: Path) -> dict:
    return json.loads((prod / "sam.json").read_text())


def resources_of(template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


# the package ------------------------------------------------------------------------------------

def test_package_fits_lambda(prod: Path):
    zips = list(prod.glob("*.zip"))
    unzipped = sum(info.file_size for z in zips for info in zipfile.ZipFile(z).infolist())
    zipped = sum(z.stat().st_size for z in zips)
    names = {info.filename.split("/")[0] for z in zips for info in zipfile.ZipFile(z).infolist()}
    print(f"\npackage: {unzipped / 2**20:.1f} MiB unzipped, {zipped / 2**20:.1f} MiB zipped, {len(zips)} zip(s)")
    assert unzipped < LIMIT, f"{unzipped / 2**20:.1f} MiB unzipped is over Lambda's 250 MiB"
    assert unzipped <= BUDGET, f"{unzipped / 2**20:.1f} MiB unzipped is over our 150 MiB"
    assert {"chalicelib", "app.py", "jieba", "fugashi", "ipadic", "trafilatura", "aws_lambda_powertools"} <= names
    assert "unidic_lite" not in names and "boto3" not in names  # boto3 comes with the Lambda runtime
    files = [info.filename for z in zips for info in zipfile.ZipFile(z).infolist()]
    # deploy/trim.py took out what nothing runs; jieba's dictionary and its segmenter's tables stay
    assert not [f for f in files if f.startswith(("jieba/lac_small/", "jieba/analyse/", "jieba/posseg/"))]
    assert {"jieba/dict.txt", "jieba/finalseg/prob_emit.py", "ipadic/dicdir/sys.dic"} <= set(files)


def test_dev_stage_packages_and_lints(tmp_path: Path):
    template = json.loads((make_package("dev", tmp_path) / "sam.json").read_text())
    assert template["Resources"]["EventTable"]["Properties"]["TableName"] == "chiptracker-dev"


# the template -----------------------------------------------------------------------------------

def test_table_is_the_stores_with_recovery_and_ttl(template: dict):
    table = template["Resources"]["EventTable"]
    properties = table["Properties"]
    definition = table_definition("chiptracker-prod")
    for key in ("TableName", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes"):
        assert properties[key] == definition[key]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["DeletionPolicy"] == "Retain"


def test_job_queue_outlasts_the_worker_and_has_a_dead_letter_queue(template: dict):
    queue = template["Resources"]["FeedJobQueue"]["Properties"]
    worker = template["Resources"]["RunFeedJobs"]["Properties"]
    assert queue["QueueName"] == "chiptracker-prod-feed-jobs"
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["FeedJobDeadLetterQueue", "Arn"]}
    (source,) = worker["Events"].values()
    assert source["Type"] == "SQS" and source["Properties"]["BatchSize"] == 1
    assert source["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 50}
    assert source["Properties"]["Queue"]["Fn::Sub"].endswith(":chiptracker-prod-feed-jobs")


def test_functions_schedules_and_sizes(template: dict):
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]
    functions = resources_of(template, "AWS::Serverless::Function")
    by_handler = {f["Properties"]["Handler"]: f["Properties"] for f in functions.values()}
    assert by_handler.keys() == {"app.app", "app.plan_feed_jobs", "app.run_feed_jobs", "app.send_daily_digest"}
    for handler, properties in by_handler.items():
        name = "api_handler" if handler == "app.app" else handler.removeprefix("app.")
        sized = config["lambda_functions"][name]
        assert properties["MemorySize"] == sized["lambda_memory_size"]
        assert properties["Timeout"] == sized["lambda_timeout"]
        assert properties["Environment"]["Variables"] == config["environment_variables"]
    schedules = {h: [e["Properties"]["Schedule"] for e in p.get("Events", {}).values() if e["Type"] == "Schedule"]
                 for h, p in by_handler.items()}
    assert schedules["app.plan_feed_jobs"] == schedules["app.send_daily_digest"] == ["rate(1 hour)"]


def test_api_needs_a_key_from_a_usage_plan(template: dict):
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    open_routes = {"/health", "/openapi.json"}
    for path, methods in body["paths"].items():
        for method, operation in methods.items():
            if method == "options":
                continue  # CORS preflight carries no key
            keyed = {"api_key": []} in operation.get("security", [])
            assert keyed == (path not in open_routes), f"{method.upper()} {path}"
    resources = template["Resources"]
    assert resources["UsagePlan"]["Properties"]["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"},
                                                                 "Stage": {"Ref": "RestAPI.Stage"}}]
    assert resources["UsagePlanKey"]["Properties"]["KeyId"] == {"Ref": "ApiKey"}


def test_alarms_watch_the_dead_letter_queue_and_failing_feeds(template: dict):
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert {"DeadLetterAlarm", "AllFeedsFailingAlarm", "PlannerErrorAlarm"} <= alarms.keys()
    failing = alarms["AllFeedsFailingAlarm"]["Properties"]["Metrics"]
    watched = {m["MetricStat"]["Metric"]["MetricName"] for m in failing if "MetricStat" in m}
    assert watched == {"FeedsOk", "FeedsFailed"}
    for m in failing:
        if "MetricStat" in m:
            assert m["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "service", "Value": "chiptracker-prod"}]


def test_roles_carry_the_hand_written_policies_and_no_secret_is_in_the_template(template: dict, prod: Path):
    roles = resources_of(template, "AWS::IAM::Role")
    expected = {"ApiHandlerRole": "policy-api-prod.json", "PlanFeedJobsRole": "policy-prod.json",
                "RunFeedJobsRole": "policy-prod.json", "SendDailyDigestRole": "policy-prod.json"}
    assert roles.keys() == expected.keys()
    for role, file in expected.items():
        (policy,) = roles[role]["Properties"]["Policies"]
        assert policy["PolicyDocument"] == pinned(json.loads((ROOT / ".chalice" / file).read_text()))
        assert "ManagedPolicyArns" not in roles[role]["Properties"]
        for statement in policy["PolicyDocument"]["Statement"]:  # every ARN in this account and region
            for resource in statement["Resource"]:
                assert "${AWS::AccountId}" in resource["Fn::Sub"] and ":*:*:" not in resource["Fn::Sub"]
    text = (prod / "sam.json").read_text()
    assert "hooks.slack.com" not in text and "SLACK_WEBHOOK_URL" not in text


# the smoke test ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def lambda_root(prod: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The unzipped package, and a folder with only what the Lambda runtime adds (boto3 & co)."""
    package = tmp_path_factory.mktemp("package")
    zipfile.ZipFile(prod / "deployment.zip").extractall(package)
    runtime = tmp_path_factory.mktemp("runtime")
    site = Path(boto3.__file__).parents[1]
    for name in RUNTIME_MODULES:
        (runtime / name).symlink_to(site / name)
    return package, runtime


def invoke(lambda_root: tuple[Path, Path], handler: str, events: list[dict], env: dict[str, str],
           tmp_path: Path) -> tuple[dict, list[dict]]:
    """Run `events` through the packaged handler in a fresh process; (its RESULT, its JSON log lines)."""
    package, runtime = lambda_root
    events_file = tmp_path / f"{handler}.json"
    events_file.write_text(json.dumps(events))
    done = subprocess.run([sys.executable, "-S", str(ROOT / "tests" / "lambda_runtime.py"), str(package),
                           str(runtime), handler, str(events_file)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert lines and lines[-1].startswith("RESULT "), done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    logs = []
    for line in lines[:-1]:
        with contextlib.suppress(ValueError):  # JSON log lines only
            logs.append(json.loads(line))
    for name, file in result["modules"].items():  # imported from the package, as in Lambda
        assert file and file.startswith(str(package if name != "boto3" else runtime)), (name, file)
    return result, logs


def not_granted(template: dict, role: str, calls: list[str]) -> list[str]:
    """The calls that the role's policy does not grant (by action)."""
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    actions = [a for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]]
    return [c for c in calls if not any(fnmatchcase(ACTION_OF.get(c, c), a) for a in actions)]


def metric_total(logs: list[dict], name: str) -> float:
    """A metric summed over the embedded-metric-format lines of a log."""
    total = 0.0
    for line in logs:
        if "_aws" in line and name in line:
            total += sum(line[name]) if isinstance(line[name], list) else line[name]
    return total


def scheduled_event() -> dict:
    return {"version": "0", "id": "smoke", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-26T13:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/smoke"], "detail": {}}


def sqs_event(message: dict) -> dict:
    """The event Lambda's queue poller delivers for one message (batch size 1)."""
    return {"Records": [{"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                         "body": message["Body"], "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:chiptracker-prod-feed-jobs",
                         "awsRegion": "us-east-1"}]}


def api_event(path: str, query: dict[str, str], correlation_id: str) -> dict:
    return {
        "resource": path, "path": path, "httpMethod": "GET",
        "headers": {"Host": "abc.execute-api.us-east-1.amazonaws.com", "X-Api-Key": "checked-by-api-gateway",
                    "X-Correlation-Id": correlation_id},
        "multiValueHeaders": None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": f"/api{path}", "stage": "api",
                           "requestId": "api-gateway-request-id", "identity": {"sourceIp": "192.0.2.1"}},
    }


def create_from_template(template: dict, endpoint: str) -> str:
    """The stage's table and queues on moto_server, made from the template's own properties."""
    resources = template["Resources"]
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    table = resources["EventTable"]["Properties"]
    dynamodb.create_table(**{k: table[k] for k in ("TableName", "AttributeDefinitions", "KeySchema",
                                                    "GlobalSecondaryIndexes", "BillingMode")})
    dynamodb.update_time_to_live(TableName=table["TableName"], TimeToLiveSpecification=table["TimeToLiveSpecification"])
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    dead = resources["FeedJobDeadLetterQueue"]["Properties"]
    dead_url = sqs.create_queue(QueueName=dead["QueueName"])["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = resources["FeedJobQueue"]["Properties"]
    redrive = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": str(queue["RedrivePolicy"]["maxReceiveCount"])}
    return sqs.create_queue(QueueName=queue["QueueName"], Attributes={
        "VisibilityTimeout": str(queue["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]


def test_packaged_handlers_run_against_moto_server(template, lambda_root, moto_server, tmp_path):
    resources = template["Resources"]
    variables = resources["RunFeedJobs"]["Properties"]["Environment"]["Variables"]
    queue_url = create_from_template(template, moto_server)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    ssm = boto3.client("ssm", endpoint_url=moto_server, region_name="us-east-1")
    ses = boto3.client("ses", endpoint_url=moto_server, region_name="us-east-1")
    ses.verify_email_identity(EmailAddress=variables["CHIPTRACKER_DIGEST_FROM"])

    with LocalSite() as site, WebhookSink() as slack:
        for path, body in ARTICLES.items():
            site.route(path, body=body)
        site.route("/feed.xml", body=rss([("Ascend", site.url("/news/ascend")), ("Kunlun", site.url("/news/kunlun"))]),
                   headers={"Content-Type": "application/rss+xml"})
        (tmp_path / "feeds.txt").write_text(site.url("/feed.xml") + "\n")
        ssm.put_parameter(Name=variables["CHIPTRACKER_SLACK_WEBHOOK_PARAM"], Value=slack.url, Type="SecureString")
        # the packaged configuration, and only what a local run must change: endpoints, credentials,
        # the feed list, and (for the worker) the opt-in to fetch from 127.0.0.1
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path), **variables,
               "AWS_ENDPOINT_URL": moto_server, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
               "CHIPTRACKER_FEEDS": str(tmp_path / "feeds.txt")}

        # a schedule event: the planner queues one job for the feed and the retry job
        planned, plan_logs = invoke(lambda_root, "app.plan_feed_jobs", [scheduled_event()], env, tmp_path)
        (outcome,) = planned["results"]
        assert outcome["ok"]["jobs"] == 2, outcome
        assert not not_granted(template, "PlanFeedJobsRole", planned["calls"])
        assert any(line.get("message") == "planned" and line.get("correlation_id") == outcome["ok"]["cycle"]
                   for line in plan_logs)
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        assert len(messages) == 2

        # SQS messages: the worker runs each job into DynamoDB and posts the first sighting to Slack
        worked, work_logs = invoke(lambda_root, "app.run_feed_jobs", [sqs_event(m) for m in messages],
                                   env | {"CHIPTRACKER_ALLOW_LOOPBACK_FETCH": "1"}, tmp_path)
        assert all("ok" in r for r in worked["results"]), worked["results"]
        assert not not_granted(template, "RunFeedJobsRole", worked["calls"])
        job_ids = {json.loads(m["Body"])["id"] for m in messages}
        done = [line for line in work_logs if line.get("message") == "job done"]
        assert {line["correlation_id"] for line in done} == job_ids
        # a line per feed (and one for the retry job), with its job's correlation id
        feed_lines = {line["feed"]: line for line in work_logs if line.get("message") == "feed done"}
        assert feed_lines.keys() == {site.url("/feed.xml"), "(retries)"}
        assert feed_lines[site.url("/feed.xml")]["status"] == "ok"
        assert {line["correlation_id"] for line in feed_lines.values()} == job_ids
        assert metric_total(work_logs, "FeedsOk") == 1 and metric_total(work_logs, "FeedsFailed") == 0
        assert metric_total(work_logs, "NewEvents") == 2
        assert sum(line["sent"] for line in work_logs if line.get("message") == "alerts delivered") == 1
        assert len(slack.accepted) == 1 and "Ascend 910C" in slack.headlines()[0]

        # a job the worker cannot run fails its invocation, is received again, and after the
        # template's three receives waits in the dead-letter queue: nothing is lost
        sqs.send_message(QueueUrl=queue_url, MessageBody='{"kind": "mystery"}')
        for _ in range(3):
            (bad,) = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0, WaitTimeSeconds=1)["Messages"]
        failed, fail_logs = invoke(lambda_root, "app.run_feed_jobs", [sqs_event(bad)], env, tmp_path)
        assert "not a job" in failed["results"][0]["error"]
        assert metric_total(fail_logs, "JobErrors") == 1
        assert not sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages")
        dead_url = sqs.get_queue_url(QueueName=resources["FeedJobDeadLetterQueue"]["Properties"]["QueueName"])
        (dead,) = sqs.receive_message(QueueUrl=dead_url["QueueUrl"], WaitTimeSeconds=1)["Messages"]
        assert dead["Body"] == '{"kind": "mystery"}'

        # an API event: JSON from the table the worker filled, with the caller's correlation id
        answered, api_logs = invoke(lambda_root, "app.app", [api_event("/events", {"family": "ascend"}, "smoke-1")],
                                    env, tmp_path)
        (response,) = answered["results"]
        assert response["ok"]["statusCode"] == 200, response
        assert response["ok"]["headers"]["X-Correlation-Id"] == "smoke-1"
        events = json.loads(response["ok"]["body"])["events"]
        assert {(e["family"], e["model"], e["fab"]) for e in events} >= {("ascend", "910C", "domestic")}
        assert not not_granted(template, "ApiHandlerRole", answered["calls"])
        assert not {"trafilatura", "jieba", "fugashi"} & answered["modules"].keys()
        assert any(line.get("message") == "request" and line.get("correlation_id") == "smoke-1" for line in api_logs)

        # the daily digest, through SES
        digested, _ = invoke(lambda_root, "app.send_daily_digest", [scheduled_event()], env, tmp_path)
        (sent,) = digested["results"]
        assert sent["ok"].startswith("sent the digest"), sent
        assert not not_granted(template, "SendDailyDigestRole", digested["calls"])
        assert "ses:SendRawEmail" in digested["calls"]


def test_packaged_api_cold_import(template, lambda_root, tmp_path):
    """`import app` from the package alone, in fresh interpreters, as the API function's cold start
    does: printed (median of 5) and kept well under API Gateway's patience."""
    package, runtime = lambda_root
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (pytest's)
    code = ("import sys, time; sys.path[:0] = sys.argv[1:3]; started = time.perf_counter(); import app; "
            "seconds = time.perf_counter() - started; "
            "hwm = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')); "
            "print(seconds, hwm, sorted(m for m in ('trafilatura', 'jieba', 'fugashi') if m in sys.modules))")
    runs = []
    for _ in range(5):
        done = subprocess.run([sys.executable, "-S", "-c", code, str(package), str(runtime)], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path, check=True,
                              env={"PATH": os.environ["PATH"], **variables})
        seconds, rss_kib, nlp = done.stdout.split(maxsplit=2)
        assert nlp.strip() == "[]"  # the API imports no NLP
        runs.append((float(seconds), int(rss_kib)))
    seconds, rss_kib = sorted(runs)[len(runs) // 2]
    print(f"\npackaged API cold import: {seconds:.2f} s, {rss_kib / 1024:.0f} MiB peak RSS (median of 5)")
    assert seconds < 3


def test_a_bad_setting_stops_the_cold_start_naming_it(template, lambda_root, tmp_path):
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    env = {"PATH": os.environ["PATH"], **variables, "CHIPTRACKER_DIGEST_HOUR": "25"}
    result, _ = invoke(lambda_root, "app.app", [api_event("/health", {}, "x")], env, tmp_path)
    (failure,) = result["results"]
    assert "CHIPTRACKER_DIGEST_HOUR" in failure["init_error"]

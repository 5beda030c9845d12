"""The CloudFormation that Chalice does not write, merged into its template by `make package`.

Chalice generates the four functions, a role for each (policies from .chalice/policy-*.json), the
hourly schedules, the SQS event source and the REST API. This adds, for one stage, what those run
on and what watches them, named from that stage's environment in .chalice/config.json:

- the DynamoDB table (on demand, the store's indexes, point-in-time recovery, TTL), kept on delete;
- the feed-job queue and its dead-letter queue (three receives, then the DLQ), and at most
  MAX_WORKERS workers reading it at once;
- a log group per function (30 days), so the functions need no logs:CreateLogGroup;
- each role's hand-written policy (.chalice/policy-*.json) pinned to the stack's account and region;
- an API key and a usage plan for the API (API Gateway checks the key, not our code);
- API Gateway's own answers (no such route, a missing key, throttling) in the API's JSON error shape
  (routes.GATEWAY_ERRORS), with CORS, so that every error a client sees reads the same;
- alarms: messages in the DLQ, an hour of feed jobs with every feed failing, planner errors,
  sent to an SNS topic (an e-mail subscription when AlarmEmail is given).

The Slack webhook is not here: it is an SSM SecureString parameter the operator writes (see the
README's Deploy section), read by the worker at run time; CloudFormation cannot create
SecureStrings, and a secret must not sit in a template or a file in the repo.

    python deploy/template.py STAGE OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.api.routes import EXPOSED_HEADERS, GATEWAY_ERRORS  # noqa: E402
from chalicelib.lambdas import FEEDS_FAILED, FEEDS_OK  # noqa: E402
from chalicelib.store.dynamodb import TTL_ATTRIBUTE, table_definition  # noqa: E402

# SQS's advice for a Lambda consumer: a visibility timeout of six times the function's timeout,
# so a message is not handed to a second worker while the first may still be running it.
VISIBILITY_TIMEOUT_FACTOR = 6
MAX_RECEIVES = 3  # a job that fails three times goes to the dead-letter queue
LOG_RETENTION_DAYS = 30
MAX_WORKERS = 50  # jobs (of jobs.FEEDS_PER_JOB feeds) running at once

# Chalice's logical ids for each function and its role, and the function's name in .chalice/config.json
FUNCTIONS = {
    "APIHandler": ("ApiHandlerRole", "api_handler"),
    "PlanFeedJobs": ("PlanFeedJobsRole", "plan_feed_jobs"),
    "RunFeedJobs": ("RunFeedJobsRole", "run_feed_jobs"),
    "SendDailyDigest": ("SendDailyDigestRole", "send_daily_digest"),
}


def stage_config(stage: str) -> dict:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    if stage not in config["stages"]:
        raise SystemExit(f"no stage {stage!r} in .chalice/config.json (stages: {', '.join(config['stages'])})")
    return config["stages"][stage]


def function_name(stage: str, function: str) -> str:
    return f"chiptracker-{stage}-{'api' if function == 'api_handler' else function}"


def merge_template(stage: str) -> dict:
    config = stage_config(stage)
    env = config["environment_variables"]
    table = urlsplit(env["CHIPTRACKER_DB"]).netloc
    queue = env["CHIPTRACKER_QUEUE"]
    worker_timeout = config["lambda_functions"]["run_feed_jobs"]["lambda_timeout"]
    service = env["POWERTOOLS_SERVICE_NAME"]
    namespace = env["POWERTOOLS_METRICS_NAMESPACE"]
    alarm_actions = {"AlarmActions": [{"Ref": "AlarmTopic"}], "OKActions": [{"Ref": "AlarmTopic"}]}

    resources: dict = {
        # merged into the OpenAPI body Chalice writes, so that they are deployed with the API itself
        "RestAPI": {"Properties": {"DefinitionBody": {"x-amazon-apigateway-gateway-responses": gateway_responses()}}},
        "EventTable": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",  # the research archive outlives the stack
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                **table_definition(table),
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        },
        "FeedJobQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue,
                "VisibilityTimeout": VISIBILITY_TIMEOUT_FACTOR * worker_timeout,
                "MessageRetentionPeriod": 86400,  # a job not run within a day is stale: the planner queues anew
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["FeedJobDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": MAX_RECEIVES,
                },
            },
        },
        "FeedJobDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": f"{queue}-dlq", "MessageRetentionPeriod": 14 * 86400,
                           "SqsManagedSseEnabled": True},
        },
        "ApiKey": {
            "Type": "AWS::ApiGateway::ApiKey",
            "Properties": {
                # a new generation is a new key: how the key is rotated (README, "Operate")
                "Name": {"Fn::Sub": f"chiptracker-{stage}-${{ApiKeyGeneration}}"},
                "Enabled": True,
            },
        },
        "UsagePlan": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "UsagePlanName": f"chiptracker-{stage}",
                "ApiStages": [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}],
                "Throttle": {"RateLimit": 20, "BurstLimit": 40},
                "Quota": {"Limit": 100000, "Period": "DAY"},
            },
        },
        "UsagePlanKey": {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {"KeyId": {"Ref": "ApiKey"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "UsagePlan"}},
        },
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"chiptracker-{stage}-alarms"}},
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}},
        },
        "DeadLetterAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": "Feed jobs failed three times and wait in the dead-letter queue.",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["FeedJobDeadLetterQueue", "QueueName"]}}],
                "Statistic": "Maximum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                **alarm_actions,
            },
        },
        "AllFeedsFailingAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": "In the last hour feed jobs ran and not one feed was fetched.",
                "Metrics": [
                    _sum(FEEDS_OK, "ok", namespace, service),
                    _sum(FEEDS_FAILED, "failed", namespace, service),
                    {"Id": "all_failing", "Expression": "IF(failed > 0 AND ok == 0, 1, 0)",
                     "Label": "every feed failing", "ReturnData": True},
                ],
                "EvaluationPeriods": 1,
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                **alarm_actions,
            },
        },
        "PlannerErrorAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": "The hourly planner failed: no feed jobs were queued.",
                "Namespace": "AWS/Lambda",
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "PlanFeedJobs"}}],
                "Statistic": "Sum",
                "Period": 3600,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                **alarm_actions,
            },
        },
    }
    for logical_id, (role, function) in FUNCTIONS.items():
        name = function_name(stage, function)
        resources[f"{logical_id}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": f"/aws/lambda/{name}", "RetentionInDays": LOG_RETENTION_DAYS},
        }
        resources.setdefault(logical_id, {}).setdefault("Properties", {})["FunctionName"] = name
        resources[logical_id]["DependsOn"] = [f"{logical_id}LogGroup"]
        # the function's hand-written policy, as Chalice put it in the role, pinned to this account and region
        policy_file = config["lambda_functions"][function].get("iam_policy_file", config["iam_policy_file"])
        policy = json.loads((ROOT / ".chalice" / policy_file).read_text())
        policies = [{"PolicyName": f"{role}Policy", "PolicyDocument": pinned(policy)}]  # replaces Chalice's list
        resources[role] = {"Properties": {"Policies": policies}}
    # Chalice's event source names the queue by ARN; the queue must exist before the mapping is made
    resources["RunFeedJobs"]["DependsOn"].append("FeedJobQueue")
    # at most this many workers at once, without reserving account concurrency (new accounts have little)
    resources["RunFeedJobs"]["Properties"]["Events"] = {"RunFeedJobsSqsEventSource": {"Properties": {
        "ScalingConfig": {"MaximumConcurrency": MAX_WORKERS}}}}

    return {
        "Parameters": {
            "AlarmEmail": {"Type": "String", "Default": "", "Description": "Who gets the alarms (empty: nobody)"},
            "ApiKeyGeneration": {"Type": "Number", "Default": 1, "MinValue": 1,
                                 "Description": "Raise by one to replace the API key with a new one"},
        },
        "Conditions": {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}},
        "Resources": resources,
        "Outputs": {
            "ApiKeyId": {"Value": {"Ref": "ApiKey"},
                         "Description": "the key's value: aws apigateway get-api-key --include-value --api-key ID"},
            "EventTableName": {"Value": {"Ref": "EventTable"}},
            "FeedJobQueueUrl": {"Value": {"Ref": "FeedJobQueue"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "FeedJobDeadLetterQueue"}},
            "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
        },
    }


def gateway_responses() -> dict:
    """API Gateway's own answers in the API's error shape: {"error": {"code", "message", "parameter"}}.
    The message names the request id ($context.requestId), as X-Correlation-Id does on the API's answers."""
    responses = {}
    for response_type, (status, code, message) in GATEWAY_ERRORS.items():
        body = json.dumps({"error": {"code": code, "message": f"{message} (request $context.requestId)",
                                     "parameter": None}})
        responses[response_type] = {
            **({"statusCode": str(status)} if status else {}),
            "responseParameters": {
                "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
                "gatewayresponse.header.Access-Control-Expose-Headers": f"'{','.join(EXPOSED_HEADERS)}'",
            },
            "responseTemplates": {"application/json": body},
        }
    return responses


def pinned(policy: dict) -> dict:
    """The policy with each ARN's `*` region and account made the stack's own: the policy files
    name the stage's resources but cannot know the account they are deployed to."""
    def pin(resource: str) -> str | dict:
        if not resource.startswith("arn:aws:") or ":*:*:" not in resource:
            return resource
        service, rest = resource.removeprefix("arn:aws:").split(":*:*:", 1)
        return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{rest}"}

    statements = []
    for statement in policy["Statement"]:
        listed = statement["Resource"]
        resources = [pin(r) for r in ([listed] if isinstance(listed, str) else listed)]
        statements.append({**statement, "Resource": resources})
    return {**policy, "Statement": statements}


def _sum(metric: str, metric_id: str, namespace: str, service: str) -> dict:
    """An hour's sum of one of the worker's metrics (powertools adds the `service` dimension)."""
    return {
        "Id": metric_id,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric,
                       "Dimensions": [{"Name": "service", "Value": service}]},
            "Period": 3600,
            "Stat": "Sum",
        },
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.rsplit("\n\n", 1)[-1])
    out = Path(sys.argv[2])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merge_template(sys.argv[1]), indent=1) + "\n")

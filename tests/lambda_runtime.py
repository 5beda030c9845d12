"""Invoke packaged Lambda handlers the way the Lambda runtime would, in a fresh process.

    python -S tests/lambda_runtime.py PACKAGE_DIR RUNTIME_DIR HANDLER EVENTS.json

Only the unzipped package and RUNTIME_DIR (what the Lambda runtime provides: boto3 and its
dependencies) are importable: `-S` leaves site-packages out, so a module missing from
requirements.txt fails here as it would in Lambda. The events run one after another in the same
process, as in a warm container. The last line printed is `RESULT {json}`: each invocation's return
value (or error), the AWS operations the process called, and where the key modules came from.
"""

import importlib
import json
import sys
import traceback

package, runtime, handler_path, events_file = sys.argv[1:5]
sys.path[:0] = [package, runtime]

import botocore.client  # noqa: E402 (from RUNTIME_DIR)

calls: set[str] = set()
_make_api_call = botocore.client.BaseClient._make_api_call


def _recording(self, operation_name, api_params):
    calls.add(f"{self.meta.service_model.service_name}:{operation_name}")
    return _make_api_call(self, operation_name, api_params)


botocore.client.BaseClient._make_api_call = _recording


class Context:
    """The parts of Lambda's context object that handlers read."""

    function_name = "chiptracker-smoke"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chiptracker-smoke"
    aws_request_id = "00000000-0000-0000-0000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


results = []
try:
    module_name, attribute = handler_path.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), attribute)
    with open(events_file, encoding="utf-8") as listed:
        events = json.load(listed)
    for event in events:
        try:
            results.append({"ok": handler(event, Context())})
        except Exception as exc:  # what Lambda would report as the invocation's error
            results.append({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
except Exception as exc:  # the cold start (import) failed
    results.append({"init_error": f"{type(exc).__name__}: {exc}"})

modules = {name: getattr(sys.modules[name], "__file__", None)
           for name in ("app", "chalicelib", "trafilatura", "jieba", "fugashi", "pydantic", "jinja2",
                        "aws_lambda_powertools", "boto3")
           if name in sys.modules}
print("RESULT " + json.dumps({"results": results, "calls": sorted(calls), "modules": modules}, default=str))

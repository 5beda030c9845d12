"""moto_server, a real DynamoDB/SQS/SES-protocol server, as a process on a free 127.0.0.1 port.

Used by the test session (tests/conftest.py) and by the benchmarks (bench/). Sets fake AWS
credentials in the environment, so that botocore neither finds real ones nor waits on the
instance-metadata service.

The server is moto_server's own application and request handler, run one request at a time:
moto checks a ConditionExpression and then writes, unlocked, so two threads' conditional
updates of one item could both succeed, where DynamoDB makes each single-item write atomic
(seen as a rare double lease of one Slack alert in the concurrency tests).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """Started on creation; `endpoint` is its URL; `stop()` ends it."""

    def __init__(self) -> None:
        if importlib.util.find_spec("moto.server") is None:
            raise RuntimeError("moto_server not installed (pip install 'moto[server]')")
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                          AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, __file__, str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not start within 30 s") from None
                time.sleep(0.1)

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            return int(next(line.split()[1] for line in status if line.startswith("VmRSS:")))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _serve(port: int) -> None:
    """moto_server's app on 127.0.0.1:`port`, its requests one at a time (see the module's doc)."""
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def atomic(environ, start_response):
        with one_at_a_time:
            return list(app(environ, start_response))

    run_simple("127.0.0.1", port, atomic, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))

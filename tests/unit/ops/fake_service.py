"""A stand-in OS process for the platform tests: answers GET /health/ready on RCM_HTTP_PORT.

It prints the environment it was given (the RCM_ and infrastructure variables), so a
test can check what the platform told it. Not a fake of Kafka or MongoDB: the platform
code under test only starts, watches and stops processes.
"""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health/ready" else 404
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ready"}')

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    for name in sorted(os.environ):
        if name.startswith("RCM_") or name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL"):
            print(f"{name}={os.environ[name]}", flush=True)
    if os.environ.get("FAKE_SERVICE_FAIL"):
        raise SystemExit("configured to fail at start")
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["RCM_HTTP_PORT"])), Handler).serve_forever()


if __name__ == "__main__":
    main()

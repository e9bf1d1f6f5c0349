"""A webhook receiver for Steward's tests that verifies every delivery with an independent
Standard Webhooks implementation (the `standardwebhooks` package from PyPI, not Steward's code).

Usage: python standard_webhooks_receiver.py PORT LOG_FILE   (secret in $WEBHOOK_SECRET)

Listens on 127.0.0.1:PORT (0 picks a free one) and prints "listening on PORT" once ready.
Each POST is appended to LOG_FILE as one JSON line: {"path", "webhook_id", "verified",
"error", "body"}; a verified delivery is answered 204, a bad signature 401 (as a receiver
refusing it would).
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PORT = int(sys.argv[1])
LOG = sys.argv[2]
VERIFIER = Webhook(os.environ["WEBHOOK_SECRET"])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"path": self.path, "webhook_id": headers.get("webhook-id"),
                 "content_type": headers.get("content-type")}
        try:
            entry["body"] = VERIFIER.verify(body, headers)
            entry["verified"] = True
        except WebhookVerificationError as e:
            entry["verified"] = False
            entry["error"] = str(e)
            entry["body"] = body.decode("utf-8", "replace")
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(204 if entry["verified"] else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    allow_reuse_address = True


server = Server(("127.0.0.1", PORT), Handler)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()

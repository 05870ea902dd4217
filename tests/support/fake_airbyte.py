"""A local stand-in for the Airbyte API's job endpoints, for syncdeck's tests.

Follows the documented shapes of POST /applications/token, POST /jobs,
GET /jobs/{id} and DELETE /jobs/{id}. How a job goes depends on its
connection id:
  ok     pending -> running -> succeeded (rowsSynced 1234, bytesSynced 56789)
  fail   pending -> running -> failed (failureReason set)
  slow   pending -> running until cancelled
GET /_calls lists the requests received (and `connection ID` after each
POST /jobs), for the tests to check.

    python3 fake_airbyte.py PORT    (0: any free port; the port is printed)
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_ID = "syncdeck-test-client"
CLIENT_SECRET = "s3cret-client-value"
TOKEN = "token-for-tests-0042"

lock = threading.Lock()
jobs = {}
calls = []
next_id = [100]


def advance(job):
    job["polls"] += 1
    # `ok/anything` behaves like `ok`: lets tests see a rendered id.
    plan = (job["connectionId"] or "").split("/")[0]
    if job["status"] in ("succeeded", "failed", "cancelled"):
        return
    if job["polls"] >= 2:
        job["status"] = "running"
    if plan == "ok" and job["polls"] >= 4:
        job["status"] = "succeeded"
        job["rowsSynced"] = 1234
        job["bytesSynced"] = 56789
    if plan == "fail" and job["polls"] >= 3:
        job["status"] = "failed"
        job["failureReason"] = "Source connector crashed: the API key expired"


def public(job):
    return {key: value for key, value in job.items() if key != "polls"}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def authorized(self):
        return self.headers.get("Authorization") == f"Bearer {TOKEN}"

    def record(self):
        with lock:
            calls.append(f"{self.command} {self.path}")

    def do_POST(self):
        self.record()
        if self.path == "/applications/token":
            body = self.body()
            if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
                return self.reply(401, {"message": "invalid client credentials"})
            return self.reply(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 180})
        if self.path == "/jobs":
            if not self.authorized():
                return self.reply(401, {"message": "unauthorized"})
            body = self.body()
            with lock:
                job_id = next_id[0]
                next_id[0] += 1
                jobs[job_id] = {"jobId": job_id, "status": "pending", "jobType": body.get("jobType", "sync"),
                                "connectionId": body.get("connectionId"), "polls": 0}
                calls.append(f"connection {body.get('connectionId')}")
                return self.reply(200, public(jobs[job_id]))
        self.reply(404, {"message": "not found"})

    def job_id(self):
        try:
            return int(self.path.rsplit("/", 1)[1])
        except ValueError:
            return None

    def do_GET(self):
        if self.path == "/_calls":
            with lock:
                return self.reply(200, calls)
        self.record()
        if not self.authorized():
            return self.reply(401, {"message": "unauthorized"})
        with lock:
            job = jobs.get(self.job_id())
            if job is None:
                return self.reply(404, {"message": "no such job"})
            advance(job)
            return self.reply(200, public(job))

    def do_DELETE(self):
        self.record()
        if not self.authorized():
            return self.reply(401, {"message": "unauthorized"})
        with lock:
            job = jobs.get(self.job_id())
            if job is None:
                return self.reply(404, {"message": "no such job"})
            if job["status"] not in ("succeeded", "failed"):
                job["status"] = "cancelled"
            return self.reply(200, public(job))


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()

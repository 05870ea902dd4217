"""A paginated JSON API for syncdeck's http_sync tests.

GET /users?page=N&limit=L[&updated_since=T]  (Authorization: Bearer required)
    -> {"data": [user, ...], "total": count}; users ordered by id
GET /_control?fail_page=3&fail_times=2  page 3 answers 500 the next 2 times (-1: until healed)
GET /_control?heal=1                     stop failing
GET /_control?touch=1,2,3&add=5          update those users now; add 5 new ones
GET /_control?numeric_first_name=7       user 7's first_name becomes a number
GET /_requests                           the paths (with queries) asked for so far

    python3 fake_api.py PORT    (0: any free port; the port is printed)
    FAKE_API_USERS=100000 for more users (benchmarks); 250 by default
"""
import json
import os
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TOKEN = "api-token-for-tests-77"
lock = threading.Lock()
start = datetime(2026, 1, 1, tzinfo=timezone.utc)


def user(i, updated_at):
    # Mixed-case e-mail and split names: what seed 002's transform normalises.
    return {"id": i, "email": f"User{i}@Example.COM" if i % 2 else f"user{i}@example.com",
            "first_name": f"First{i}", "last_name": f"Last{i}", "active": i % 3 != 0,
            "profile": {"name": f"User {i}"}, "updated_at": updated_at}


users = {
    i: user(i, (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    for i in range(1, int(os.environ.get("FAKE_API_USERS", "250")) + 1)
}
failing = {"page": None, "times": 0}
requests = []


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def do_GET(self):
        url = urlparse(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        with lock:
            if url.path == "/_control":
                if "fail_page" in query:
                    failing["page"] = int(query["fail_page"])
                    failing["times"] = int(query.get("fail_times", "-1"))
                if "heal" in query:
                    failing["page"] = None
                for i in filter(None, query.get("touch", "").split(",")):
                    users[int(i)]["email"] = f"changed{i}@example.com"
                    users[int(i)]["updated_at"] = now()
                for _ in range(int(query.get("add", "0"))):
                    i = max(users) + 1
                    users[i] = user(i, now())
                for i in filter(None, query.get("numeric_first_name", "").split(",")):
                    users[int(i)]["first_name"] = 12345
                return self.reply(200, {"ok": True})
            if url.path == "/_requests":
                return self.reply(200, requests)
            requests.append(self.path)
            if url.path != "/users":
                return self.reply(404, {"message": "not found"})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.reply(401, {"message": "unauthorized"})
            page = int(query.get("page", "1"))
            limit = int(query.get("limit", "100"))
            if failing["page"] == page and failing["times"] != 0:
                failing["times"] -= 1
                return self.reply(500, {"message": "upstream database timeout"})
            since = query.get("updated_since")
            selected = [users[i] for i in sorted(users) if since is None or users[i]["updated_at"] > since]
            chunk = selected[(page - 1) * limit: page * limit]
            return self.reply(200, {"data": chunk, "total": len(selected)})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()

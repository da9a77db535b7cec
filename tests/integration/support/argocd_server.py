"""A stand-in for Argo CD's API server, scripted over time (docs/design.md §9: the one place
tests use a stand-in, since Argo CD needs a Kubernetes cluster).

It speaks the paths, query parameters and field names of Argo CD's OpenAPI document
(assets/swagger.json): GET /api/v1/applications/{name} with `appNamespace` and `project`,
answering a v1alpha1Application (status.sync.status/revision/revisions, status.health.status,
status.operationState.phase/message/syncResult, status.conditions[].type/message,
status.resources[].health), and the watch stream GET /api/v1/stream/applications?name=...
(newline-delimited `{"result": {"type": ..., "application": ...}}`). Errors have grpc-gateway's
shape: {"error", "code", "message"}; 401 without the right `Authorization: Bearer` token.

Usage: python argocd_server.py SCRIPT.json. Prints the port on stdout, then serves until
killed. The script:
  {"token": T, "remote": BARE_REPO, "branch": "main", "log": FILE,
   "apps": {NAME: [FRAME, ...]}}
A FRAME applies from `after` seconds past the first request for that app:
  {"after": 0, "sync": "Synced", "health": "Healthy", "revision": "@tip" | "@start" | SHA,
   "phase": "Failed", "message": "...", "conditions": [{"type":..,"message":..}],
   "resources": [{"kind":..,"namespace":..,"name":..,"health":{"status":..,"message":..}}],
   "status": 403, "stall": true, "stream_stall": true}
(`stall`: no answer at all; `stream_stall`: the watch stream goes silent, GET still answers.)
`@tip` is the remote branch's tip when the request is answered, `@start` its tip when the
server started. Each request is appended to `log` as a JSON line (path, query, whether the
bearer token matched; never the token itself).
"""

import json
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCRIPT = json.load(open(sys.argv[1]))
FIRST_SEEN = {}
LOCK = threading.Lock()


def tip():
    out = subprocess.run(
        ["git", "--git-dir", SCRIPT["remote"], "rev-parse", "refs/heads/" + SCRIPT.get("branch", "main")],
        capture_output=True, text=True)
    return out.stdout.strip()


START = tip()


def frame_for(name):
    frames = SCRIPT["apps"].get(name)
    if frames is None:
        return None
    with LOCK:
        first = FIRST_SEEN.setdefault(name, time.monotonic())
    elapsed = time.monotonic() - first
    current = frames[0]
    for f in frames:
        if f.get("after", 0) <= elapsed:
            current = f
    return current


def application(name, namespace, f):
    rev = f.get("revision", "@tip")
    rev = {"@tip": tip(), "@start": START}.get(rev, rev)
    status = {
        "sync": {"status": f.get("sync", "Synced"), "revision": rev,
                 "comparedTo": {"source": {"repoURL": "file://" + SCRIPT["remote"], "targetRevision": "main"}}},
        "health": {"status": f.get("health", "Healthy")},
        "conditions": f.get("conditions", []),
        "resources": f.get("resources", []),
        "reconciledAt": "2026-11-23T10:00:00Z",
    }
    if "health_message" in f:
        status["health"]["message"] = f["health_message"]
    if "phase" in f:
        status["operationState"] = {
            "phase": f["phase"], "message": f.get("message", ""),
            "startedAt": "2026-11-23T10:00:00Z",
            "syncResult": {"revision": rev, "resources": []},
        }
    return {"metadata": {"name": name, "namespace": namespace or "argocd"},
            "spec": {"project": "default"}, "status": status}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        authorized = self.headers.get("Authorization") == "Bearer " + SCRIPT["token"]
        with open(SCRIPT["log"], "a") as log:
            log.write(json.dumps({"path": url.path, "query": query, "authorized": authorized}) + "\n")
        if not authorized:
            return self.send_json(401, {"error": "invalid session: token is invalid", "code": 16,
                                        "message": "invalid session: token is invalid"})
        namespace = (query.get("appNamespace") or [None])[0]
        if url.path.startswith("/api/v1/applications/"):
            name = urllib.parse.unquote(url.path[len("/api/v1/applications/"):])
            return self.answer(name, namespace)
        if url.path == "/api/v1/stream/applications":
            return self.stream((query.get("name") or [""])[0], namespace)
        self.send_json(404, {"error": "Not Found", "code": 5, "message": "Not Found"})

    def answer(self, name, namespace):
        f = frame_for(name)
        if f is None:
            msg = 'applications.argoproj.io "%s" not found' % name
            return self.send_json(404, {"error": msg, "code": 5, "message": msg})
        if f.get("stall"):
            time.sleep(600)
            return None
        if f.get("status", 200) != 200:
            msg = "permission denied: applications, get, default/" + name
            return self.send_json(f["status"], {"error": msg, "code": 7, "message": msg})
        return self.send_json(200, application(name, namespace, f))

    def stream(self, name, namespace):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        last = None
        while True:
            f = frame_for(name)
            if f is None or f.get("stall") or f.get("stream_stall"):
                time.sleep(600)
                return
            app = application(name, namespace, f)
            if app != last:
                line = json.dumps({"result": {"type": "MODIFIED", "application": app}}) + "\n"
                data = line.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                last = app
            time.sleep(0.2)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()

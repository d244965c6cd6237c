"""Records what the reference (airbyte-cdk 7.39.1) emits for this case into expected.json.

Serves responses/ on 127.0.0.1 with the same checks the Rust test's server makes (a request
that lacks the expected auth or query gets a 404), runs `source-declarative-manifest read`
and keeps the RECORD data per stream and the final STATE per stream.

    /tmp/ref/bin/python record_reference.py /tmp/ref/bin/source-declarative-manifest
"""
import base64, http.server, json, subprocess, sys, threading, pathlib, urllib.parse

HERE = pathlib.Path(__file__).parent
API_KEY, USER, PASSWORD, REGION = "k3y-secret", "ada", "pa ss", "eu"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
ROUTES = {
    "/v2/customers": ({"X-Api-Key": API_KEY}, {"region": [REGION], "limit": ["50"], "active": ["true"]}),
    "/v2/invoices/eu": ({"Authorization": BASIC}, {}),
    "/v2/tags": ({"Authorization": f"Bearer {API_KEY}"}, {"key": [API_KEY]}),
    "/v2/settings": ({}, {"api_key": [API_KEY]}),
}

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        route = ROUTES.get(url.path)
        ok = route is not None and all(self.headers.get(k) == v for k, v in route[0].items()) \
            and urllib.parse.parse_qs(url.query) == route[1]
        body = (HERE / "responses" / (url.path.split("/")[2] + ".json")).read_bytes() if ok else b"{}"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
config = {"base_url": f"http://127.0.0.1:{server.server_port}", "api_key": API_KEY, "region": REGION,
          "user": USER, "password": PASSWORD}
(HERE / "config.tmp.json").write_text(json.dumps(config))
out = subprocess.run([sys.argv[1], "read", "--config", str(HERE / "config.tmp.json"), "--catalog",
                      str(HERE / "catalog.json"), "--manifest-path", str(HERE / "manifest.yaml")],
                     capture_output=True, text=True)
(HERE / "config.tmp.json").unlink()
records, states = {}, {}
for line in out.stdout.splitlines():
    message = json.loads(line)
    if message["type"] == "RECORD":
        records.setdefault(message["record"]["stream"], []).append(message["record"]["data"])
    elif message["type"] == "STATE":
        stream = message["state"]["stream"]
        states[stream["stream_descriptor"]["name"]] = {"stream_state": stream["stream_state"],
                                                       "sourceStats": message["state"]["sourceStats"]}
assert out.returncode == 0, out.stdout[-2000:]
(HERE / "expected.json").write_text(json.dumps({"records": records, "states": states}, indent=2, ensure_ascii=False) + "\n")
print("records:", {k: len(v) for k, v in records.items()})

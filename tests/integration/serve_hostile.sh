#!/bin/bash
# A hostile control plane: claim answers that are not JSON, are 5 MiB, or
# carry a task with an unknown key or a path-like id. The agent logs a clear
# error for each, keeps running, writes nothing outside its folders, and
# runs nothing. (A server that stalls is in the control_client unit test,
# with a short timeout.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
need_root
make_ca
runner_token r1
PORT=$(free_port)
cat > "$WORK/hostile.py" <<'PY'
import http.server, ssl, sys, json
answers = [
  (200, b"{not json"),
  (200, b"{\"task\": " + b"[" * 10 + b"]" * 10 + b" " * (5 << 20) + b"}"),
  (200, json.dumps({"task": {"id": "t1", "token": "a" * 20, "job": {"name": "b", "config": "x"}, "meta": {}, "bogus": 1}}).encode()),
  (200, json.dumps({"task": {"id": "../../etc", "token": "a" * 20, "job": {"name": "b", "config": "x"}, "meta": {}}}).encode()),
]
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self.path.endswith("/claim"):
            with open(sys.argv[4] + ".calls", "a") as f:
                f.write(self.path + "\n")
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        code, body = answers[n[0] % len(answers)]
        n[0] += 1
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except Exception:
            pass
        with open(sys.argv[4], "w") as f:
            f.write(str(n[0]))
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
python3 "$WORK/hostile.py" "$PORT" "$WORK/server.pem" "$WORK/server.key" "$WORK/served" 2> "$WORK/hostile.log" &
PIDS+=($!)
sleep 0.5
printf 'version: 1\nprofiles:\n  default: {}\n' > "$WORK/policy.yaml"
agent_config r1
start_agent r1
for _ in $(seq 300); do
  [ "$(cat "$WORK/served" 2> /dev/null || echo 0)" -ge 5 ] && break
  sleep 0.2
done
[ "$(cat "$WORK/served" 2> /dev/null || echo 0)" -ge 5 ] || fail "the agent stopped claiming after a hostile answer"
kill -0 "$AGENT_PID" || fail "the agent died on a hostile answer"
cp "$WORK/agent-r1.log" "$OUT"
expect_out 'claim: .*(JSON|json)'
expect_out 'claim: .*4 MiB'
expect_out 'claim: .*bogus'
expect_out 'claim: .*task.id'
[ -e "$WORK/etc" ] && fail "a path-like task id made a folder"
# The task with an unknown key had a readable id and token: it is completed
# as refused, and nothing else is called.
[ "$(cat "$WORK/served.calls")" = /api/v1/tasks/t1/complete ] || fail "unexpected task calls: $(cat "$WORK/served.calls")"
ls "$WORK/spool-r1" | grep -q . && fail "something was spooled from a hostile answer"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent did not stop cleanly after the hostile run"
echo ok

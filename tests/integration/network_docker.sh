#!/bin/bash
# network `host` and docker `direct` change what a job can reach; the
# defaults (none, deny) keep it from both. The Docker socket here is a stand-in
# (a tiny HTTP server on a unix socket, root:GROUP 0660 as dockerd makes it):
# what is tested is that the job gets the socket and the group, not Docker.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v python3 >/dev/null || skip "needs python3 for the stand-in servers"
command -v curl >/dev/null || skip "needs curl"

cat > "$WORK/serve.py" <<'PY'
import http.server, os, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(sys.argv[3].encode() + b"\n")
    def log_message(self, *a): pass
class Unix(socketserver.UnixStreamServer):
    def get_request(self):
        r, _ = super().get_request(); return r, ("local", 0)
if sys.argv[1] == "unix":
    s = Unix(sys.argv[2], H); os.chown(sys.argv[2], 0, int(sys.argv[4])); os.chmod(sys.argv[2], 0o660)
else:
    s = socketserver.TCPServer(("127.0.0.1", int(sys.argv[2])), H)
open(sys.argv[2] + ".ready" if sys.argv[1] == "unix" else os.environ["READY"], "w").close()
s.serve_forever()
PY
PORT=$((20000 + RANDOM % 20000))
READY="$WORK/tcp.ready" python3 "$WORK/serve.py" tcp $PORT host-loopback-ok & TCP=$!
GID=$(getent group users | cut -d: -f3); GID=${GID:-100}
python3 "$WORK/serve.py" unix "$WORK/docker.sock" docker-ok "$GID" & UNIX=$!
trap 'kill $TCP $UNIX 2>/dev/null; rm -rf "$WORK"' EXIT
for i in $(seq 50); do [ -e "$WORK/tcp.ready" ] && [ -e "$WORK/docker.sock.ready" ] && break; sleep 0.1; done
[ -e "$WORK/docker.sock.ready" ] || fail "the stand-in servers did not start"

cat > "$WORK/policy.yaml" <<YAML
version: 1
profiles:
  default: {}
  hostnet:
    network: host
  docker:
    docker:
      mode: direct
      acknowledge: root-equivalent
      socket: $WORK/docker.sock
YAML
f=$(job net <<YAML
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: |
          curl -s -m 5 http://127.0.0.1:$PORT/ || echo "tcp-refused rc=\$?"
          echo "DOCKER_HOST=\${DOCKER_HOST:-unset}"
          if [ -S /var/run/docker.sock ]; then curl -s -m 5 --unix-socket /var/run/docker.sock http://docker/_ping || echo "docker-refused rc=\$?"; else echo no-docker-socket; fi
YAML
)
P=(--policy "$WORK/policy.yaml")

# Defaults: the host's loopback is another namespace; no socket at all.
run_job "$f" "${P[@]}"
expect_rc 0
expect_out '^tcp-refused rc=7$'
expect_out '^DOCKER_HOST=unset$'
expect_out '^no-docker-socket$'

run_job "$f" "${P[@]}" --profile hostnet
expect_rc 0
expect_out '^host-loopback-ok$'
expect_out '^no-docker-socket$'

run_job "$f" "${P[@]}" --profile docker
expect_rc 0
expect_out '^tcp-refused rc=7$'
expect_out '^DOCKER_HOST=unix:///var/run/docker.sock$'
expect_out '^docker-ok$'

# direct without the acknowledgement is a policy error, not a run.
printf 'version: 1\nprofiles:\n  default:\n    docker: {mode: direct}\n' > "$WORK/noack.yaml"
run_job "$f" --policy "$WORK/noack.yaml"
expect_rc 2
expect_out 'noack.yaml:4:[0-9]+: error'
expect_out 'root-equivalent'
expect_no_out '^==>'

# A socket only root can use is refused before anything runs.
chmod 600 "$WORK/docker.sock"
run_job "$f" "${P[@]}" --profile docker
expect_rc 4
expect_out 'must be group read-write'
expect_no_out '^==>'
echo ok

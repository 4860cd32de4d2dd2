#!/bin/bash
# A service on the host's loopback is unreachable from the job (its own
# network namespace), while the job's own loopback works.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v python3 >/dev/null || skip "python3 is needed for the host listener"
port_file="$WORK/port"
python3 - "$port_file" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(5)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
s.settimeout(60)
try:
    while True:
        c, _ = s.accept(); c.sendall(b"host-service\n"); c.close()
except Exception:
    pass
PY
listener=$!
trap 'kill $listener 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")
# the listener answers on the host
python3 -c "import socket; s=socket.create_connection(('127.0.0.1', $port)); assert s.recv(64)==b'host-service\n'"
mkdir -p "$WORK/j"; cp "$PROBE" "$WORK/j/gatehouse-probe"
cat > "$WORK/j/config.yml" <<YAML
steps:
  - checkout
  - run: |
      ./gatehouse-probe connect-tcp 127.0.0.1 $port
      python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); c=socket.create_connection(s.getsockname()); print('own-loopback-ok')"
YAML
run_job "$WORK/j/config.yml"
expect_rc 0
expect_out '^probe connect-tcp: attempting'
[ "$(grep '^probe connect-tcp: result=' "$OUT" | head -1)" = "probe connect-tcp: result=ECONNREFUSED" ] || fail "host loopback reachable?"
expect_out '^own-loopback-ok$'
echo ok

#!/bin/bash
# A `network: host` job shares the host's network namespace, and with it
# the host's abstract unix socket names (D-Bus, X11, container runtimes
# listen there). Landlock scoping (ABI 6) keeps the job from connecting to
# any abstract socket outside its domain: EPERM, though the name is visible
# to it in /proc/net/unix. The job's own abstract sockets keep working.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v python3 > /dev/null || skip "python3 is needed for the host listener"
abi=$(python3 -c 'import ctypes; print(max(0, ctypes.CDLL(None).syscall(444, None, 0, 1)))')
[ "$abi" -ge 6 ] || skip "Landlock ABI $abi has no scoping (needs ABI 6, Linux 6.12)"
name="gatehouse-escape-abstract-$$"
ready="$WORK/ready"
python3 - "$name" "$ready" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0" + sys.argv[1]); s.listen(5)
open(sys.argv[2], "w").write("ok")
s.settimeout(120)
try:
    while True:
        c, _ = s.accept(); c.sendall(b"host-service\n"); c.close()
except Exception:
    pass
PY
listener=$!
trap 'kill $listener 2> /dev/null || true; lib_cleanup' EXIT
for _ in $(seq 50); do [ -s "$ready" ] && break; sleep 0.1; done
# The listener answers on the host.
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect('\0' + sys.argv[1]); assert s.recv(64) == b'host-service\n'" "$name"
mkdir -p "$WORK/j"
cp "$PROBE" "$WORK/j/gatehouse-probe"
cat > "$WORK/j/config.yml" <<YAML
steps:
  - checkout
  - run: |
      echo "visible=\$(grep -c '@$name' /proc/net/unix)"
      ./gatehouse-probe connect-unix @$name
      python3 -c "import socket; l=socket.socket(socket.AF_UNIX); l.bind('\0gatehouse-own-$$'); l.listen(1); c=socket.socket(socket.AF_UNIX); c.connect('\0gatehouse-own-$$'); print('own-abstract-ok')"
YAML
printf 'version: 1\nprofiles:\n  default:\n    network: host\n' > "$WORK/policy.yaml"
run_job "$WORK/j/config.yml" --policy "$WORK/policy.yaml"
expect_rc 0
expect_out "landlock ABI $abi"
# The same namespace: the host's socket is listed, so the refusal is
# Landlock's, not a namespace boundary's (which would be ECONNREFUSED).
grep -qE '^visible=[1-9]' "$OUT" || fail "the host's abstract socket is not visible: not the host's network namespace?"
expect_out '^probe connect-unix: attempting'
got=$(grep '^probe connect-unix: result=' "$OUT" | head -1)
[ "$got" = "probe connect-unix: result=EPERM" ] || fail "host abstract socket: $got"
expect_out '^own-abstract-ok$'
echo "$got"

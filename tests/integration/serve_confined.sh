#!/bin/bash
# The privilege split of `gatehouse serve`, seen from outside:
#  - the agent runs as the user gatehouse with no capabilities, no_new_privs
#    and a seccomp filter; the broker as root with its four capabilities;
#  - the agent dying mid-job (as a crafted answer that crashed it would
#    leave it) costs nothing: the job runs on in the broker, the broker
#    starts the agent again, and every line and the result arrive, once;
#  - hostile requests to the metrics endpoint crash nothing.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1
command -v python3 > /dev/null || skip "needs python3 to send raw HTTP"
printf 'version: 1\nprofiles:\n  default: {}\n' > "$WORK/policy.yaml"
MPORT=$(free_port)
agent_config r1
printf 'metrics:\n  listen: 127.0.0.1:%s\n' "$MPORT" >> "$WORK/agent-r1.yaml"
start_agent r1
BROKER=$AGENT_PID
for _ in $(seq 100); do A=$(agent_pid_of "$BROKER"); [ -n "$A" ] && break; sleep 0.1; done
[ -n "$A" ] || fail "no gatehouse-agent under the broker $BROKER"
wait_for 'agent `r1` started' cat "$WORK/agent-r1.log"

# The agent: unprivileged and confined.
st=/proc/$A/status
agent_uid=$(id -u gatehouse)
grep -qE "^Uid:\s+$agent_uid\s+$agent_uid\s+$agent_uid\s+$agent_uid$" "$st" || fail "the agent's uids: $(grep Uid "$st")"
grep -qE '^CapEff:\s+0+$' "$st" || fail "the agent has capabilities: $(grep CapEff "$st")"
grep -qE '^CapPrm:\s+0+$' "$st" || fail "the agent has permitted capabilities: $(grep CapPrm "$st")"
grep -qE '^NoNewPrivs:\s+1$' "$st" || fail "the agent lacks no_new_privs"
grep -qE '^Seccomp:\s+2$' "$st" || fail "the agent is not under a seccomp filter: $(grep Seccomp "$st")"
# The broker: root with exactly CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_FOWNER.
st=/proc/$BROKER/status
grep -qE '^Uid:\s+0\s+0\s+0\s+0$' "$st" || fail "the broker is not root: $(grep Uid "$st")"
grep -qE '^CapEff:\s+00000000000000c9$' "$st" || fail "the broker's capabilities: $(grep CapEff "$st")"
grep -qE '^CapBnd:\s+00000000000000c9$' "$st" || fail "the broker's bounding set: $(grep CapBnd "$st")"
grep -qE '^NoNewPrivs:\s+1$' "$st" || fail "the broker lacks no_new_privs"
# The agent holds the runner token; the broker never read it.
tok=$(cut -d' ' -f2 "$WORK/runner-tokens")
grep -q "$tok" /proc/$BROKER/environ && fail "the runner token is in the broker's environment"

# The agent killed mid-job (SIGSEGV, as a crash leaves it).
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  slow:
    machine: true
    steps:
      - run: for i in $(seq 1 40); do echo "line $i"; sleep 0.1; done
YAML
id=$(submit "$WORK/src/config.yml" --job slow)
wait_for '^line 5$' logs_of "$id"
kill -SEGV "$A"
wait_for 'the agent was killed by signal 11; starting it again' cat "$WORK/agent-r1.log"
for _ in $(seq 100); do B=$(agent_pid_of "$BROKER"); [ -n "$B" ] && [ "$B" != "$A" ] && break; sleep 0.1; done
[ -n "$B" ] && [ "$B" != "$A" ] || fail "the broker did not start the agent again"
wait_for '^completed$' state_of "$id"
[ "$(outcome_of "$id")" = passed ] || fail "the job that outlived its agent: $(outcome_of "$id")"
logs_of "$id" > "$OUT"
for i in $(seq 1 40); do
  [ "$(grep -c "^line $i\$" "$OUT")" = 1 ] || fail "line $i arrived $(grep -c "^line $i\$" "$OUT") times"
done
[ "$(grep '^line ' "$OUT" | cut -d' ' -f2 | paste -sd,)" = "$(seq -s, 1 40)" ] || fail "the lines are out of order"

# Hostile metrics requests: an oversized head, garbage, a slow client.
python3 - "$MPORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
for payload in [b"GET /" + b"A" * 200000 + b" HTTP/1.1\r\n\r\n", b"\x00\xff" * 5000 + b"\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 10000 + b"\r\n"]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(payload)
        s.recv(4096)
    except OSError:
        pass
    s.close()
PY
C=$(agent_pid_of "$BROKER")
[ "$C" = "$B" ] || fail "the agent did not survive hostile metrics requests ($B -> ${C:-none})"
curl -s "http://127.0.0.1:$MPORT/health" | grep -q '"status"' || fail "the health endpoint stopped answering"
echo ok

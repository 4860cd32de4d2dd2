#!/bin/bash
# Nothing a job printed is lost: the control plane is killed (-9) in the
# middle of a job and restarted, and every log line and the result arrive,
# in order, once. Then the control plane is down when a job ends and the
# agent itself is stopped: the result waits in the spool and the next agent
# delivers it.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1
printf 'version: 1\nprofiles:\n  default: {}\n' > "$WORK/policy.yaml"
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  slow:
    machine: true
    steps:
      - run: for i in $(seq 1 80); do echo "line $i"; sleep 0.05; done
YAML
agent_config r1
start_agent r1 --drain-grace 1
id=$(submit "$WORK/src/config.yml" --job slow)
wait_for '^line 10$' logs_of "$id"
kill -9 "$DISPATCH_PID"
wait "$DISPATCH_PID" 2> /dev/null || true
sleep 2
start_dispatch
wait_for '^completed$' state_of "$id"
logs_of "$id" > "$OUT"
seq 1 80 | sed 's/^/line /' > "$WORK/want"
grep '^line ' "$OUT" > "$WORK/got" || true
diff "$WORK/want" "$WORK/got" > /dev/null || fail "log lines lost, repeated or out of order: $(diff "$WORK/want" "$WORK/got" | head -5)"
[ "$(outcome_of "$id")" = passed ] || fail "the result did not arrive as passed"

# Phase 2: the result waits in the spool across an agent restart.
id2=$(submit "$WORK/src/config.yml" --job slow)
wait_for '^line 5$' logs_of "$id2"
kill -9 "$DISPATCH_PID"
wait "$DISPATCH_PID" 2> /dev/null || true
wait_for "task $id2: passed" cat "$WORK/agent-r1.log"
kill -TERM "$AGENT_PID"
for _ in $(seq 150); do kill -0 "$AGENT_PID" 2> /dev/null || break; sleep 0.2; done
kill -0 "$AGENT_PID" 2> /dev/null && fail "the agent did not stop after SIGTERM with the control plane down"
[ -d "$WORK/spool-r1/$id2" ] || fail "the undelivered task is not in the spool"
start_dispatch
start_agent r1
wait_for '^completed$' state_of "$id2"
logs_of "$id2" | grep '^line ' > "$WORK/got" || true
diff "$WORK/want" "$WORK/got" > /dev/null || fail "phase 2: log lines lost or repeated: $(diff "$WORK/want" "$WORK/got" | head -5)"
for _ in $(seq 50); do [ -d "$WORK/spool-r1/$id2" ] || break; sleep 0.2; done
[ -d "$WORK/spool-r1/$id2" ] && fail "the spool was not cleared after delivery"
grep -q "delivering what an earlier agent left" "$WORK/agent-r1.log" || fail "the restarted agent did not recover the spool"
echo ok

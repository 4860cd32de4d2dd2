#!/bin/bash
# The agent's lifecycle: cancel from the control plane (SIGTERM to the job,
# reported as canceled), drain on SIGTERM (the running job finishes, no new
# claim, exit 0), a second SIGTERM cancels at once, idle timeout, the
# free-space watermark, a duplicate runner name, two agents on one host and
# an overlap between their uid pools.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1 r2
printf 'version: 1\nprofiles:\n  default: {uid_pool: {first: 1900100, count: 8}}\n' > "$WORK/policy.yaml"
printf 'version: 1\nprofiles:\n  default: {uid_pool: {first: 1900200, count: 8}}\n' > "$WORK/policy2.yaml"
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  sleepy:
    machine: true
    steps:
      - run: |
          trap 'echo "got SIGTERM"; exit 143' TERM
          echo started; for i in $(seq 1 600); do sleep 0.1; done; echo "slept through"
  quick:
    machine: true
    steps:
      - run: sleep 2; echo "quick done"
YAML

# Cancel: the heartbeat's answer cancels the job (within 15 s + grace).
agent_config r1
start_agent r1 --drain-grace 60
A1=$AGENT_PID
id=$(submit "$WORK/src/config.yml" --job sleepy)
wait_for '^started$' logs_of "$id"
"$GATEHOUSE_DISPATCH" cancel "$id" --db "$DB" > /dev/null
wait_for '^(completed|canceled)' state_of "$id"
logs_of "$id" | grep -q 'slept through' && fail "the canceled job ran to its end"
logs_of "$id" | grep -qx 'got SIGTERM' || fail "the job did not get SIGTERM before being killed"

# A duplicate runner name refuses to start, saying why.
set +e
timeout 20 "$GATEHOUSE" serve --config "$WORK/agent-r1.yaml" --runner-lock-dir "$WORK/runners" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 4
expect_out 'another agent named `r1` is already running on this host'

# A second agent with an overlapping uid pool is refused; a disjoint one runs.
agent_config r2
set +e
timeout 20 "$GATEHOUSE" serve --config "$WORK/agent-r2.yaml" --runner-lock-dir "$WORK/runners" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 4
expect_out 'uid pool 1900100-1900107 overlaps agent `r1`'
POLICY="$WORK/policy2.yaml" agent_config r2
start_agent r2
A2=$AGENT_PID
ida=$(submit "$WORK/src/config.yml" --job quick)
idb=$(submit "$WORK/src/config.yml" --job quick)
wait_for '^completed$' state_of "$ida"
wait_for '^completed$' state_of "$idb"
[ "$(outcome_of "$ida")" = passed ] || fail "task a did not pass"
[ "$(outcome_of "$idb")" = passed ] || fail "task b did not pass"

# Drain: SIGTERM while a job runs lets it finish; nothing new is claimed.
kill -TERM "$A2"
wait "$A2" || true
id=$(submit "$WORK/src/config.yml" --job quick)
wait_for '^running$' state_of "$id"
sleep 0.5
kill -TERM "$A1"
idq=$(submit "$WORK/src/config.yml" --job quick)
wait "$A1" && rc=0 || rc=$?
[ "$rc" = 0 ] || fail "drained agent exited $rc"
[ "$(outcome_of "$id")" = passed ] || fail "the job running at SIGTERM did not finish"
[ "$(state_of "$idq")" = queued ] || fail "a draining agent claimed a new task"

# A second SIGTERM cancels at once.
start_agent r1 --drain-grace 600
A1=$AGENT_PID
wait_for '^completed$' state_of "$idq"
id=$(submit "$WORK/src/config.yml" --job sleepy)
wait_for '^started$' logs_of "$id"
kill -TERM "$A1"; sleep 0.5; kill -TERM "$A1"
for _ in $(seq 150); do kill -0 "$A1" 2> /dev/null || break; sleep 0.2; done
kill -0 "$A1" 2> /dev/null && fail "a second SIGTERM did not stop the agent"
[ "$(outcome_of "$id")" = canceled ] || fail "the job was not reported canceled"

# Idle timeout: an agent with nothing to do stops by itself.
agent_config r1 "idle_timeout: 2s"
start_agent r1
A1=$AGENT_PID
for _ in $(seq 50); do kill -0 "$A1" 2> /dev/null || break; sleep 0.2; done
kill -0 "$A1" 2> /dev/null && fail "idle_timeout did not stop the agent"
wait "$A1" && rc=0 || rc=$?
[ "$rc" = 0 ] || fail "idle agent exited $rc"
grep -q 'idle for runner.idle_timeout' "$WORK/agent-r1.log" || fail "the idle stop was not logged"

# The watermark: no claim while the disk is below min_free_space.
agent_config r1 "min_free_space: 1000T" "idle_timeout: 4s"
id=$(submit "$WORK/src/config.yml" --job quick)
start_agent r1
wait "$AGENT_PID" || true
grep -q 'not claiming: only .* free under .*below runner.min_free_space' "$WORK/agent-r1.log" ||
  fail "the watermark reason was not logged"
[ "$(state_of "$id")" = queued ] || fail "a task was claimed below the watermark"
echo ok

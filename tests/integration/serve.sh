#!/bin/bash
# gatehouse serve end to end over real TLS on loopback: a job submitted to
# gatehouse-dispatch is claimed, admitted through the policy's rules, run in
# the sandbox, and its log, step events and result arrive at the control
# plane; single-task mode exits after one task; the runner token never
# reaches the job. Then a continuous agent: SIGHUP reloads the policy and
# keeps the old one when the new one is invalid; the metrics endpoint
# counts jobs; the runner's max_run_time ends a job as timed_out.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1
cat > "$WORK/policy.yaml" <<'YAML'
version: 1
profiles:
  untrusted:
    environment: {set: {WHICH: untrusted}}
  main:
    environment: {set: {WHICH: main}}
rules:
  - match: {trigger: fork_pull_request}
    profile: untrusted
  - match: {branch: main, trigger: push}
    profile: main
  - profile: untrusted
YAML
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - checkout
      - run:
          name: say hello
          command: |
            echo "hello from $WHICH"
            for i in $(seq 1 200); do echo "line $i"; done
            env | grep -c -i -E 'token|credentials' || true
            cat /proc/1/environ 2> /dev/null | tr '\0' '\n' | grep -c GATEHOUSE || true
      - run: exit 3
YAML
id=$(submit "$WORK/src/config.yml" --job build --project acme/app --branch main --trigger push)
[ -n "$id" ] || fail "submit printed no task id"
agent_config r1 "mode: single-task"
# Through `gatehouse serve`, which execs gatehouse-agent.
"$GATEHOUSE" serve --config "$WORK/agent-r1.yaml" --runner-lock-dir "$WORK/runners" >> "$WORK/agent-r1.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
wait_for '^completed$' state_of "$id"
# single-task: the agent exits by itself after its one task.
for _ in $(seq 50); do kill -0 "$AGENT_PID" 2> /dev/null || break; sleep 0.2; done
kill -0 "$AGENT_PID" 2> /dev/null && fail "single-task agent still running after its task"
wait "$AGENT_PID" && rc=0 || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/agent-r1.log" >&2; fail "agent exited $rc"; }

status_of "$id" > "$OUT"
expect_out 'failed'
expect_out 'exit.*1'
logs_of "$id" > "$OUT"
expect_out '^hello from main$'
expect_out '^line 1$'
expect_out '^line 200$'
[ "$(grep -c '^line [0-9]*$' "$OUT")" = 200 ] || fail "expected 200 lines, once each"
grep -q "$(cut -d' ' -f2 "$WORK/runner-tokens")" "$OUT" && fail "the runner token appears in the job's log"
logs_of "$id" --events > "$OUT"
expect_out 'step 1 say hello: finished passed'
expect_out 'step 2 .*finished failed'
# The audit log holds the admission under the task's id.
grep -q '"event":"admitted"' "$GATEHOUSE_AUDIT_LOG" || fail "no admitted record"
grep -q "\"task_id\":\"$id\"" "$GATEHOUSE_AUDIT_LOG" || fail "audit records do not carry the task id"
"$GATEHOUSE" audit verify "$GATEHOUSE_AUDIT_LOG" > /dev/null || fail "audit chain broken"
grep -q "$(cut -d' ' -f2 "$WORK/runner-tokens")" "$WORK/agent-r1.log" && fail "the runner token appears in the agent's log"

# Continuous, with metrics on a unix socket and a 3 s max_run_time.
cat > "$WORK/src2.yml" <<'YAML'
version: 2.1
jobs:
  which:
    machine: true
    steps:
      - run: echo "profile says $WHICH"
  forever:
    machine: true
    steps:
      - run: sleep 600
YAML
agent_config r1 "max_run_time: 3s"
# The agent (user gatehouse) makes the socket: its folder must be the agent's.
mkdir -p "$WORK/run" && chown gatehouse: "$WORK/run"
printf 'metrics:\n  listen: unix:%s\n' "$WORK/run/metrics.sock" >> "$WORK/agent-r1.yaml"
start_agent r1
a=$(submit "$WORK/src2.yml" --job which --branch main --trigger push)
wait_for '^completed$' state_of "$a"
logs_of "$a" | grep -q '^profile says main$' || fail "first job did not run under the policy"
cp "$WORK/policy.yaml" "$WORK/policy.good"
printf 'version: 1\nprofiles:\n  main: {environment: {set: {WHICH: 1}}}\n  nope: {memory: 1}\n' > "$WORK/policy.yaml"
kill -HUP "$AGENT_PID"
wait_for 'policy reload refused, the previous policy stays in force' cat "$WORK/agent-r1.log"
b=$(submit "$WORK/src2.yml" --job which --branch main --trigger push)
wait_for '^completed$' state_of "$b"
logs_of "$b" | grep -q '^profile says main$' || fail "an invalid reload replaced the policy"
sed 's/WHICH: main/WHICH: reloaded/' "$WORK/policy.good" > "$WORK/policy.yaml"
kill -HUP "$AGENT_PID"
wait_for 'policy reloaded' cat "$WORK/agent-r1.log"
c=$(submit "$WORK/src2.yml" --job which --branch main --trigger push)
wait_for '^completed$' state_of "$c"
logs_of "$c" | grep -q '^profile says reloaded$' || fail "a valid reload did not take effect"
d=$(submit "$WORK/src2.yml" --job forever)
wait_for '^completed$' state_of "$d"
[ "$(outcome_of "$d")" = timed_out ] || fail "max_run_time: outcome $(outcome_of "$d")"
curl -s --unix-socket "$WORK/run/metrics.sock" http://agent/metrics > "$OUT"
expect_out '^gatehouse_jobs_total\{outcome="passed"\} 3$'
expect_out '^gatehouse_jobs_total\{outcome="timed_out"\} 1$'
expect_out '^gatehouse_jobs_running 0$'
expect_out '^gatehouse_log_bytes_total [1-9]'
expect_out '^gatehouse_sandbox_setup_seconds_count 4$'
curl -s --unix-socket "$WORK/run/metrics.sock" http://agent/health > "$OUT"
expect_out '"status":"ok"'
echo ok

#!/bin/bash
# A job file that crashes or stalls the parse child costs that one job: it
# is refused (exit 4, the parser's failure named, an audit record), none of
# its steps run, and the broker goes on: the next job runs, under
# `gatehouse run` and under `gatehouse serve`, where the broker daemon keeps
# its pid and runs the next task. The parse child is the real one, behind a
# forwarder that misbehaves only on a marker word in the job file.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
: "${PARSE_FORWARDER:?PARSE_FORWARDER must point at the test parser}"
export GATEHOUSE_PARSE="$PARSE_FORWARDER"

crash=$(job crash <<'YAML'
# PARSER-CRASH-ME
steps:
  - run: echo MUST-NOT-RUN
YAML
)
run_job "$crash"
expect_rc 4
expect_out 'the job parser crashed \(killed by signal 11\); the job is refused'
expect_no_out '==>'
expect_no_out 'MUST-NOT-RUN'
grep '"event":"refused"' "$GATEHOUSE_AUDIT_LOG" | grep -q 'the job parser crashed' ||
  fail "no refused audit record names the parser's crash"

fine=$(job fine <<'YAML'
steps:
  - run: echo parsed-and-ran
YAML
)
run_job "$fine"
expect_rc 0
expect_out '^parsed-and-ran$'

hang=$(job hang <<'YAML'
# PARSER-HANG-ME
steps:
  - run: echo MUST-NOT-RUN
YAML
)
start=$(date +%s)
run_job "$hang"
took=$(($(date +%s) - start))
expect_rc 4
expect_out 'the job parser did not answer within 10 s; the job is refused'
expect_no_out 'MUST-NOT-RUN'
[ "$took" -lt 60 ] || fail "the stalled parser held the job for ${took}s"
pgrep -u 65534 -x parse_forwarder > /dev/null && fail "the stalled parser outlived its job"

# Under serve: the task is completed as infra_error with the reason; the
# broker daemon (AGENT_PID, the pid `gatehouse serve` keeps) runs the next.
. "$(dirname "$0")/../serve_lib.sh"
serve_setup r1
printf 'version: 1\nprofiles:\n  default: {}\n' > "$WORK/policy.yaml"
mkdir -p "$WORK/src"
cp "$crash" "$WORK/src/crash.yml"
printf 'version: 2.1\njobs:\n  build:\n    machine: true\n    steps:\n      - run: echo task-ran\n' > "$WORK/src/fine.yml"
agent_config r1
start_agent r1
a=$(submit "$WORK/src/crash.yml" --job crash)
wait_for '^completed$' state_of "$a"
[ "$(outcome_of "$a")" = infra_error ] || fail "the crashing task's outcome: $(outcome_of "$a")"
status_of "$a" | grep -q 'the job parser crashed' || fail "the task's reason does not name the crash: $(status_of "$a")"
b=$(submit "$WORK/src/fine.yml" --job build)
wait_for '^completed$' state_of "$b"
[ "$(outcome_of "$b")" = passed ] || fail "the next task did not pass: $(outcome_of "$b")"
logs_of "$b" | grep -q '^task-ran$' || fail "the next task's output is missing"
kill -0 "$AGENT_PID" 2> /dev/null || fail "the broker daemon is gone"
[ "$(grep -c 'broker: broker for' "$WORK/agent-r1.log")" = 1 ] || fail "the broker started more than once"
echo ok

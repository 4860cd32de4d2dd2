#!/bin/bash
# What `gatehouse serve` checks on the host before its agent starts, and
# the settings an operator gives it in the config:
#  - a runner.working_directory under a folder the jobs' uids cannot pass
#    through (a `mktemp -d`, 0700), or that others than root may change, is
#    refused at start, naming the folder, its mode and owner and the fix
#    (instead of every job ending infra_error); a sticky folder above it is
#    fine; `gatehouse run --work-root` gives the same error;
#  - runner.lock_directory holds the runner locks (--runner-lock-dir
#    overrides it), and a lock folder others may write is refused;
#  - runner.drain_grace is the time running jobs get after SIGTERM
#    (--drain-grace overrides it).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1
printf 'version: 1\nprofiles:\n  default: {}\n' > "$WORK/policy.yaml"
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  quick:
    machine: true
    steps:
      - run: echo quick done
  sleepy:
    machine: true
    steps:
      - run: |
          trap 'echo "got SIGTERM"; exit 143' TERM
          echo started; for i in $(seq 1 600); do sleep 0.1; done; echo "slept through"
YAML

# serve_now [args]: `gatehouse serve` with agent-r1.yaml in the foreground
# (it is expected to refuse), output in $OUT, status in $RC.
serve_now() {
  set +e
  timeout 20 "$GATEHOUSE" serve --config "$WORK/agent-r1.yaml" "$@" > "$OUT" 2>&1
  RC=$?
  set -e
}
# with_workdir DIR: agent-r1.yaml with runner.working_directory DIR.
with_workdir() {
  agent_config r1
  sed -i "s|^  working_directory: .*|  working_directory: $1|" "$WORK/agent-r1.yaml"
}

# 1. A working directory inside a `mktemp -d` folder (0700, root's).
D=$(mktemp -d "$WORK/wd.XXXXXX")
[ "$(stat -c %a "$D")" = 700 ] || fail "mktemp -d made $D with mode $(stat -c %a "$D")"
with_workdir "$D/work"
serve_now --runner-lock-dir "$WORK/runners"
expect_rc 4
expect_out "runner.working_directory: the work root $D/work is under $D, which \(mode 0700, owner root\) cannot be passed through by the jobs' uids"
expect_out "Run \`chmod o\\+x $D\`, or choose another work root \(runner.working_directory for \`gatehouse serve\`"
expect_no_out 'agent `r1` started'
[ ! -e "$D/work" ] || fail "the refused broker made $D/work"

# 2. Writable by others (not sticky): refused; sticky (as /tmp): fine.
chmod 0777 "$D"
serve_now --runner-lock-dir "$WORK/runners"
expect_rc 4
expect_out "the work root $D/work is under $D, which \(mode 0777, owner root\) can be written by users other than root"
expect_out "Run \`chmod go-w $D\`"
chmod 0755 "$D"
chown nobody "$D"
serve_now --runner-lock-dir "$WORK/runners"
expect_rc 4
expect_out "under $D, which \(mode 0755, owner uid $(id -u nobody)\) belongs to a user other than root"
expect_out "Run \`chown root: $D\`"
chown root "$D"
chmod 1777 "$D"
work_root_mount "$D/work"
id=$(submit "$WORK/src/config.yml" --job quick)
start_agent r1
wait_for '^completed$' state_of "$id"
[ "$(outcome_of "$id")" = passed ] || { cat "$WORK/agent-r1.log" >&2; fail "the job under a sticky folder did not pass"; }
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent did not drain cleanly"

# 3. `gatehouse run --work-root` under a 0700 folder: the same error.
D2=$(mktemp -d "$WORK/wr.XXXXXX")
run_job "$WORK/src/config.yml" --job quick --work-root "$D2/work"
expect_rc 4
expect_out "the work root $D2/work is under $D2, which \(mode 0700, owner root\) cannot be passed through by the jobs' uids"
expect_out "Run \`chmod o\\+x $D2\`"
expect_no_out 'quick done'

# 4. runner.lock_directory, and --runner-lock-dir over it.
agent_config r1 "lock_directory: $WORK/locks" "drain_grace: 2s"
start_agent_here() {  # like start_agent, without --runner-lock-dir
  "$GATEHOUSE" serve --config "$WORK/agent-r1.yaml" "$@" >> "$WORK/agent-r1.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
}
: > "$WORK/agent-r1.log"
start_agent_here
wait_for 'agent `r1` started' cat "$WORK/agent-r1.log"
jq -e '.runner == "r1"' "$WORK/locks/r1.lock" > /dev/null || fail "no runner lock in runner.lock_directory"
# 5. runner.drain_grace: SIGTERM gives the running job 2 s, then cancels it.
id=$(submit "$WORK/src/config.yml" --job sleepy)
wait_for '^started$' logs_of "$id"
kill -TERM "$AGENT_PID"
wait_for 'running tasks have 2s' cat "$WORK/agent-r1.log"
wait_for '^(completed|canceled)' state_of "$id"
[ "$(outcome_of "$id")" = canceled ] || fail "the job was not canceled after runner.drain_grace (outcome $(outcome_of "$id"))"
logs_of "$id" | grep -q 'slept through' && fail "the job ran to its end despite runner.drain_grace"
wait "$AGENT_PID" || true
# The flags win over both keys.
rm -rf "$WORK/locks"
: > "$WORK/agent-r1.log"
start_agent_here --runner-lock-dir "$WORK/runners" --drain-grace 60
wait_for 'agent `r1` started' cat "$WORK/agent-r1.log"
[ ! -e "$WORK/locks" ] || fail "--runner-lock-dir did not override runner.lock_directory"
jq -e '.runner == "r1"' "$WORK/runners/r1.lock" > /dev/null || fail "no runner lock in --runner-lock-dir"
kill -TERM "$AGENT_PID"
wait_for 'running tasks have 60s' cat "$WORK/agent-r1.log"
wait "$AGENT_PID" || true
# A lock folder others may write is refused.
mkdir -p "$WORK/locks" && chmod 0777 "$WORK/locks"
serve_now
expect_rc 4
expect_out "the runner lock folder $WORK/locks \(mode 0777, owner uid 0\) can be changed by users other than root"
echo ok

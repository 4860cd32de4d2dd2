#!/bin/bash
# `gatehouse serve` with no policy file at the default path starts under the
# built-in restrictive profile (the one `gatehouse run` uses without
# --policy), says so and names the file that would replace it; the jobs'
# audit records carry the built-in policy's digest; SIGHUP loads the file
# once it is written. A policy path the config names that does not exist
# is an error naming it.
#
# The default path is /etc/gatehouse/policy.yaml: the test runs in a mount
# namespace of its own, with an empty tmpfs on /etc/gatehouse, so the
# host's file (if any) is neither seen nor touched. /etc/gatehouse is made
# on the host if missing (an installed gatehouse has it).
if [ -z "${GH_TEST_OWN_MOUNT_NS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (run the suite as root)" >&2; exit 77; }
  command -v unshare > /dev/null || { echo "SKIP: needs unshare (util-linux)" >&2; exit 77; }
  [ -d /etc/gatehouse ] || mkdir -m 755 /etc/gatehouse
  exec unshare --mount --propagation private env GH_TEST_OWN_MOUNT_NS=1 "$0" "$@"
fi
mount -t tmpfs -o mode=755 gatehouse-test /etc/gatehouse || { echo "FAIL: cannot mount a tmpfs on /etc/gatehouse" >&2; exit 1; }
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  which:
    machine: true
    steps:
      - run: echo "policy says ${WHICH:-built-in}"
YAML

# The same job through `gatehouse run` without --policy: the digest every
# record of the built-in policy carries.
run_job "$WORK/src/config.yml" --audit-log "$WORK/audit-run.jsonl"
expect_rc 0
builtin_digest=$(jq -r 'select(.event == "admitted") | .policy_digest' "$WORK/audit-run.jsonl")
[ "$(jq -r 'select(.event == "admitted") | .policy' "$WORK/audit-run.jsonl")" = "(built-in)" ] ||
  fail "gatehouse run without --policy did not audit the built-in policy"
[ ${#builtin_digest} = 64 ] || fail "no digest in the run's admitted record"

# No `policy` key: the default path, which has no file here.
agent_config r1
sed -i '/^policy:/d' "$WORK/agent-r1.yaml"
grep -q policy "$WORK/agent-r1.yaml" && fail "the config still names a policy"
id=$(submit "$WORK/src/config.yml" --job which)
start_agent r1
wait_for '^completed$' state_of "$id"
[ "$(outcome_of "$id")" = passed ] || { cat "$WORK/agent-r1.log" >&2; fail "the job under the built-in policy did not pass"; }
logs_of "$id" | grep -q '^policy says built-in$' || fail "the job did not run under the built-in profile"
cp "$WORK/agent-r1.log" "$OUT"
expect_out 'no policy file at /etc/gatehouse/policy.yaml \(the default `policy`\): jobs run under the built-in restrictive profile'
expect_out "started: policy \(built-in\) digest $builtin_digest: there is no file at /etc/gatehouse/policy.yaml; write one there and send SIGHUP"
expect_out "policy digest $builtin_digest"
jq -c "select(.task_id == \"$id\")" "$GATEHOUSE_AUDIT_LOG" > "$WORK/task-records"
[ -s "$WORK/task-records" ] || fail "the task left no audit records"
jq -e -s "all(.[]; .policy == \"(built-in)\" and .policy_digest == \"$builtin_digest\")" "$WORK/task-records" > /dev/null ||
  fail "the task's records do not carry the built-in policy and its digest: $(cat "$WORK/task-records")"

# The file appears; SIGHUP loads it.
printf 'version: 1\nprofiles:\n  default: {environment: {set: {WHICH: the-file}}}\n' > /etc/gatehouse/policy.yaml
kill -HUP "$AGENT_PID"
wait_for "policy reloaded: /etc/gatehouse/policy.yaml digest [0-9a-f]{64} \(was $builtin_digest\)" cat "$WORK/agent-r1.log"
id2=$(submit "$WORK/src/config.yml" --job which)
wait_for '^completed$' state_of "$id2"
logs_of "$id2" | grep -q '^policy says the-file$' || fail "the reloaded policy file did not take effect"
file_digest=$("$GATEHOUSE" policy digest /etc/gatehouse/policy.yaml | cut -d' ' -f1)
[ "$(jq -r "select(.task_id == \"$id2\" and .event == \"admitted\") | .policy_digest" "$GATEHOUSE_AUDIT_LOG")" = "$file_digest" ] ||
  fail "the second task was not audited under the file's digest $file_digest"
# The file removed again: a reload goes back to the built-in policy.
rm /etc/gatehouse/policy.yaml
kill -HUP "$AGENT_PID"
wait_for "policy reloaded: \(built-in\) digest $builtin_digest: there is no file at /etc/gatehouse/policy.yaml" cat "$WORK/agent-r1.log"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || true

# A policy path the config names must exist: not starting, naming it.
agent_config r1
sed -i "s|^policy: .*|policy: $WORK/no-such-policy.yaml|" "$WORK/agent-r1.yaml"
set +e
timeout 20 "$GATEHOUSE" serve --config "$WORK/agent-r1.yaml" --runner-lock-dir "$WORK/runners" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 2
expect_out "the policy file $WORK/no-such-policy.yaml \(\`policy\` in the configuration\) does not exist"
# So must the default path when the config names it.
sed -i "s|^policy: .*|policy: /etc/gatehouse/policy.yaml|" "$WORK/agent-r1.yaml"
set +e
timeout 20 "$GATEHOUSE" serve --config "$WORK/agent-r1.yaml" --runner-lock-dir "$WORK/runners" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 2
expect_out 'the policy file /etc/gatehouse/policy.yaml \(`policy` in the configuration\) does not exist'
echo ok

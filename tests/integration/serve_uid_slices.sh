#!/bin/bash
# Two agents on one host with ONE policy file: each takes its own slice of
# the policy's uid pool (runner.uid_slice), so both start, and each runs
# its jobs only as uids of its slice. A slice that overlaps a live agent's
# is refused at start, naming both ranges; so is a policy reload that
# would make an agent's pool overlap another's; a pool too small for the
# slices is refused too.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1 r2 r3
# 8 uids: slice 0 of 2 is 1900400-1900403, slice 1 of 2 is 1900404-1900407.
printf 'version: 1\nprofiles:\n  default: {uid_pool: {first: 1900400, count: 8}}\n' > "$WORK/policy.yaml"
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  who:
    machine: true
    steps:
      - run: |
          echo "uid_map: $(cat /proc/self/uid_map)"
          sleep 3
YAML

refused() {  # refused NAME: `gatehouse serve` with agent-NAME.yaml, expected to refuse
  set +e
  timeout 20 "$GATEHOUSE" serve --config "$WORK/agent-$1.yaml" --runner-lock-dir "$WORK/runners" > "$OUT" 2>&1
  RC=$?
  set -e
}

agent_config r1 "slots: 2" "uid_slice: {index: 0, count: 2}"
agent_config r2 "slots: 2" "uid_slice: {index: 1, count: 2}"
start_agent r1 --audit-log "$WORK/audit-r1.jsonl"
A1=$AGENT_PID
start_agent r2 --audit-log "$WORK/audit-r2.jsonl"
A2=$AGENT_PID
wait_for 'agent `r1` started' cat "$WORK/agent-r1.log"
wait_for 'agent `r2` started' cat "$WORK/agent-r2.log"

# Four 3-second jobs; each agent holds at most two at once, so both run some.
ids=()
for _ in 1 2 3 4; do ids+=("$(submit "$WORK/src/config.yml" --job who)"); done
for id in "${ids[@]}"; do
  wait_for '^completed$' state_of "$id"
  [ "$(outcome_of "$id")" = passed ] || fail "task $id did not pass: $(logs_of "$id")"
done
# in_slice LOG FIRST LAST: every sandbox record of LOG has a host uid in
# [FIRST, LAST], and there is at least one.
in_slice() {
  local uids
  uids=$(jq -r 'select(.event == "sandbox") | .sandbox.host_uid' "$1")
  [ -n "$uids" ] || fail "no job ran under $1"
  for u in $uids; do
    [ "$u" -ge "$2" ] && [ "$u" -le "$3" ] || fail "a job of $1 ran as uid $u, outside its slice $2-$3"
  done
  echo "$1: uids $(echo $uids)"
}
in_slice "$WORK/audit-r1.jsonl" 1900400 1900403
in_slice "$WORK/audit-r2.jsonl" 1900404 1900407
# The jobs saw the same uids (the uid_map they printed).
for id in "${ids[@]}"; do
  logs_of "$id" > "$WORK/log-$id"
  u=$(host_uid_of "$WORK/log-$id")
  [ -n "$u" ] && [ "$u" -ge 1900400 ] && [ "$u" -le 1900407 ] || fail "task $id ran as uid '$u', outside the pool"
done
[ "$(cat "$WORK"/runners/r1.lock | jq -c .uid_pools)" = '[[1900400,1900404]]' ] || fail "r1's lock does not claim its slice"

# A third agent on the same slice as r2, or on the whole pool, is refused.
agent_config r3 "uid_slice: {index: 1, count: 2}"
refused r3
expect_rc 4
expect_out 'its uid pool 1900404-1900407 overlaps agent `r2`.s 1900404-1900407: give each agent on this host its own runner.uid_slice'
agent_config r3
refused r3
expect_rc 4
expect_out 'its uid pool 1900400-1900407 overlaps agent `r(1|2)`'
# More slices than the pool has uids.
agent_config r3 "uid_slice: {index: 0, count: 16}"
refused r3
expect_rc 2
expect_out 'profile `default`: a uid pool of 8 uids cannot be split into runner.uid_slice.count 16 slices'

# A reload that would make r3's pool overlap r1's keeps the old policy.
printf 'version: 1\nprofiles:\n  default: {uid_pool: {first: 1900420, count: 4}}\n' > "$WORK/policy3.yaml"
POLICY="$WORK/policy3.yaml" agent_config r3
start_agent r3
A3=$AGENT_PID
wait_for 'agent `r3` started' cat "$WORK/agent-r3.log"
printf 'version: 1\nprofiles:\n  default: {uid_pool: {first: 1900402, count: 4}}\n' > "$WORK/policy3.yaml"
kill -HUP "$A3"
wait_for 'policy reload refused, the previous policy stays in force: the new policy would clash with another agent on this host: its uid pool 1900402-1900405 overlaps agent `r1`' cat "$WORK/agent-r3.log"
[ "$(jq -c .uid_pools "$WORK/runners/r3.lock")" = '[[1900420,1900424]]' ] || fail "a refused reload changed r3's claim"
printf 'version: 1\nprofiles:\n  default: {uid_pool: {first: 1900430, count: 4}}\n' > "$WORK/policy3.yaml"
kill -HUP "$A3"
wait_for 'policy reloaded' cat "$WORK/agent-r3.log"
[ "$(jq -c .uid_pools "$WORK/runners/r3.lock")" = '[[1900430,1900434]]' ] || fail "a reload did not update r3's claim"
echo ok

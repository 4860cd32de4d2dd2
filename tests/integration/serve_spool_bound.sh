#!/bin/bash
# The spool's bound, end to end: the control plane is down while a job
# prints three times the agent's spool_limit (1M). The agent keeps the
# head and the tail, marks the gap with how much it dropped, and delivers
# all of that, in order, once the control plane is back; the job still
# passes. The head written before the outage arrives too.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
need_root
make_ca
runner_token r1
start_dispatch
printf 'version: 1\nprofiles:\n  default: {}\n' > "$WORK/policy.yaml"
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  loud:
    machine: true
    steps:
      - run: |
          echo before-the-outage
          sleep 3
          seq -f 'filler %08g ....................................' 1 60000
          echo after-the-flood
YAML
agent_config r1 "spool_limit: 1M"
start_agent r1
id=$(submit "$WORK/src/config.yml" --job loud)
wait_for '^before-the-outage$' logs_of "$id"
kill -9 "$DISPATCH_PID"
wait "$DISPATCH_PID" 2> /dev/null || true
wait_for "task $id: passed" cat "$WORK/agent-r1.log"
start_dispatch
wait_for '^completed$' state_of "$id"
logs_of "$id" > "$OUT"
[ "$(outcome_of "$id")" = passed ] || fail "the job was not reported passed"
expect_out '^before-the-outage$'
expect_out '^filler 00000001 '
expect_out '^filler 00060000 '
expect_out '^after-the-flood$'
# Each time the bound bites again the middle goes; each gap says how much.
gap=$(sed -n 's/^\[gatehouse-dispatch: \([0-9]*\) bytes of output were dropped here by the agent.s spool limit\]$/\1/p' "$OUT" |
  awk '{s += $1} END {print s + 0}')
[ "$gap" -gt 1000000 ] || fail "no gap record for the dropped middle (got ${gap} bytes)"
# In order, once: the filler lines that arrived are increasing, without repeats.
grep '^filler ' "$OUT" | awk '{print $2 + 0}' > "$WORK/nums"
sort -n -u -c "$WORK/nums" 2> /dev/null || fail "filler lines repeated or out of order"
kept=$(wc -l < "$WORK/nums")
[ "$kept" -lt 60000 ] || fail "nothing was dropped: the bound did not bite"
[ "$kept" -gt 1000 ] || fail "only $kept filler lines kept: the head and tail should hold about 1M"
echo "ok: $kept of 60000 filler lines kept, a gap of $gap bytes marked"

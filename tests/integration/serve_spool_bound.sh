#!/bin/bash
# The spool's bound, end to end: the control plane is down while a job
# prints three times the agent's spool_limit (1M). The agent keeps the
# head and the tail, marks the gap with how much it dropped, and delivers
# all of that, in order, once the control plane is back; the job still
# passes. The head written before the outage arrives too. Then a control
# plane that takes smaller requests (413 too_large): the agent splits its
# batches until they fit, and every line arrives once, in order.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1
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
  fast:
    machine: true
    steps:
      - run: head -c 716800 /dev/zero | tr '\0' y | fold -w 999
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
# In order, once: the whole filler lines that arrived are increasing,
# without repeats (a gap cuts where the bound fell, mid-line).
grep -E '^filler [0-9]{8} \.{36}$' "$OUT" | awk '{print $2 + 0}' > "$WORK/nums"
sort -n -u -c "$WORK/nums" 2> /dev/null || fail "filler lines repeated or out of order"
kept=$(wc -l < "$WORK/nums")
[ "$kept" -lt 60000 ] || fail "nothing was dropped: the bound did not bite"
[ "$kept" -gt 1000 ] || fail "only $kept filler lines kept: the head and tail should hold about 1M"
echo "spool bound: $kept of 60000 filler lines kept, a gap of $gap bytes marked"

kill -TERM "$DISPATCH_PID"
wait "$DISPATCH_PID" 2> /dev/null || true
start_dispatch --max-request-bytes 131072
id2=$(submit "$WORK/src/config.yml" --job fast)
wait_for '^completed$' state_of "$id2"
logs_of "$id2" > "$OUT"
[ "$(outcome_of "$id2")" = passed ] || fail "the second job was not reported passed"
{ head -c 716800 /dev/zero | tr '\0' y | fold -w 999; echo; } > "$WORK/want"  # its last line has no newline
grep '^y' "$OUT" > "$WORK/got" || true
cmp -s "$WORK/want" "$WORK/got" || fail "with 413s, lines were lost or repeated: $(diff "$WORK/want" "$WORK/got" | head -3)"
grep -q "records was too large" "$WORK/agent-r1.log" || fail "the agent never split a batch (no 413 seen)"
echo ok

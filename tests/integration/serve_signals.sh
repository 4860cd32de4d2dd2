#!/bin/bash
# `gatehouse serve` under restarts, signals and cancels (each part failed
# before its fix):
#  1. an agent killed right after it claimed, restarted only after the job
#     ended (the broker's second crash restart waits 2 s): the task still
#     completes with every line once, in order, and the slot is free again;
#  2. SIGTERM to an idle agent: it exits within ~2 s (the claim's long poll
#     is cut short), and a job queued just after is not claimed;
#  3. a cancel reaches the running job's SIGTERM within 2 s;
#  4. /healthz and /readyz answer (and /readyz says why not while busy);
#  5. a policy that starts requiring signatures, SIGHUP, then an unsigned
#     job at once: refused, every round.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
# On failure, the agent's and the control plane's view too.
fail() {
  echo "FAIL: $*" >&2
  cat "$OUT" >&2 2> /dev/null || true
  grep -v '^$' "$WORK/agent-r1.log" | tail -n 15 >&2
  tail -n 5 "$WORK/dispatch.log" >&2
  exit 1
}
serve_setup r1
printf 'version: 1\nprofiles:\n  default: {uid_pool: {first: 1900300, count: 8}}\n' > "$WORK/policy.yaml"
mkdir -p "$WORK/src" "$WORK/run"
chown gatehouse: "$WORK/run"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  lines:
    machine: true
    steps:
      - run: for i in $(seq 1 300); do echo "line $i"; sleep 0.003; done
  sleepy:
    machine: true
    steps:
      - run: |
          # The marker is built at run time, so the step's echoed command
          # line cannot match it.
          m=got; trap 'echo "$m-sigterm $(date +%s.%N)"; exit 143' TERM
          echo started; for i in $(seq 1 600); do sleep 0.1; done
  quick:
    machine: true
    steps:
      - run: echo quick
YAML
agent_config r1
MPORT=$(free_port)
printf 'metrics:\n  listen: 127.0.0.1:%s\n' "$MPORT" >> "$WORK/agent-r1.yaml"
start_agent r1
B=$AGENT_PID
wait_for 'started: 1 slot' cat "$WORK/agent-r1.log"

# 1. Killed at the claim, twice: the second restart comes after the job's end.
all_lines() { for i in $(seq 1 300); do echo "line $i"; done; }
for round in 1 2; do
  A=$(agent_pid_of "$B")
  id=$(submit "$WORK/src/config.yml" --job lines)
  wait_for "$id: claimed" cat "$WORK/agent-r1.log"
  kill -9 "$A"
  wait_for '^completed$' state_of "$id"
  [ "$(outcome_of "$id")" = passed ] || fail "round $round: the task did not pass after the agent restart: $(outcome_of "$id")"
  # Every line once, in order: records spooled but not marked when the agent
  # died are cut, and the broker's replay spools them again.
  diff <(all_lines) <(logs_of "$id" | grep "^line") > "$OUT" ||
    fail "round $round: the lines did not arrive once each, in order, after the restart"
  wait_for 'started: 1 slot' sh -c "tail -n 3 '$WORK/agent-r1.log'"
done
id=$(submit "$WORK/src/config.yml" --job quick)
wait_for '^completed$' state_of "$id"
[ "$(outcome_of "$id")" = passed ] || fail "the slot was not free after the restarts"

# 4. The probes: ready while idle, not ready while the only slot is busy.
wait_for '"ok":true' curl -s "http://127.0.0.1:$MPORT/readyz"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/healthz")" = 200 ] || fail "/healthz is not 200"

# 3. Cancel: SIGTERM reaches the job within 2 s.
id=$(submit "$WORK/src/config.yml" --job sleepy)
wait_for '^started$' logs_of "$id"
wait_for 'slots are busy' curl -s "http://127.0.0.1:$MPORT/readyz"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz")" = 503 ] || fail "/readyz is not 503 while busy"
t0=$(date +%s.%N)
"$GATEHOUSE_DISPATCH" cancel "$id" --db "$DB" > /dev/null
wait_for '^got-sigterm [0-9]' logs_of "$id"
t1=$(logs_of "$id" | sed -n 's/^got-sigterm \([0-9.]*\)$/\1/p' | head -1)
[ -n "$t1" ] || fail "the job's SIGTERM line has no time"
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a <= 2.0) }' || fail "the cancel took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s to reach the job"
echo "cancel to the job's SIGTERM: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
wait_for '^completed' state_of "$id"
[ "$(outcome_of "$id")" = canceled ] || fail "the canceled task ended $(outcome_of "$id")"

# 5. Reload, then at once an unsigned job: refused every round.
open=$(cat "$WORK/policy.yaml")
for round in 1 2 3; do
  printf 'version: 1\nsignatures: {required: true, trusted_keys: [{name: k, ed25519: "GHwpTk5GJDZRd7J4b6tzq4mB1O0PmiNxu+8Po2VvXq8="}]}\nprofiles:\n  default: {uid_pool: {first: 1900300, count: 8}}\n' > "$WORK/policy.yaml"
  kill -HUP "$B"
  id=$(submit "$WORK/src/config.yml" --job quick)
  wait_for '^completed$' state_of "$id"
  [ "$(outcome_of "$id")" = refused ] || fail "round $round: an unsigned job ran after the reload that requires signatures"
  printf '%s\n' "$open" > "$WORK/policy.yaml"
  kill -HUP "$B"
  wait_for "digest 1775|digest [0-9a-f]+ \(was" sh -c "tail -n 1 '$WORK/agent-r1.log'"
done

# 2. SIGTERM to the idle agent: it ends within ~2 s, and claims nothing after.
sleep 1
t0=$(date +%s%N)
kill -TERM "$B"
sleep 0.5
late=$(submit "$WORK/src/config.yml" --job quick)
wait "$B" && rc=0 || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 0 ] || fail "the drained agent exited $rc"
[ "$ms" -le 2500 ] || fail "the idle agent took $ms ms to end on SIGTERM"
echo "idle agent's exit after SIGTERM: $ms ms (0.5 s of it the test's own wait)"
sleep 1
[ "$(state_of "$late")" = queued ] || fail "a draining agent claimed a task queued after SIGTERM ($(state_of "$late"))"
echo "serve signals: restarts, probes, cancel, reload and drain behave"

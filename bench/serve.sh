#!/bin/bash
# The agent against `gatehouse run`, in one invocation on loopback:
#
#   bench/serve.sh [BUILD_DIR] [RUNS]
#
# 1. claim-to-first-step: from the moment the agent holds a claimed task
#    (its log line "first step started N ms after the claim") against
#    `gatehouse run --stream-fd` from exec to its first step record. The
#    difference is the agent's and the broker's own work: spool, the
#    RunTask request, the per-task broker.
# 2. log throughput: a job printing 16 MiB, from submit until the control
#    plane (gatehouse-dispatch over TLS) holds every byte and the result,
#    against `gatehouse run` of the same job writing to /dev/null.
# 3. job throughput: JOBS one-step jobs (default 20) queued at once and run
#    by the agent (one slot) until the control plane holds every result,
#    against `gatehouse run` of the same job JOBS times one after another.
#    Target: at most 1.5x the time of the local runs. Also printed: the
#    agent's own part, from its first claim to its last result (the submit
#    commands, one process each, compete for the CPU meanwhile).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
RUNS=${2:-11}
GH="$BUILD/gatehouse" DISPATCH="$BUILD/dispatch/gatehouse-dispatch"
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 2; }
# `gatehouse serve` runs its agent as the system user gatehouse (docs/agent.md).
id gatehouse > /dev/null 2>&1 ||
  useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin gatehouse
T=$(mktemp -d /tmp/gatehouse-bench-serve.XXXXXX)
chmod 755 "$T"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; sleep 0.3; kill -TERM "$p" 2>/dev/null || true; done; sleep 2; umount -l "$T/work" 2>/dev/null || true; rm -rf "$T"; true' EXIT
median() { sort -g | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_ms() { date +%s%3N; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -keyout "$T/s.key" -out "$T/s.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$T/san"
openssl x509 -req -in "$T/s.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 1 -extfile "$T/san" -out "$T/s.pem" 2>/dev/null
tok=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
printf 'bench %s\n' "$tok" > "$T/tokens"; printf '%s\n' "$tok" > "$T/token"; chmod 600 "$T/tokens" "$T/token" "$T/s.key"
chmod 644 "$T/ca.pem"  # the agent (user gatehouse) reads it
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$DISPATCH" serve --listen "127.0.0.1:$PORT" --cert "$T/s.pem" --key "$T/s.key" --db "$T/q.db" --runner-tokens "$T/tokens" 2>/dev/null &
PIDS+=($!)
printf 'version: 1\nprofiles:\n  default: {}\n' > "$T/policy.yaml"
mkdir -p "$T/work"
# Work roots must be nosuid,nodev mounts (SECURITY.md, "Job folders").
mount --bind "$T/work" "$T/work" && mount -o remount,bind,nosuid,nodev "$T/work"
cat > "$T/agent.yaml" <<YAML
api: {url: "https://127.0.0.1:$PORT", auth_token_file: $T/token, ca_file: $T/ca.pem}
runner: {name: bench, resource_class: bench/linux, working_directory: $T/work, spool_directory: $T/spool}
policy: $T/policy.yaml
YAML
sleep 0.5
# The broker, which starts the agent; both log to its stderr.
"$GH" serve --config "$T/agent.yaml" --runner-lock-dir "$T/runners" --audit-log "$T/audit.jsonl" 2> "$T/agent.log" &
PIDS+=($!)
export GATEHOUSE_AUDIT_LOG="$T/audit.jsonl"

mkdir -p "$T/job"
cat > "$T/job/config.yml" <<'YAML'
version: 2.1
jobs:
  true:
    machine: true
    steps:
      - run: "true"
  loud:
    machine: true
    steps:
      - run: head -c 16777216 /dev/zero | tr '\0' x | fold -w 99
YAML
state() { "$DISPATCH" status "$1" --db "$T/q.db" | sed -n 's/^state: *//p'; }
wait_done() { while [ "$(state "$1")" != completed ]; do sleep 0.02; done; }

# 1. claim-to-first-step
first_step_run() {  # ms from exec to the first step record of gatehouse run
  python3 - "$GH" "$T/job/config.yml" <<'PY'
import json, os, subprocess, sys, time
r, w = os.pipe()
t0 = time.monotonic()
p = subprocess.Popen([sys.argv[1], "run", sys.argv[2], "--job", "true", "--stream-fd", str(w)], pass_fds=(w,),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(w)
f = os.fdopen(r)
for line in f:
    if json.loads(line).get("type") == "step":
        print(round((time.monotonic() - t0) * 1000, 1)); break
for _ in f: pass
p.wait()
PY
}
: > "$T/lat_run"; : > "$T/lat_agent"
for i in $(seq "$RUNS"); do
  first_step_run >> "$T/lat_run"
  id=$("$DISPATCH" submit "$T/job/config.yml" --job true --db "$T/q.db")
  wait_done "$id"
  sed -n "s/.*task $id: first step started \([0-9]*\) ms after the claim.*/\1/p" "$T/agent.log" >> "$T/lat_agent"
done
lr=$(median < "$T/lat_run"); la=$(median < "$T/lat_agent")
printf 'claim-to-first-step (median of %d): agent %.1f ms, gatehouse run exec-to-first-step %.1f ms, ratio %.2fx\n' \
  "$RUNS" "$la" "$lr" "$(echo "$la/$lr" | bc -l)"

# 2. log throughput (3 rounds, alternating)
: > "$T/tp_run"; : > "$T/tp_serve"
for i in 1 2 3 4 5; do
  a=$(now_ms); "$GH" run "$T/job/config.yml" --job loud > /dev/null 2>&1; b=$(now_ms); echo $((b - a)) >> "$T/tp_run"
  a=$(now_ms); id=$("$DISPATCH" submit "$T/job/config.yml" --job loud --db "$T/q.db"); wait_done "$id"; b=$(now_ms)
  echo $((b - a)) >> "$T/tp_serve"
  got=$("$DISPATCH" logs "$id" --db "$T/q.db" | grep -c '^x*$' || true)
  [ "$got" -ge 169000 ] || { echo "bench: the control plane holds only $got lines of $id" >&2; exit 1; }
done
tr_=$(median < "$T/tp_run"); ts=$(median < "$T/tp_serve")
printf 'log throughput, 16 MiB job (median of 3): through the agent to dispatch %.0f ms (%.1f MiB/s), gatehouse run to /dev/null %.0f ms (%.1f MiB/s), ratio %.2fx of run'"'"'s throughput\n' \
  "$ts" "$(echo "16000/$ts" | bc -l)" "$tr_" "$(echo "16000/$tr_" | bc -l)" "$(echo "$tr_/$ts" | bc -l)"

# 3. job throughput (5 rounds, alternating)
JOBS=${JOBS:-20}
: > "$T/jt_run"; : > "$T/jt_serve"; : > "$T/jt_agent"
for i in 1 2 3; do
  a=$(now_ms)
  for j in $(seq "$JOBS"); do "$GH" run "$T/job/config.yml" --job true > /dev/null 2>&1; done
  b=$(now_ms); echo $((b - a)) >> "$T/jt_run"
  a=$(now_ms)
  ids=()
  for j in $(seq "$JOBS"); do ids+=("$("$DISPATCH" submit "$T/job/config.yml" --job true --db "$T/q.db")"); done
  # One slot takes them in order: the last one's result ends the run (the
  # status of each is checked after the clock stops).
  wait_done "${ids[-1]}"
  b=$(now_ms); echo $((b - a)) >> "$T/jt_serve"
  for id in "${ids[@]}"; do wait_done "$id"; done
  # The agent's own part: from its claim of the first to the last result in
  # its spool (its log's timestamps), without the submit commands' cost.
  stamp() { date -d "$(sed -n "s/^\([^ ]*\) info task $1: $2.*/\1/p" "$T/agent.log" | head -1)" +%s%3N; }
  echo $(( $(stamp "${ids[-1]}" passed) - $(stamp "${ids[0]}" claimed) )) >> "$T/jt_agent"
done
jr=$(median < "$T/jt_run"); js=$(median < "$T/jt_serve"); ja=$(median < "$T/jt_agent")
printf 'job throughput, %d one-step jobs (median of 5): through the agent %.0f ms (%.1f jobs/s), gatehouse run one after another %.0f ms (%.1f jobs/s), ratio %.2fx of run'"'"'s time\n' \
  "$JOBS" "$js" "$(echo "$JOBS*1000/$js" | bc -l)" "$jr" "$(echo "$JOBS*1000/$jr" | bc -l)" "$(echo "$js/$jr" | bc -l)"
printf 'job throughput, the agent alone (its first claim to its last result): %.0f ms, ratio %.2fx of run'"'"'s time\n' \
  "$ja" "$(echo "$ja/$jr" | bc -l)"

# Helpers for the agent's end-to-end tests: a test CA and server
# certificate made here, a gatehouse-dispatch on a free loopback port over
# real TLS, and agents configured against it. Sourced after lib.sh.
: "${GATEHOUSE_AGENT:?GATEHOUSE_AGENT must point at gatehouse-agent}"
: "${GATEHOUSE_DISPATCH:?GATEHOUSE_DISPATCH must point at gatehouse-dispatch}"
command -v openssl > /dev/null || skip "needs the openssl command to make a test CA"
DB="$WORK/dispatch.db"
PIDS=()
# Two SIGTERMs cancel an agent's jobs at once; its `gatehouse run` children
# must be gone before $WORK is removed, so -9 is the last resort only.
cleanup_serve() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2> /dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  lib_cleanup
}
trap cleanup_serve EXIT

make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=gatehouse-test-ca \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2> /dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" 2> /dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' > "$WORK/san.ext"
  openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial -days 2 \
    -extfile "$WORK/san.ext" -out "$WORK/server.pem" 2> /dev/null
  chmod 600 "$WORK/server.key"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_dispatch [serve args]: (re)starts the control plane on $PORT (chosen once).
start_dispatch() {
  : "${PORT:=$(free_port)}"
  "$GATEHOUSE_DISPATCH" serve --listen "127.0.0.1:$PORT" --cert "$WORK/server.pem" --key "$WORK/server.key" \
    --db "$DB" --runner-tokens "$WORK/runner-tokens" "$@" > "$WORK/dispatch.log" 2>&1 &
  DISPATCH_PID=$!
  PIDS+=("$DISPATCH_PID")
  for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$WORK/ca.pem" "https://127.0.0.1:$PORT/" && return 0
    sleep 0.1
  done
  cat "$WORK/dispatch.log" >&2
  fail "gatehouse-dispatch did not start"
}

# runner_token NAME: makes a token for NAME, known to dispatch and the agent.
runner_token() {
  local t
  t=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
  printf '%s %s\n' "$1" "$t" >> "$WORK/runner-tokens"
  chmod 600 "$WORK/runner-tokens"
  printf '%s\n' "$t" > "$WORK/token-$1"
  chmod 600 "$WORK/token-$1"
}

# agent_config NAME [extra runner: lines...]: writes $WORK/agent-NAME.yaml.
agent_config() {
  local name=$1
  shift
  mkdir -p "$WORK/spool-$name"
  work_root_mount "$WORK/work-$name"
  {
    printf 'api:\n  url: https://127.0.0.1:%s\n  auth_token_file: %s\n  ca_file: %s\n' \
      "$PORT" "$WORK/token-$name" "$WORK/ca.pem"
    printf 'runner:\n  name: %s\n  resource_class: test/linux\n' "$name"
    printf '  working_directory: %s\n  spool_directory: %s\n  uid_lock_directory: %s\n' \
      "$WORK/work-$name" "$WORK/spool-$name" "/run/gatehouse/uids"
    for l in "$@"; do printf '  %s\n' "$l"; done
    printf 'policy: %s\n' "${POLICY:-$WORK/policy.yaml}"
  } > "$WORK/agent-$name.yaml"
}

# start_agent NAME [args]: `gatehouse serve` in the background (the broker,
# which starts the agent as the user gatehouse), its log in
# $WORK/agent-NAME.log. AGENT_PID is the broker's pid: the one an operator
# signals.
start_agent() {
  local name=$1
  shift
  "$GATEHOUSE" serve --config "$WORK/agent-$name.yaml" --runner-lock-dir "$WORK/runners" "$@" \
    >> "$WORK/agent-$name.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
}

# agent_pid_of BROKER_PID: the gatehouse-agent process that broker started.
agent_pid_of() { pgrep -P "$1" -x gatehouse-agent | head -1; }

# submit FILE JOB [dispatch submit args]: prints the task id.
submit() { "$GATEHOUSE_DISPATCH" submit "$@" --db "$DB"; }
status_of() { "$GATEHOUSE_DISPATCH" status "$1" --db "$DB"; }
logs_of() { "$GATEHOUSE_DISPATCH" logs "$1" --db "$DB" "${@:2}"; }

# wait_for TEXT CMD...: polls CMD's output for TEXT (up to 60 s).
wait_for() {
  local want=$1
  shift
  for _ in $(seq 300); do
    "$@" 2> /dev/null | grep -qE -- "$want" && return 0
    sleep 0.2
  done
  "$@" >&2 || true
  fail "timed out waiting for /$want/ from: $*"
}
# state_of ID / outcome_of ID: one field of `gatehouse-dispatch status ID`.
state_of() { status_of "$1" | sed -n 's/^state: *//p'; }
outcome_of() { status_of "$1" | sed -n 's/^outcome: *//p'; }

# serve_setup RUNNER...: what every agent test starts with: root, the agent
# user, a test CA and server certificate, a token for each runner, the
# control plane running.
serve_setup() {
  need_root
  ensure_agent_user
  make_ca
  local r
  for r in "$@"; do runner_token "$r"; done
  start_dispatch
}

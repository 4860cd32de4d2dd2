#!/bin/bash
# `gatehouse-dispatch init` and README's "Serving a control plane": the four
# commands there, as written (the directory and the port swapped for the
# test's own), take a job through gatehouse-dispatch and `gatehouse serve`
# over verified TLS; the commands init prints are those of the README. The
# certificate chains to init's CA and names what was asked; keys and tokens
# are 0600; a second init refuses without --force and keeps the queue with
# it; a wrong name or address is refused before anything is made.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
need_root
ensure_agent_user
README="$(cd "$(dirname "$0")/../.." && pwd)/README.md"
[ -f "$README" ] || fail "no README.md at $README"

# The binaries by the names the README uses.
mkdir -p "$WORK/bin"
ln -s "$GATEHOUSE" "$WORK/bin/gatehouse"
ln -s "$GATEHOUSE_DISPATCH" "$WORK/bin/gatehouse-dispatch"
export PATH="$WORK/bin:$PATH"

# --- the README's four commands ---------------------------------------------
README_DIR=/srv/gatehouse
SITE="$WORK/site"
PORT=$(free_port)
# The first ```sh block of the section, comments dropped, paths and port ours.
awk '/^## Serving a control plane/ { s = 1; next } s && /^## / { exit }
     s && /^```sh/ { b = 1; next } b && /^```/ { exit } b' "$README" |
  sed -e 's/ *#.*$//' -e '/^$/d' -e "s|$README_DIR|$SITE|g" -e "s|:8443|:$PORT|g" > "$WORK/readme.cmds"
[ "$(wc -l < "$WORK/readme.cmds")" = 4 ] || { cat "$WORK/readme.cmds" >&2; fail "README's block is not four commands"; }
mapfile -t STEP < "$WORK/readme.cmds"
[[ "${STEP[0]}" == "gatehouse-dispatch init $SITE" ]] || fail "README's first command is not init: ${STEP[0]}"

# 1. init (the port is the test's: the README's 8443 may be taken here).
bash -c "${STEP[0]} --port $PORT" > "$WORK/init.out" 2> "$WORK/init.err" ||
  { cat "$WORK/init.out" "$WORK/init.err" >&2; fail "init failed"; }
cp "$WORK/init.out" "$OUT"
[ -s "$WORK/init.err" ] && { cat "$WORK/init.err" >&2; fail "init wrote to stderr"; }
# This host is ready (lib.sh: the agent user, the work root mount): nothing to do first.
expect_no_out 'Before the agent can start'
# The commands it prints are the README's, with its directory.
sed -n 's/^  \(gatehouse[a-z-]* \(serve\|submit\) .*\)$/\1/p' "$WORK/init.out" > "$WORK/printed.cmds"
tail -n 3 "$WORK/readme.cmds" | diff - "$WORK/printed.cmds" >&2 ||
  fail "init printed other commands than README's (diff above: README, then init)"

# The files, their modes, what they hold.
[ "$(stat -c %a "$SITE")" = 711 ] || fail "$SITE is mode $(stat -c %a "$SITE"), not 711"
for f in ca.key server.key runner-tokens token; do
  [ "$(stat -c '%a %U' "$SITE/$f")" = "600 root" ] || fail "$f is $(stat -c '%a %U' "$SITE/$f"), not 600 root"
done
for f in ca.pem server.pem gatehouse.yaml policy.yaml hello.yml; do
  [ "$(stat -c %a "$SITE/$f")" = 644 ] || fail "$f is mode $(stat -c %a "$SITE/$f"), not 644"
done
openssl verify -CAfile "$SITE/ca.pem" "$SITE/server.pem" > "$OUT" 2>&1 || fail "the server certificate does not verify"
openssl verify -CAfile "$SITE/ca.pem" -purpose sslserver "$SITE/server.pem" > "$OUT" 2>&1 ||
  fail "the server certificate is not for a TLS server"
openssl x509 -in "$SITE/server.pem" -noout -ext subjectAltName > "$OUT"
expect_out 'DNS:localhost, IP Address:127.0.0.1$'
openssl x509 -in "$SITE/ca.pem" -noout -text > "$OUT"
expect_out 'CA:TRUE'; expect_out 'Certificate Sign'; expect_out 'P-256'
openssl pkey -in "$SITE/server.key" -noout -text > "$OUT" 2>&1; expect_out 'P-256'
token=$(cat "$SITE/token")
[[ "$token" =~ ^[0-9a-f]{64}$ ]] || fail "the agent's token is not 64 hex digits"
grep -qx "[A-Za-z0-9._-]* $token" "$SITE/runner-tokens" || fail "runner-tokens does not hold the agent's token"
grep -qx "  url: https://localhost:$PORT" "$SITE/gatehouse.yaml" || fail "the agent's URL is not https://localhost:$PORT"

# 2. The dispatch, 3. the agent: each command as printed, in the background.
bash -c "exec ${STEP[1]}" > "$WORK/dispatch.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -s -o /dev/null --cacert "$SITE/ca.pem" "https://localhost:$PORT/" && break
  sleep 0.1
done
curl -sS -o /dev/null --cacert "$SITE/ca.pem" "https://localhost:$PORT/" ||
  { cat "$WORK/dispatch.log" >&2; fail "the dispatch does not answer on https://localhost:$PORT with init's CA"; }
bash -c "exec ${STEP[2]}" > "$WORK/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")

# 4. submit: the one-step job passes, and its line arrives.
id=$(bash -c "${STEP[3]}") || fail "submit failed"
[ -n "$id" ] || fail "submit printed no task id"
DB="$SITE/queue.db"
for _ in $(seq 300); do
  [ "$(state_of "$id")" = completed ] && break
  kill -0 "$AGENT_PID" 2> /dev/null || { cat "$WORK/agent.log" >&2; fail "gatehouse serve exited"; }
  sleep 0.2
done
[ "$(state_of "$id")" = completed ] || { cat "$WORK/agent.log" >&2; status_of "$id" >&2; fail "the job did not complete"; }
[ "$(outcome_of "$id")" = passed ] || { cat "$WORK/agent.log" >&2; status_of "$id" >&2; fail "the job did not pass"; }
logs_of "$id" > "$OUT"
expect_out '^hello from gatehouse$'
grep -q "$token" "$WORK/agent.log" "$WORK/dispatch.log" "$OUT" && fail "the runner token was printed"

# Both stop on SIGTERM; the agent made its spool in the site.
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || { cat "$WORK/agent.log" >&2; fail "gatehouse serve did not stop cleanly"; }
kill -TERM "${PIDS[0]}"
wait "${PIDS[0]}" || fail "the dispatch did not stop cleanly"
PIDS=()
[ "$(stat -c %U "$SITE/spool")" = gatehouse ] || fail "the spool is not the agent's"

# --- a second init: refused without --force, then --force keeps the queue -----
set +e
gatehouse-dispatch init "$SITE" > "$OUT" 2>&1; RC=$?
set -e
expect_rc 2
expect_out "init: $SITE is not empty: it holds ca.key, ca.pem, gatehouse.yaml, hello.yml, policy.yaml, queue.db"
expect_out 'add --force to replace'
[ "$(cat "$SITE/token")" = "$token" ] || fail "a refused init changed the token"
gatehouse-dispatch init "$SITE" --force --port "$PORT" > "$OUT" 2>&1 || fail "init --force failed"
expect_out '^Kept as they were: queue.db.*spool'
[ "$(cat "$SITE/token")" != "$token" ] || fail "init --force kept the old token"
[ "$(stat -c '%a %U' "$SITE/token")" = "600 root" ] || fail "after --force the token is $(stat -c '%a %U' "$SITE/token")"
openssl verify -CAfile "$SITE/ca.pem" "$SITE/server.pem" > /dev/null 2>&1 || fail "after --force the certificate does not verify"
gatehouse-dispatch status "$id" --db "$SITE/queue.db" > /dev/null || fail "init --force lost the queue"

# --- names and addresses ------------------------------------------------------
NET="$WORK/net"
gatehouse-dispatch init "$NET" --name ci.example.test --name gh.example.test --address 10.0.0.5 --address ::1 \
  --runner build-7 --resource-class acme/linux --port 9443 > "$OUT" 2>&1 || fail "init with names and addresses failed"
expect_out '^  gatehouse-dispatch serve --listen 10.0.0.5:9443 '
openssl x509 -in "$NET/server.pem" -noout -ext subjectAltName > "$OUT"
expect_out 'DNS:ci.example.test, DNS:gh.example.test, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1$'
openssl x509 -in "$NET/server.pem" -noout -subject > "$OUT"; expect_out 'CN ?= ?ci.example.test'
openssl verify -CAfile "$NET/ca.pem" "$NET/server.pem" > /dev/null 2>&1 || fail "the networked certificate does not verify"
grep -qx '  url: https://ci.example.test:9443' "$NET/gatehouse.yaml" || fail "the URL is not the first --name's"
grep -qx '  name: build-7' "$NET/gatehouse.yaml" || fail "runner.name is not --runner"
grep -qx '  resource_class: acme/linux' "$NET/gatehouse.yaml" || fail "runner.resource_class is not --resource-class"
grep -q '^build-7 [0-9a-f]\{64\}$' "$NET/runner-tokens" || fail "runner-tokens does not name --runner"
# Only a name: the dispatch listens on every IPv4 address; only an IPv6 address: bracketed.
gatehouse-dispatch init "$WORK/named" --name ci.example.test > "$OUT" 2>&1 || fail "init with a name only failed"
expect_out '^  gatehouse-dispatch serve --listen 0.0.0.0:8443 '
gatehouse-dispatch init "$WORK/v6" --address ::1 > "$OUT" 2>&1 || fail "init with an IPv6 address only failed"
expect_out '^  gatehouse-dispatch serve --listen \[::1\]:8443 '
grep -qx '  url: https://\[::1\]:8443' "$WORK/v6/gatehouse.yaml" || fail "an IPv6 URL is not bracketed"

refused() {  # refused PATTERN ARGS...: init exits 2, says PATTERN, makes nothing
  local want=$1
  shift
  set +e
  gatehouse-dispatch init "$WORK/bad" "$@" > "$OUT" 2>&1; RC=$?
  set -e
  expect_rc 2
  expect_out "$want"
  [ ! -e "$WORK/bad" ] || fail "a refused init ($*) made $WORK/bad"
}
refused '--address `300.1.2.3` is not an IPv4 or IPv6 address .*a host name goes in --name' --address 300.1.2.3
refused '--address `ci.example.test` is not an IPv4 or IPv6 address' --address ci.example.test
refused '--name `10.0.0.5` is an IP address: give it with --address' --name 10.0.0.5
refused '--name `\*.example.test` is a wildcard' --name '*.example.test'
refused '--name `a,DNS:evil.test` holds a character a host name cannot' --name 'a,DNS:evil.test'
refused '--runner `no spaces` ' --runner 'no spaces'
refused '--resource-class `a b` ' --resource-class 'a b'
set +e
gatehouse-dispatch init "$WORK/file" --port 70000 > "$OUT" 2>&1; RC=$?
echo x > "$WORK/plain"
gatehouse-dispatch init "$WORK/plain" >> "$OUT" 2>&1; RC2=$?
set -e
expect_rc 2; [ "$RC2" = 2 ] || fail "init into a file exited $RC2"
expect_out '--port'; expect_out "$WORK/plain exists and is not a directory"

# --- what the host still needs is said, with the fix ---------------------------
mkdir -m 775 "$WORK/open"
gatehouse-dispatch init "$WORK/open/site" > "$OUT" 2>&1 || fail "init under a group-writable folder failed"
expect_out '^Before the agent can start, this host needs:'
expect_out "directory $WORK/open is writable by group or others .*chmod go-w $WORK/open"
mkdir -m 700 "$WORK/closed"
gatehouse-dispatch init "$WORK/closed/site" > "$OUT" 2>&1 || fail "init under a closed folder failed"
expect_out "the agent \(user gatehouse\) must reach .* but $WORK/closed is mode 0700: chmod o\+x $WORK/closed"

echo "dispatch_init: ok"

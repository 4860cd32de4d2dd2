#!/bin/bash
# gatehouse-dispatch driven by curl as an agent would drive it: TLS with a
# test CA, the claim long poll, ordered idempotent records, the completion
# rules, cancel, limits, auth, and durability across a kill -9.
. "$(dirname "$0")/../lib.sh"
set -e
: "${GATEHOUSE_DISPATCH:?GATEHOUSE_DISPATCH must point at gatehouse-dispatch}"
D=$GATEHOUSE_DISPATCH
for tool in curl openssl python3; do command -v $tool >/dev/null || skip "needs $tool (scripts/install-deps)"; done

cd "$WORK"
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill -9 $SERVER_PID 2>/dev/null; rm -rf "$WORK"' EXIT

# A test CA and a server certificate for 127.0.0.1.
{
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj /CN=gatehouse-test-ca
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf
} > openssl.log 2>&1 || { cat openssl.log; fail "could not make the test certificates"; }

RUNNER_TOKEN=runner-token-0123456789abcdef
printf '# test runners\nhost-1 %s\n\nhost-2 other-runner-token-0123456789\n' "$RUNNER_TOKEN" > tokens
chmod 600 tokens
DB=$WORK/dispatch.db

# start_server [--lost-after N]: sets SERVER_PID and URL (port 0: a free port).
start_server() {
  "$D" serve --listen 127.0.0.1:0 --cert server.pem --key server.key --db "$DB" --runner-tokens tokens "$@" \
    2>> server.log &
  SERVER_PID=$!
  URL=
  for _ in $(seq 1 100); do
    URL=$(sed -n 's|.*listening on \(https://[^ ]*\) .*|\1|p' server.log | tail -1)
    [ -n "$URL" ] && [ "$URL" != "$LAST_URL" ] && break
    URL=; sleep 0.05
  done
  [ -n "$URL" ] || { cat server.log; fail "the server did not start"; }
  LAST_URL=$URL
}
LAST_URL=

# call PATH TOKEN BODY [curl args...]: sets STATUS and RESP.
call() {
  local path=$1 token=$2 data=$3; shift 3
  STATUS=$(curl -sS --cacert ca.pem -o resp.json -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $token" --data-binary "$data" "$@" "$URL$path") || fail "curl failed on $path"
  RESP=$(cat resp.json)
}
# expect STATUS [JSON]: the answer's status, and its body as JSON (key order aside).
expect() {
  [ "$STATUS" = "$1" ] || fail "expected status $1, got $STATUS: $RESP"
  [ $# -lt 2 ] && return 0
  python3 -S -c 'import json,sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' "$RESP" "$2" \
    || fail "expected body $2, got $RESP"
}
jget() { python3 -S -c 'import json,sys; v=json.loads(sys.argv[1]); exec("for k in sys.argv[2].split(\".\"): v=v[k]"); print(v)' "$RESP" "$1"; }
b64() { printf '%s' "$1" | base64 -w0; }
claim() { call /api/v1/claim "$RUNNER_TOKEN" "{\"runner\":\"host-1\",\"resource_class\":\"acme/linux\",\"free_slots\":1,\"wait\":$1}"; }

printf 'version: 2.1\njobs:\n  build:\n    machine: true\n    steps:\n      - run: echo hi\n' > config.yml
printf '{"key": "release-key", "ed25519": "%s"}' "$(head -c 64 /dev/zero | base64 -w0)" > sig.json

# --- start-up refusals ----------------------------------------------------
chmod 640 tokens
set +e; "$D" serve --listen 127.0.0.1:0 --cert server.pem --key server.key --db "$DB" --runner-tokens tokens > "$OUT" 2>&1; RC=$?; set -e
expect_rc 2; expect_out 'group and others must not read it \(chmod 600'
chmod 600 tokens

start_server

# --- claim: nothing queued, then tasks oldest first, never twice ----------
t0=$(date +%s%N)
claim 1; expect 204
[ -z "$RESP" ] || fail "a 204 has a body: $RESP"
elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$elapsed" -ge 900 ] || fail "the long poll returned after ${elapsed} ms, not about 1 s"
call /api/v1/claim wrong-runner-token-000000 '{"runner":"host-1","resource_class":"acme/linux","free_slots":1,"wait":0}'
expect 401 '{"error":"unauthorized","message":"the runner token was refused"}'

id1=$("$D" submit config.yml --job build --project acme/app --branch main --trigger push --revision 0123abcd \
      --signature sig.json --db "$DB")
id2=$("$D" submit config.yml --job build --db "$DB")
[ "$id1" = t-000001 ] && [ "$id2" = t-000002 ] || fail "submit printed '$id1' and '$id2'"

claim 5; expect 200
python3 -S - "$RESP" <<'PY' || fail "the claimed task is not what was submitted: $RESP"
import json, sys
t = json.loads(sys.argv[1])["task"]
assert set(t) == {"id", "token", "job", "meta", "signature"}, t.keys()
assert t["id"] == "t-000001"
assert t["job"] == {"name": "build", "config": open("config.yml").read()}
assert t["meta"] == {"project": "acme/app", "branch": "main", "tag": "", "trigger": "push", "revision": "0123abcd"}
assert t["signature"] == json.load(open("sig.json"))
assert len(t["token"]) == 64
PY
TOK1=$(jget task.token)
claim 0; expect 200
[ "$(jget task.id)" = t-000002 ] || fail "the second claim got $(jget task.id), not t-000002"
python3 -S -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["task"].get("signature") is not None)' "$RESP" \
  || fail "an unsigned task has a signature: $RESP"
TOK2=$(jget task.token)
[ "$TOK1" != "$TOK2" ] || fail "two tasks got the same token"
claim 0; expect 204

# Two runners long-poll; one task arrives: exactly one of them gets it.
RACE_PIDS=
for n in 1 2; do
  curl -sS --cacert ca.pem -o "race$n.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $RUNNER_TOKEN" --data-binary '{"runner":"host-'$n'","resource_class":"x","free_slots":1,"wait":3}' \
    "$URL/api/v1/claim" > "race$n.status" &
  RACE_PIDS="$RACE_PIDS $!"
done
sleep 0.5
id3=$("$D" submit config.yml --job build --db "$DB")
for p in $RACE_PIDS; do wait "$p" || fail "a racing claim failed"; done
statuses=$(printf '%s\n' "$(cat race1.status)" "$(cat race2.status)" | sort | tr -d '\n')
[ "$statuses" = 200204 ] || fail "racing claims answered $(cat race1.status) and $(cat race2.status), not one 200 and one 204"
TOK3=$(python3 -S -c 'import json,sys
for f in ("race1.json","race2.json"):
    try: print(json.load(open(f))["task"]["token"])
    except Exception: pass')
grep -q "$id3" race1.json race2.json || fail "the raced claim did not hand out $id3"
cat "$DB"* | grep -qa "$TOK1" && fail "a task token is stored in the database in clear"
grep -q "$TOK1" server.log && fail "a task token is in the server log"

# --- records: in order, idempotent, bounded -------------------------------
R=/api/v1/tasks/$id1/records
call $R "$TOK1" '{"records":[{"seq":0,"type":"output","data":"'"$(b64 $'hello\n')"'"},{"seq":1,"type":"step","index":0,"name":"Say hi","state":"started"}]}'
expect 200 '{"acked":1}'
call $R "$TOK1" '{"records":[{"seq":0,"type":"output","data":"'"$(b64 $'hello\n')"'"},{"seq":1,"type":"step","index":0,"name":"Say hi","state":"started"}]}'
expect 200 '{"acked":1}'
call $R "$TOK1" '{"records":[{"seq":3,"type":"output","data":"'"$(b64 x)"'"}]}'
expect 409 '{"error":"out_of_order","message":"records are stored in order: send from seq 2","acked":1}'
call $R "$TOK1" '{"records":[{"seq":1,"type":"step","index":0,"name":"Say hi","state":"started"},{"seq":2,"type":"output","data":"'"$(b64 'partial')"'"}]}'
expect 200 '{"acked":2}'
call $R "$TOK1" '{"records":[{"seq":3,"type":"gap","last_seq":5,"bytes":1000},{"seq":6,"type":"output","data":"'"$(b64 $'world\n')"'"},{"seq":7,"type":"step","index":0,"name":"Say hi","state":"finished","outcome":"failed","code":1,"duration_ms":12}]}'
expect 200 '{"acked":7}'
call $R "$TOK1" '{"records":[{"seq":8,"type":"output","data":"'"$(b64 a)"'"},{"seq":10,"type":"output","data":"'"$(b64 b)"'"}]}'
expect 400
[ "$(jget error)" = bad_request ] && [[ "$(jget message)" == *"expected 9"* ]] || fail "a batch with a hole got $RESP"

python3 -S -c '
import base64, json
chunk = base64.b64encode(b"x" * 60000).decode()
print(json.dumps({"records": [{"seq": 8 + i, "type": "output", "data": chunk} for i in range(20)]}))' > big.json
[ "$(stat -c %s big.json)" -gt 1048576 ] || fail "big.json is not over 1 MiB"
call $R "$TOK1" @big.json
expect 413 '{"error":"too_large","message":"the request body is over 1048576 bytes; split the batch"}'
call $R "$TOK1" @big.json -H 'Transfer-Encoding: chunked'
expect 413 '{"error":"too_large","message":"the request body is over 1048576 bytes; split the batch"}'

# --- auth ------------------------------------------------------------------
call $R wrong-task-token-0000000000 '{"records":[]}'
expect 401 "{\"error\":\"unauthorized\",\"message\":\"the task token was refused for task $id1\"}"
call $R "$TOK2" '{"records":[]}'
expect 401 "{\"error\":\"unauthorized\",\"message\":\"the task token was refused for task $id1\"}"
call $R "$RUNNER_TOKEN" '{"records":[]}'
expect 401
call /api/v1/tasks/t-999999/heartbeat "$TOK1" '{"state":"running"}'
expect 404 '{"error":"unknown_task","message":"no task t-999999"}'

# --- malformed requests ----------------------------------------------------
call /api/v1/tasks/$id1/heartbeat "$TOK1" '{"state": "running"'
expect 400
[ "$(jget error)" = bad_request ] && [ -n "$(jget message)" ] || fail "a malformed body got $RESP"
call /api/v1/tasks/$id1/heartbeat "$TOK1" '{"state":"running","extra":1}'
expect 400
[ "$(jget error)" = bad_request ] && [ -n "$(jget message)" ] || fail "an unknown key got $RESP"
call /api/v1/tasks/$id1/heartbeat "$TOK1" '{"state":"running"}' -H 'Content-Type: text/plain'
expect 400 '{"error":"bad_request","message":"Content-Type must be application/json"}'
call /api/v2/claim "$RUNNER_TOKEN" '{}'
expect 404 '{"error":"not_found","message":"no such path: this control plane speaks protocol v1 under /api/v1/"}'
set +e; curl -sS -o /dev/null "http://${URL#https://}/api/v1/claim" -d '{}' 2>/dev/null; rc=$?; set -e
[ "$rc" != 0 ] || fail "plain HTTP to the TLS port got an answer"

# --- heartbeat and cancel --------------------------------------------------
call /api/v1/tasks/$id1/heartbeat "$TOK1" '{"state":"running"}'
expect 200 '{"cancel":false,"acked":7}'
"$D" cancel "$id2" --db "$DB" > "$OUT"; expect_out "cancel requested"
call /api/v1/tasks/$id2/heartbeat "$TOK2" '{"state":"running"}'
expect 200 '{"cancel":true,"acked":-1}'
call /api/v1/tasks/$id2/complete "$TOK2" '{"outcome":"canceled","exit_code":143,"reason":"canceled","last_seq":-1,"peak_memory_bytes":0,"cpu_usec":0,"duration_ms":5}'
expect 200 '{"ok":true}'
call /api/v1/tasks/$id2/complete "$TOK2" '{"outcome":"canceled","exit_code":143,"reason":"canceled","last_seq":-1,"peak_memory_bytes":0,"cpu_usec":0,"duration_ms":5}'
expect 200 '{"ok":true}'
call /api/v1/tasks/$id2/heartbeat "$TOK2" '{"state":"delivering"}'
expect 410 "{\"error\":\"task_gone\",\"message\":\"task $id2 was canceled and is finalised\"}"
call /api/v1/tasks/$id2/records "$TOK2" '{"records":[{"seq":0,"type":"output","data":"eA=="}]}'
expect 410

# --- completion ------------------------------------------------------------
C=/api/v1/tasks/$id1/complete
DONE='{"outcome":"failed","exit_code":1,"reason":"step 0 exited 1","last_seq":9,"peak_memory_bytes":1048576,"cpu_usec":5400,"duration_ms":81}'
call $C "$TOK1" "$DONE"
expect 409 '{"error":"missing_records","message":"records after seq 7 are missing; send them first","acked":7}'
DONE=${DONE/\"last_seq\":9/\"last_seq\":7}
call $C "$TOK1" "$DONE"; expect 200 '{"ok":true}'
call $C "$TOK1" "$DONE"; expect 200 '{"ok":true}'
call $C "$TOK1" "${DONE/failed/passed}"
expect 409 "{\"error\":\"already_completed\",\"message\":\"task $id1 already has a different completion\"}"
call $R "$TOK1" '{"records":[{"seq":8,"type":"output","data":"eA=="}]}'
expect 409

# --- durability: kill -9, restart, everything is still there ---------------
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server --lost-after 1
call $C "$TOK1" "$DONE"; expect 200 '{"ok":true}'
call $R "$TOK1" '{"records":[{"seq":7,"type":"step","index":0,"name":"Say hi","state":"finished","outcome":"failed","code":1,"duration_ms":12}]}'
expect 200 '{"acked":7}'
"$D" logs "$id1" --db "$DB" > logs.out
printf 'hello\npartial\n[gatehouse-dispatch: 1000 bytes of output were dropped here by the agent'"'"'s spool limit]\nworld\n' > logs.want
cmp logs.out logs.want || { diff logs.want logs.out >&2; fail "logs are not the stored bytes in order, once"; }
"$D" logs "$id1" --db "$DB" --events > logs.out
printf '%s\n' 'hello' '==> step 0 Say hi: started' 'partial' \
  "[gatehouse-dispatch: 1000 bytes of output were dropped here by the agent's spool limit]" 'world' \
  '==> step 0 Say hi: finished failed' > logs.want
cmp logs.out logs.want || { diff logs.want logs.out >&2; fail "logs --events differ"; }
"$D" status "$id1" --db "$DB" > "$OUT"
expect_out '^state: +completed$'; expect_out '^runner: +host-1$'; expect_out '^outcome: +failed$'
expect_out '^exit code: +1$'; expect_out '^reason: +step 0 exited 1$'; expect_out '^records: +6 '
"$D" status --db "$DB" > "$OUT"
expect_out "^$id2 +completed \(cancel requested\)"; expect_out "^$id1 +completed "

# --- lost, then finalised by a late completion; logs --follow ---------------
"$D" logs "$id3" --db "$DB" --follow > follow.out &
FOLLOW_PID=$!
for _ in $(seq 1 60); do "$D" status "$id3" --db "$DB" | grep -qE '^state: +lost$' && break; sleep 0.1; done
"$D" status "$id3" --db "$DB" > "$OUT"; expect_out '^state: +lost$'
call /api/v1/tasks/$id3/records "$TOK3" '{"records":[{"seq":0,"type":"output","data":"'"$(b64 $'late\n')"'"}]}'
expect 200 '{"acked":0}'
call /api/v1/tasks/$id3/complete "$TOK3" '{"outcome":"passed","exit_code":0,"reason":"","last_seq":0,"peak_memory_bytes":0,"cpu_usec":0,"duration_ms":1}'
expect 200 '{"ok":true}'
for _ in $(seq 1 50); do kill -0 $FOLLOW_PID 2>/dev/null || break; sleep 0.1; done
kill -0 $FOLLOW_PID 2>/dev/null && fail "logs --follow did not stop when the task completed"
[ "$(cat follow.out)" = late ] || fail "logs --follow printed '$(cat follow.out)'"
"$D" status "$id3" --db "$DB" > "$OUT"; expect_out '^state: +completed$'; expect_out '^outcome: +passed$'

# --- admin exit statuses ---------------------------------------------------
set +e
"$D" status t-999999 --db "$DB" > "$OUT" 2>&1; RC=$?; expect_rc 1
"$D" logs t-999999 --db "$DB" > "$OUT" 2>&1; RC=$?; expect_rc 1
"$D" cancel t-999999 --db "$DB" > "$OUT" 2>&1; RC=$?; expect_rc 1
"$D" submit config.yml --db "$DB" > "$OUT" 2>&1; RC=$?; expect_rc 2
"$D" submit config.yml --job build --trigger nightly --db "$DB" > "$OUT" 2>&1; RC=$?; expect_rc 2; expect_out 'expected push'
"$D" status --db "$WORK/missing.db" > "$OUT" 2>&1; RC=$?; expect_rc 2
set -e
[ ! -e "$WORK/missing.db" ] || fail "status created a database"
"$D" cancel "$id1" --db "$DB" > "$OUT"; expect_out "already completed"

# --- release: a task claimed as the agent began draining goes back -------
idr=$("$D" submit config.yml --job build --db "$DB")
claim 0; expect 200
[ "$(jget task.id)" = "$idr" ] || fail "claimed $(jget task.id), not $idr"
TOKR=$(jget task.token)
call "/api/v1/tasks/$idr/release" wrong-task-token-0000000000 '{}'; expect 401
call "/api/v1/tasks/$idr/release" "$TOKR" '{}'; expect 200 '{"ok":true}'
"$D" status "$idr" --db "$DB" | grep -q '^state: *queued$' || fail "a released task is not queued again"
call "/api/v1/tasks/$idr/heartbeat" "$TOKR" '{"state":"running"}'; expect 401  # its old token is void
claim 0; expect 200
[ "$(jget task.id)" = "$idr" ] || fail "the released task was not handed out again"
TOKR=$(jget task.token)
call "/api/v1/tasks/$idr/records" "$TOKR" "{\"records\":[{\"seq\":0,\"type\":\"output\",\"data\":\"$(b64 hi)\"}]}"; expect 200
call "/api/v1/tasks/$idr/release" "$TOKR" '{}'; expect 409  # it has records: complete it instead
[ "$(jget error)" = not_releasable ] || fail "release of a task with records: $RESP"

# --- keep-alive: one connection serves several calls ----------------------
curl -sS --cacert ca.pem -o /dev/null -o /dev/null -w '%{num_connects}\n' -X POST -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $RUNNER_TOKEN" \
  --data-binary '{"runner":"host-1","resource_class":"acme/linux","free_slots":1,"wait":0}' "$URL/api/v1/claim" \
  --next --cacert ca.pem -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $RUNNER_TOKEN" \
  --data-binary '{"runner":"host-1","resource_class":"acme/linux","free_slots":1,"wait":0}' "$URL/api/v1/claim" \
  -o /dev/null -w '%{num_connects}\n' > "$OUT"
[ "$(tr '\n' ' ' < "$OUT")" = "1 0 " ] || fail "the second call did not reuse the connection: $(cat "$OUT")"

kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || fail "the server did not stop cleanly on SIGTERM"
SERVER_PID=
echo "dispatch: ok"

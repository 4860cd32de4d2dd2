#!/bin/bash
# `gatehouse run --stream-fd N`: JSON lines for the agent. The exact
# sequence of records, the output equal to what a person sees, bounded
# chunks, one result record for every way a run ends (also refusals and
# bad input), cancel by SIGTERM and by a reader that goes away, and no
# secret in clear.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v python3 >/dev/null || skip "needs python3 to read the stream"
STREAM="$WORK/stream.jsonl"

# run_stream FILE [args...]: gatehouse with the stream on fd 3 ($STREAM),
# stdout/stderr in $OUT, status in $RC.
run_stream() {
  set +e
  timeout 300 "$GATEHOUSE" run "$@" --stream-fd 3 3>"$STREAM" >"$OUT" 2>&1
  RC=$?
  set -e
}

# Reads $STREAM: checks every line's framing, writes the decoded output to
# $WORK/decoded, and prints the record sequence with runs of output
# records folded into one word.
sequence() {
  python3 - "$STREAM" "$WORK/decoded" <<'PY'
import base64, json, sys
seq, text, results = [], b"", 0
for raw in open(sys.argv[1], "rb"):
    assert raw.endswith(b"\n"), "a line without its newline"
    assert len(raw) < 200 * 1024, "a line over the bound"
    j = json.loads(raw)
    t = j["type"]
    if t == "output":
        data = base64.b64decode(j["data"], validate=True)
        assert 0 < len(data) <= 65536, "output chunk of %d bytes" % len(data)
        text += data
        if not seq or seq[-1] != "output":
            seq.append("output")
    elif t == "step":
        w = "step:%d:%s" % (j["index"], j["state"])
        if j["state"] == "finished":
            w += ":%s:%d" % (j["outcome"], j["code"])
            assert isinstance(j["duration_ms"], int) and j["duration_ms"] >= 0
        seq.append(w)
    elif t == "setup":
        assert 0 <= j["seconds"] < 120
        seq.append("setup")
    elif t == "result":
        results += 1
        for k in ("peak_memory_bytes", "cpu_usec", "duration_ms"):
            assert isinstance(j[k], int) and j[k] >= 0, k
        seq.append("result:%s:%d" % (j["outcome"], j["exit_code"]))
        open(sys.argv[2] + ".reason", "w").write(j["reason"])
    else:
        raise SystemExit("unknown record type " + t)
assert results == 1, "%d result records" % results
open(sys.argv[2], "wb").write(text)
print(" ".join(seq))
PY
}
expect_seq() {
  local got
  got=$(sequence) || fail "the stream is malformed: $(cat "$STREAM" | head -c 2000)"
  [ "$got" = "$1" ] || fail "stream sequence
   got: $got
  want: $1"
}
expect_decoded() { grep -qE -- "$1" "$WORK/decoded" || { cat "$WORK/decoded" >&2; fail "decoded output lacks /$1/"; }; }
expect_reason() { grep -qE -- "$1" "$WORK/decoded.reason" || fail "result reason '$(cat "$WORK/decoded.reason")' lacks /$1/"; }

# 1. Steps passing, failing, skipped; a big output cut into chunks.
f=$(job steps <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run:
          name: hello
          command: echo hello-from-job
      - run:
          name: big
          command: head -c 200000 /dev/zero | tr '\0' x; echo; sleep 0.5
      - run:
          name: fails
          command: echo bad; exit 3
      - run:
          name: skipped
          command: echo SHOULD-NOT-RUN
YAML
)
run_stream "$f"
expect_rc 1
[ ! -s "$OUT" ] || fail "stream mode wrote to stdout/stderr"
expect_seq "output setup step:0:started output step:0:finished:passed:0 step:1:started output step:1:finished:passed:0 step:2:started output step:2:finished:failed:3 output step:3:finished:not_run:0 output result:failed:1"
expect_decoded '^hello-from-job$'
expect_decoded '^==> \[3/4\] fails$'
expect_decoded '^<== \[4\] skipped: not run$'
expect_decoded 'result: FAILED \(exit 1\)'
expect_reason '^step 3 \(fails\): exit 3$'
awk 'length($0) == 200000 && !/[^x]/ { found = 1 } END { exit !found }' "$WORK/decoded" || fail "the big output did not arrive whole"
# The same text as the human mode, byte for byte but for timings. (Small
# outputs written a moment before the step ends: the worker may relay
# output still in the pipe when the step exits after the step's result, and
# where that tail lands is a race.)
fs=$(job small <<'YAML'
steps:
  - run: echo one; echo two >&2; sleep 0.3
  - run:
      name: fails
      command: echo three; sleep 0.3; exit 3
  - run: echo SHOULD-NOT-RUN
YAML
)
run_stream "$fs"
expect_rc 1
expect_seq "output setup step:0:started output step:0:finished:passed:0 step:1:started output step:1:finished:failed:3 output step:2:finished:not_run:0 output result:failed:1"
NO_COLOR=1 "$GATEHOUSE" run "$fs" 2>/dev/null > "$WORK/human" || true
norm() { sed -E 's/[0-9]+(\.[0-9]+)?(ms|s|m[0-9]+s| KiB| MiB| GiB)/T/g; s/ +/ /g' "$1"; }
diff <(norm "$WORK/human") <(norm "$WORK/decoded") >&2 || fail "the stream's text differs from the human output"

# 2. Refused by the policy (exit 3): why, then the result; no steps.
cat > "$WORK/egress.yaml" <<'YAML'
version: 1
profiles:
  default:
    network:
      mode: egress
      allow: ["registry.npmjs.org:443"]
YAML
run_stream "$f" --policy "$WORK/egress.yaml"
expect_rc 3
expect_seq "output result:refused:3"
expect_decoded '^gatehouse: refused: profile `default` grants network `egress`'
expect_reason 'egress'

# 3. Bad input (exit 2): the job file's errors, result `refused`.
f2=$(job bad <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    stepz:
      - run: echo hi
YAML
)
run_stream "$f2"
expect_rc 2
expect_seq "output result:refused:2"
expect_decoded 'config.yml:[0-9]+:[0-9]+'
expect_decoded 'stepz'
expect_reason 'has errors'
# A broken policy is bad input too.
printf 'version: 1\nprofiles: [\n' > "$WORK/broken.yaml"
run_stream "$f" --policy "$WORK/broken.yaml"
expect_rc 2
expect_seq "output result:refused:2"
expect_decoded 'broken.yaml:[0-9]+'

# 4. Secrets: masked in the stream; an unsafe secret file is an
# infrastructure error that still ends with a result.
SECRETS=$(mktemp -d /run/gatehouse-test-secrets.XXXXXX)
trap 'rm -rf "$WORK" "$SECRETS"' EXIT
chmod 700 "$SECRETS"
VALUE="stream-s3cret-$RANDOM$RANDOM-value"
printf '%s\n' "$VALUE" > "$SECRETS/api_token"
chmod 600 "$SECRETS/api_token"
cat > "$WORK/secrets.yaml" <<YAML
version: 1
secrets_dir: $SECRETS
profiles:
  default:
    secrets:
      - name: api_token
        env: API_TOKEN
YAML
f3=$(job sec <<'YAML'
steps:
  - run: |
      echo "raw: $API_TOKEN"
      printf 'split: %s' "${API_TOKEN:0:7}"; sleep 0.3; printf '%s\n' "${API_TOKEN:7}"
      echo "len=${#API_TOKEN}"
  - run: |
      # A secret split across the step's very last writes, behind a large
      # output: its tail may be relayed after the step's result.
      head -c 150000 /dev/zero | tr '\0' y
      printf '%s' "${API_TOKEN:0:7}"; printf '%s\n' "${API_TOKEN:7}"
YAML
)
run_stream "$f3" --policy "$WORK/secrets.yaml"
expect_rc 0
expect_seq "output setup step:0:started output step:0:finished:passed:0 step:1:started output step:1:finished:passed:0 output result:passed:0"
expect_decoded "^len=${#VALUE}$"
expect_decoded 'y\[masked:api_token\]$'
expect_decoded '^raw: \[masked:api_token\]$'
expect_decoded '^split: \[masked:api_token\]$'
grep -qF "$VALUE" "$WORK/decoded" && fail "the secret reached the stream's output"
grep -qF "$VALUE" "$STREAM" && fail "the secret is in the stream in clear"
chmod 644 "$SECRETS/api_token"
run_stream "$f3" --policy "$WORK/secrets.yaml"
expect_rc 4
expect_seq "output result:infra_error:4"
expect_decoded '^gatehouse: secrets: .*chmod 600'
chmod 600 "$SECRETS/api_token"

# 5. SIGTERM (the agent's cancel): the running step is closed, result canceled.
f4=$(job cancel <<'YAML'
steps:
  - run:
      name: sleeper
      command: echo started-sleeping; sleep 1000
YAML
)
set +e
"$GATEHOUSE" run "$f4" --stream-fd 3 3>"$STREAM" >"$OUT" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q '"state":"started"' "$STREAM" && break; sleep 0.1; done
sleep 0.3
kill -TERM $pid
wait $pid
RC=$?
set -e
expect_rc 4
got=$(sequence) || fail "the stream is malformed"
case "$got" in
  "output setup step:0:started output step:0:finished:"*" output result:canceled:4") ;;
  *) fail "canceled stream sequence: $got" ;;
esac
expect_reason 'canceled by the operator'

# 6. The reader goes away: the job is canceled, not left running blind.
f5=$(job reader <<'YAML'
steps:
  - run: |
      for i in $(seq 1000); do echo "line $i"; sleep 0.05; done
      echo SHOULD-NOT-FINISH; sleep 1000
YAML
)
mkfifo "$WORK/fifo"
export GATEHOUSE_AUDIT_LOG="$WORK/reader-audit.jsonl"
set +e
head -n 5 "$WORK/fifo" > "$WORK/head.txt" &
start=$(date +%s)
timeout 120 "$GATEHOUSE" run "$f5" --stream-fd 3 3>"$WORK/fifo" >"$OUT" 2>&1
RC=$?
set -e
expect_rc 4
[ $(( $(date +%s) - start )) -lt 40 ] || fail "the job ran on after its reader left"
[ "$(wc -l < "$WORK/head.txt")" = 5 ] || fail "the reader did not get its lines"
python3 - "$GATEHOUSE_AUDIT_LOG" <<'PY' || fail "the audit log does not record the cancel: $(cat "$GATEHOUSE_AUDIT_LOG")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
res = [r for r in recs if r.get("event") == "result"]
assert len(res) == 1 and res[0]["exit_code"] == 4 and "reader went away" in res[0]["reason"], res
PY

# 7. A bad --task-id is refused before anything runs; a good one is audited.
run_stream "$f" --task-id '../etc'
expect_rc 2
expect_seq "output result:refused:2"
export GATEHOUSE_AUDIT_LOG="$WORK/task-audit.jsonl"
run_stream "$f3" --policy "$WORK/secrets.yaml" --task-id t-0042
expect_rc 0
grep -q '"task_id":"t-0042"' "$GATEHOUSE_AUDIT_LOG" || fail "the task id is not in the audit log"
echo ok

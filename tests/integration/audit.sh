#!/bin/bash
# The audit log of real jobs: admitted -> sandbox -> result, one chain across
# jobs, `audit verify` proves it or names the edited line, a refusal is
# recorded with its reason, and a log that cannot be written stops the job.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v jq >/dev/null || skip "needs jq to read the JSON lines"
LOG="$GATEHOUSE_AUDIT_LOG"

verify() {
  set +e
  "$GATEHOUSE" audit verify "$1" > "$OUT" 2>&1
  RC=$?
  set -e
}

f=$(job audited <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: echo audited-step-ran
YAML
)
run_job "$f"
expect_rc 0
expect_out '^audited-step-ran$'
[ -f "$LOG" ] || fail "no audit log at $LOG"
[ "$(stat -c %a "$LOG")" = 640 ] || fail "the audit log's mode is $(stat -c %a "$LOG"), not 640"
events=$(jq -r .event "$LOG" | tr '\n' ' ')
[ "$events" = "admitted sandbox result " ] || fail "events are '$events', not 'admitted sandbox result'"
admitted=$(sed -n 1p "$LOG")
result=$(sed -n 3p "$LOG")
for k in job_id profile rule policy_digest; do
  echo "$admitted" | jq -e "has(\"$k\")" >/dev/null || fail "the admitted record lacks $k: $admitted"
done
echo "$admitted" | jq -e '.policy_digest | test("^[0-9a-f]{64}$")' >/dev/null || fail "policy_digest is not a SHA-256: $admitted"
echo "$admitted" | jq -e '.profile == "default"' >/dev/null || fail "profile is not default: $admitted"
for k in job_id exit_code peak_memory_bytes cpu_usec; do
  echo "$result" | jq -e "has(\"$k\")" >/dev/null || fail "the result record lacks $k: $result"
done
echo "$result" | jq -e '.exit_code == 0 and .peak_memory_bytes > 0 and (.cpu_usec | type) == "number"' >/dev/null ||
  fail "the result record's values are wrong: $result"
[ "$(jq -r .job_id "$LOG" | sort -u | wc -l)" = 1 ] || fail "the three records do not share one job_id"
jq -r .seq "$LOG" | tr '\n' ' ' | grep -qx '1 2 3 ' || fail "seq is not 1 2 3"

# A second job (a failing step) continues the same chain.
f2=$(job failing <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: exit 3
YAML
)
run_job "$f2"
expect_rc 1
[ "$(jq -r .event "$LOG" | tail -1)" = result ] || fail "the failing job has no result record"
[ "$(tail -1 "$LOG" | jq -r .exit_code)" = 1 ] || fail "the failing job's result is not exit_code 1"
[ "$(tail -1 "$LOG" | jq -r .job_id)" != "$(echo "$admitted" | jq -r .job_id)" ] || fail "two jobs share a job_id"

verify "$LOG"
expect_rc 0
n=$(wc -l < "$LOG")
expect_out "^$LOG: $n records, chain unbroken, last hash $(sed -n "${n}p" "$LOG" | tr -d '\n' | sha256sum | cut -c1-64)\$"

# Edit one line: verify exits 1 and names it.
cp "$LOG" "$WORK/edited.jsonl"
sed -i '2s/"event":"sandbox"/"event":"sandbax"/' "$WORK/edited.jsonl"
! cmp -s "$LOG" "$WORK/edited.jsonl" || fail "the sed edit changed nothing"
verify "$WORK/edited.jsonl"
expect_rc 1
expect_out "^$WORK/edited.jsonl:2: its hash does not match its content"
# A deleted line: the next line is named.
sed '2d' "$LOG" > "$WORK/deleted.jsonl"
verify "$WORK/deleted.jsonl"
expect_rc 1
expect_out "^$WORK/deleted.jsonl:2: prev does not match line 1"
verify "$WORK/missing.jsonl"
expect_rc 2

# A refused job (a grant this build cannot enforce): exit 3, nothing ran,
# a "refused" record with the reason.
cat > "$WORK/egress.yaml" <<'YAML'
version: 1
profiles:
  default:
    network:
      mode: egress
      allow: ["registry.npmjs.org:443"]
YAML
export GATEHOUSE_AUDIT_LOG="$WORK/refused.jsonl"
run_job "$f" --policy "$WORK/egress.yaml"
expect_rc 3
expect_no_out '^audited-step-ran$'
[ "$(jq -r .event "$GATEHOUSE_AUDIT_LOG" | tr '\n' ' ')" = "refused " ] || fail "the refusal is not one 'refused' record"
jq -e '.reason | test("egress")' "$GATEHOUSE_AUDIT_LOG" >/dev/null || fail "the refused record does not say why"
jq -e '.policy_digest | test("^[0-9a-f]{64}$")' "$GATEHOUSE_AUDIT_LOG" >/dev/null || fail "the refused record lacks the policy digest"
verify "$GATEHOUSE_AUDIT_LOG"
expect_rc 0

# A log that cannot be appended to stops the job before it runs.
export GATEHOUSE_AUDIT_LOG="$WORK/torn.jsonl"
cp "$LOG" "$GATEHOUSE_AUDIT_LOG"
printf '{"event":"admitted","job_' >> "$GATEHOUSE_AUDIT_LOG"
run_job "$f"
expect_rc 4
expect_out 'incomplete line'
expect_no_out '^audited-step-ran$'
export GATEHOUSE_AUDIT_LOG="$WORK/loose.jsonl"
: > "$GATEHOUSE_AUDIT_LOG"
chmod 0664 "$GATEHOUSE_AUDIT_LOG"
run_job "$f"
expect_rc 4
expect_out 'writable by group or others'
expect_no_out '^audited-step-ran$'
ln -s "$LOG" "$WORK/link.jsonl"
export GATEHOUSE_AUDIT_LOG="$WORK/link.jsonl"
run_job "$f"
expect_rc 4
expect_out 'symlink'
expect_no_out '^audited-step-ran$'
echo ok

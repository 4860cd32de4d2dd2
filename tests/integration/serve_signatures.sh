#!/bin/bash
# Job authenticity through the agent: with `signatures.required`, an
# unsigned job, a job signed by an untrusted key and a job tampered after
# signing are each refused before anything runs, reported to the control
# plane as refused with the reason, and audited; a correctly signed job
# runs and its key selects the `signed_by` rule.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
serve_setup r1
"$GATEHOUSE" sign --generate-key "$WORK/release.pem" > "$WORK/release.pub"
"$GATEHOUSE" sign --generate-key "$WORK/other.pem" > "$WORK/other.pub"
pub=$(grep -oE '[A-Za-z0-9+/]{43}=' "$WORK/release.pub" | head -1)
[ -n "$pub" ] || fail "no public key printed: $(cat "$WORK/release.pub")"
cat > "$WORK/policy.yaml" <<YAML
version: 1
signatures:
  required: true
  trusted_keys:
    - name: release-key
      ed25519: "$pub"
profiles:
  default:
    environment: {set: {WHICH: default}}
  release:
    environment: {set: {WHICH: release}}
rules:
  - match: {signed_by: release-key}
    profile: release
  - profile: default
YAML
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: echo "ran as $WHICH"; touch /tmp/ran
YAML
meta=(--project acme/app --branch main --trigger push)
"$GATEHOUSE" sign --key "$WORK/release.pem" --key-name release-key --job build "${meta[@]}" "$WORK/src/config.yml" > "$WORK/good.sig"
"$GATEHOUSE" sign --key "$WORK/other.pem" --key-name release-key --job build "${meta[@]}" "$WORK/src/config.yml" > "$WORK/wrong.sig"
unsigned=$(submit "$WORK/src/config.yml" --job build "${meta[@]}")
wrong=$(submit "$WORK/src/config.yml" --job build "${meta[@]}" --signature "$WORK/wrong.sig")
tampered_meta=$(submit "$WORK/src/config.yml" --job build --project acme/app --branch evil --trigger push --signature "$WORK/good.sig")
sed 's/ran as/RAN AS/' "$WORK/src/config.yml" > "$WORK/tampered.yml"
tampered_job=$(submit "$WORK/tampered.yml" --job build "${meta[@]}" --signature "$WORK/good.sig")
good=$(submit "$WORK/src/config.yml" --job build "${meta[@]}" --signature "$WORK/good.sig")
agent_config r1 "idle_timeout: 3s"
start_agent r1
wait "$AGENT_PID" || true
for t in "$unsigned" "$wrong" "$tampered_meta" "$tampered_job"; do
  [ "$(outcome_of "$t")" = refused ] || fail "task $t: outcome $(outcome_of "$t"), not refused"
  logs_of "$t" > "$OUT"
  expect_no_out 'ran as|RAN AS'
done
logs_of "$unsigned" > "$OUT"; expect_out 'unsigned'
logs_of "$wrong" > "$OUT"; expect_out 'does not verify'
logs_of "$tampered_meta" > "$OUT"; expect_out 'does not verify'
logs_of "$tampered_job" > "$OUT"; expect_out 'does not verify'
[ "$(outcome_of "$good")" = passed ] || fail "the signed job did not pass"
logs_of "$good" > "$OUT"; expect_out '^ran as release$'
[ "$(grep -c '"event":"refused"' "$GATEHOUSE_AUDIT_LOG")" -ge 4 ] || fail "the refusals were not all audited"
grep -q '"signed_by":"release-key"' "$GATEHOUSE_AUDIT_LOG" || fail "the signed job's key is not in the audit log"
echo ok

#!/bin/bash
# Secrets: exposed as an environment variable or a /run/secrets file only
# the job's uid can read, masked in all job output in every encoding and
# across writes, and refused when their files are unsafe.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v python3 >/dev/null || skip "needs python3 to encode the secret inside the job"
# Not under /tmp: a secrets folder inside a world-writable one is refused.
SECRETS=$(mktemp -d /run/gatehouse-test-secrets.XXXXXX)
trap 'rm -rf "$WORK" "$SECRETS"' EXIT
chmod 700 "$SECRETS"
VALUE='tok-3xampl3/Secret+Value"42'
printf '%s\n' "$VALUE" > "$SECRETS/npm_token"
printf 'file-secret-%s' "$RANDOM$RANDOM" > "$SECRETS/signing_key"
chmod 600 "$SECRETS"/*
cat > "$WORK/policy.yaml" <<YAML
version: 1
secrets_dir: $SECRETS
profiles:
  default:
    secrets:
      - name: npm_token
        env: NPM_TOKEN
      - name: signing_key
        file: signing.key
YAML
f=$(job sec <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: |
          echo "len=${#NPM_TOKEN}"
          echo "raw: $NPM_TOKEN"
          printf 'split: %s' "${NPM_TOKEN:0:9}"; sleep 0.3; printf '%s\n' "${NPM_TOKEN:9}"
          printf 'b64: '; printf '%s' "$NPM_TOKEN" | base64 -w0; echo
          printf 'b64-offset: '; printf 'xy%s' "$NPM_TOKEN" | base64 -w0; echo
          printf 'hex: '; printf '%s' "$NPM_TOKEN" | od -An -tx1 | tr -d ' \n'; echo
          python3 -c 'import os,sys,json,urllib.parse as u; t=os.environ["NPM_TOKEN"]; print("url:", u.quote(t, safe="")); print("json:", json.dumps({"t": t})); print("HEX:", t.encode().hex().upper())'
          stat -c 'file-mode=%a owner=%u' /run/secrets/signing.key
          stat -c 'dir-mode=%a' /run/secrets
          echo "file: $(cat /run/secrets/signing.key)"
          touch /run/secrets/new 2>/dev/null || echo "secrets-read-only"
          env | grep -c 'file-secret' | sed 's/^/file-secret-in-env=/' || true
          # A child that outlives its step prints the secret in two writes
          # on both sides of the step's end: the same pipe, one stream.
          ( sleep 0.3; printf 'late: %s' "${NPM_TOKEN:0:6}"; sleep 0.5; printf '%s\n' "${NPM_TOKEN:6}" ) &
      - run: sleep 1.5; echo "second step done"
YAML
)
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 0
# The job really saw and printed the value (its length), and every form is masked.
expect_out "^len=${#VALUE}$"
expect_out '^raw: \[masked:npm_token\]$'
expect_out '^split: \[masked:npm_token\]$'
expect_out '^b64: \[masked:npm_token\]'
expect_out '^b64-offset: .*\[masked:npm_token\]'
expect_out '^hex: \[masked:npm_token\]$'
expect_out '^url: \[masked:npm_token\]$'
expect_out '^json: \{"t": "\[masked:npm_token\]"\}$'
expect_out '^HEX: \[masked:npm_token\]$'
expect_out '^file-mode=400 owner=3434$'
expect_out '^dir-mode=500$'
expect_out '^file: \[masked:signing_key\]$'
expect_out '^secrets-read-only$'
expect_out '^file-secret-in-env=0$'
expect_out '^late: \[masked:npm_token\]$'
expect_out '^second step done$'
grep -qF "$VALUE" "$OUT" && fail "the raw secret reached the output"
grep -qF "$(printf '%s' "$VALUE" | base64 -w0)" "$OUT" && fail "the base64 secret reached the output"
grep -qF "$(cat "$SECRETS/signing_key")" "$OUT" && fail "the file secret reached the output"
grep -qF "$VALUE" "$GATEHOUSE_AUDIT_LOG" && fail "the secret reached the audit log"

# Unsafe secret files refuse the job before anything runs.
chmod 644 "$SECRETS/npm_token"
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 4
expect_out 'chmod 600'
expect_no_out '^==>'
chmod 600 "$SECRETS/npm_token"
printf 'short' > "$SECRETS/npm_token"
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 4
expect_out 'shorter than 8 bytes'
expect_no_out '^==>'
rm "$SECRETS/npm_token"
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 4
expect_out "$SECRETS/npm_token"
expect_no_out '^==>'
echo ok

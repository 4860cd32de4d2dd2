#!/bin/bash
# `gatehouse sign`: make a key, sign a job, and check the agent's verdict with
# `sign --verify` (exit 0 admitted, 3 refused, 2 bad input): a good
# signature verifies; a changed config, a changed metadata field, another
# key, an untrusted key name and a malformed signature are refused with
# their exact words, also when the policy does not require signatures.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"

# gh ARGS...: `gatehouse ARGS...`, stdout and stderr in $OUT, status in $RC.
gh() {
  set +e
  "$GATEHOUSE" "$@" > "$OUT" 2>&1
  RC=$?
  set -e
}
expect_line() { grep -qxF -- "$1" "$OUT" || fail "output lacks the line: $1"; }

umask 022  # the key must come out 0600 whatever the umask allows
cd "$WORK"
gh sign --generate-key a.pem
expect_rc 0
PUB_A=$(sed -n 's/^ed25519: //p' "$OUT")
[[ "$PUB_A" =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "no public key line"
[ "$(stat -c %a a.pem)" = 600 ] || fail "a.pem is mode $(stat -c %a a.pem), not 600"
head -1 a.pem | grep -qx -- '-----BEGIN PRIVATE KEY-----' || fail "a.pem is not a PKCS#8 PEM"
cp a.pem a.copy
gh sign --generate-key a.pem
expect_rc 2
expect_out 'cannot create a.pem: File exists \(a key is never overwritten'
cmp -s a.pem a.copy || fail "an existing key was overwritten"
ln -s "$WORK/nowhere.pem" link.pem
gh sign --generate-key link.pem
expect_rc 2
[ ! -e nowhere.pem ] || fail "--generate-key followed a symlink"
gh sign --generate-key b.pem
expect_rc 0

cat > policy.yaml <<EOF
version: 1
signatures:
  trusted_keys:
    - name: release-key
      ed25519: $PUB_A
profiles: {default: {}}
EOF
sed 's/^signatures:/signatures:\n  required: true/' policy.yaml > required.yaml
printf 'version: 2.1\njobs:\n  build:\n    machine: true\n    steps:\n      - run: make release\n' > config.yml
JOB=build PROJECT=acme/app BRANCH=main TAG=v1.2 TRIGGER=tag REVISION=0123abcd
META=(--job build --project acme/app --branch main --tag v1.2 --trigger tag --revision 0123abcd)

gh sign --key a.pem --key-name release-key "${META[@]}" config.yml
expect_rc 0
grep -qxE '\{"key":"release-key","ed25519":"[A-Za-z0-9+/]{86}=="\}' "$OUT" || fail "not a signature object"
cp "$OUT" sig.json

# [FIELD=value] verify SIG POLICY: the verdict on the signed job, with a field changed as given.
verify() {
  gh sign --verify "$1" --policy "$2" --job "$JOB" --project "$PROJECT" --branch "$BRANCH" --tag "$TAG" \
    --trigger "$TRIGGER" --revision "$REVISION" config.yml
}
verify sig.json policy.yaml
expect_rc 0
expect_line 'verified: signed by trusted key `release-key`'
verify sig.json required.yaml
expect_rc 0

CHANGED='refused: the job'"'"'s signature does not verify with trusted key `release-key`: the job or its metadata changed after signing, or another key signed it'
for pol in policy.yaml required.yaml; do
  # The metadata, one field at a time; "" is a change too.
  for change in BRANCH=evil PROJECT=acme/other TAG=v9 TAG= TRIGGER=push REVISION=ffff JOB=deploy; do
    env_name=${change%%=*}
    saved=${!env_name}
    printf -v "$env_name" '%s' "${change#*=}"
    verify sig.json $pol
    printf -v "$env_name" '%s' "$saved"
    expect_rc 3
    expect_line "$CHANGED"
  done
  # The config, by one byte.
  cp config.yml config.orig
  sed -i 's/make release/make releasE/' config.yml
  verify sig.json $pol
  expect_rc 3
  expect_line "$CHANGED"
  cp config.orig config.yml
done

# Another key signing under the trusted name; a name the policy does not trust.
gh sign --key b.pem --key-name release-key "${META[@]}" config.yml
cp "$OUT" other.json
verify other.json policy.yaml
expect_rc 3
expect_line "$CHANGED"
gh sign --key a.pem --key-name stranger "${META[@]}" config.yml
cp "$OUT" stranger.json
verify stranger.json policy.yaml
expect_rc 3
expect_line 'refused: the job is signed by key `stranger`, which is not in the policy'"'"'s signatures.trusted_keys'

# No key name: every trusted key is tried.
gh sign --key a.pem "${META[@]}" config.yml
grep -qxE '\{"key":"","ed25519":"[A-Za-z0-9+/]{86}=="\}' "$OUT" || fail "not a nameless signature object"
cp "$OUT" nameless.json
verify nameless.json policy.yaml
expect_rc 0
expect_line 'verified: signed by trusted key `release-key`'
gh sign --key b.pem "${META[@]}" config.yml
cp "$OUT" nameless_b.json
verify nameless_b.json policy.yaml
expect_rc 3
expect_line 'refused: the job'"'"'s signature verifies with none of the policy'"'"'s 1 trusted keys: the job or its metadata changed after signing, or an untrusted key signed it'

# Malformed: a signature one byte short.
sed 's/"ed25519":"\(.*\)...=="/"ed25519":"\1"/' sig.json > short.json
verify short.json policy.yaml
expect_rc 3
expect_line 'refused: the job'"'"'s signature is malformed: `ed25519` must be the base64 of 64 bytes'

# Unsigned (`null`, as on the wire): admitted unless required.
echo null > null.json
verify null.json policy.yaml
expect_rc 0
expect_line 'admitted: the job is unsigned, and the policy does not require a signature'
verify null.json required.yaml
expect_rc 3
expect_line 'refused: the job is unsigned, and the policy requires a signature (signatures.required: true)'

# A key made by OpenSSL itself signs the same way.
if command -v openssl > /dev/null; then
  openssl genpkey -algorithm ed25519 -out c.pem 2> /dev/null
  chmod 600 c.pem
  PUB_C=$(openssl pkey -in c.pem -pubout -outform DER | tail -c 32 | base64)
  sed "s|$PUB_A|$PUB_C|" policy.yaml > policy_c.yaml
  gh sign --key c.pem --key-name release-key "${META[@]}" config.yml
  cp "$OUT" c.json
  verify c.json policy_c.yaml
  expect_rc 0
  verify sig.json policy_c.yaml
  expect_rc 3
else
  echo "note: openssl(1) not installed; the OpenSSL-made key case is not run" >&2
fi

# The private key: refused when others may read it, or through a symlink.
chmod 640 a.pem
gh sign --key a.pem "${META[@]}" config.yml
expect_rc 2
expect_line "gatehouse sign: the private key a.pem is open to group or others (mode 0640); run: chmod 600 a.pem"
chmod 600 a.pem
ln -s a.pem alias.pem
gh sign --key alias.pem "${META[@]}" config.yml
expect_rc 2
expect_out 'cannot open private key alias.pem'
gh sign --key config.yml "${META[@]}" config.yml
expect_rc 2
chmod 600 config.yml
gh sign --key config.yml "${META[@]}" config.yml
expect_rc 2
expect_line 'gatehouse sign: config.yml: the private key is not an unencrypted PEM private key (make one with `gatehouse sign --generate-key`)'

# Usage.
gh sign "${META[@]}" config.yml
expect_rc 2
expect_out 'give exactly one of --key'
gh sign --key a.pem --verify sig.json "${META[@]}" config.yml
expect_rc 2
gh sign --verify sig.json "${META[@]}" config.yml
expect_rc 2
expect_out 'needs --policy'
gh sign --key a.pem --key-name 'Bad Name' "${META[@]}" config.yml
expect_rc 2
expect_out 'key name `Bad Name` is not valid'
gh sign --key a.pem --job build --trigger pushed config.yml
expect_rc 2
gh sign --key a.pem --project acme/app config.yml
expect_rc 2
expect_out '--job must name the job'
echo '{"ed25519": "x", "alg": "none"}' > odd.json
verify odd.json policy.yaml
expect_rc 2
expect_out 'unknown key'

# The policy side: a rule's signed_by must name a trusted key.
cat > bad_rule.yaml <<EOF
version: 1
signatures:
  trusted_keys:
    - name: release-key
      ed25519: $PUB_A
profiles: {a: {}}
rules:
  - match: {signed_by: relase-key}
    profile: a
  - profile: a
EOF
gh policy check bad_rule.yaml
expect_rc 2
expect_out '^bad_rule.yaml:8:24: error: signed_by `relase-key` matches no key in signatures.trusted_keys$'

echo "sign: all verdicts as expected"

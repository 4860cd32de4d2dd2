#!/bin/bash
# `gatehouse policy check|explain|diff|digest` against the expected outputs
# in tests/golden/, and their exit statuses (broker/policy_command.hpp).
#
# The commands run from tests/golden/ with relative file names, so the
# outputs hold no temporary paths. After an intended change of wording:
#   UPDATE_GOLDEN=1 GATEHOUSE=build/gatehouse tests/integration/policy_tools.sh
# rewrites the .out files (exit statuses are still checked); review them
# with `git diff tests/golden` before committing. Without UPDATE_GOLDEN any
# difference fails the test.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
GOLDEN=$(cd "$HERE/../golden" && pwd)
cd "$GOLDEN"
set -e

# golden NAME WANT_RC ARGS...: `gatehouse policy ARGS...` (stdout and stderr)
# must exit WANT_RC and print exactly NAME.out.
golden() {
  local name=$1 want=$2
  shift 2
  set +e
  "$GATEHOUSE" policy "$@" > "$OUT" 2>&1
  RC=$?
  set -e
  [ "$RC" = "$want" ] || fail "policy $* exited $RC, expected $want"
  if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
    cp "$OUT" "$name.out"
    return
  fi
  [ -f "$name.out" ] || fail "tests/golden/$name.out is missing (UPDATE_GOLDEN=1 writes it)"
  diff -u "$name.out" "$OUT" >&2 || fail "policy $*: output differs from tests/golden/$name.out (UPDATE_GOLDEN=1 to accept)"
}

# run_policy ARGS...: `gatehouse policy ARGS...`, stdout only, in $OUT; status in $RC.
run_policy() {
  set +e
  "$GATEHOUSE" policy "$@" > "$OUT" 2> "$WORK/stderr"
  RC=$?
  set -e
}

# check: 0 clean or warnings only, 1 warnings with --strict, 2 errors.
golden check_clean 0 check clean.yaml
golden check_warnings 0 check warnings.yaml
golden check_warnings 1 check --strict warnings.yaml
golden check_clean 0 check --strict clean.yaml
golden check_errors 2 check errors.yaml
golden check_several 2 check clean.yaml errors.yaml warnings.yaml
# Messages that name the real mistake: a quoted number or boolean (drop the
# quotes), out of range, negative, a leading zero (octal to YAML 1.1).
golden check_messages 2 check messages.yaml
# Glob lists compared by what they match: narrowed to names within the old
# pattern (exit 0), widened to a pattern around it (exit 1), and a change
# neither way that cannot be shown narrower (exit 1, and it says so).
golden diff_globs_narrowed 0 diff old.yaml globs_narrowed.yaml
golden diff_globs_widened 1 diff old.yaml globs_widened.yaml
golden diff_globs_undecided 1 diff old.yaml globs_undecided.yaml
# The same for network.allow (names, `*.` wildcards, networks, port ranges)
# and docker.proxy.ports; a rewrite that matches the same is unchanged.
golden diff_hosts_narrowed 0 diff hosts_old.yaml hosts_narrowed.yaml
golden diff_hosts_widened 1 diff hosts_old.yaml hosts_widened.yaml
golden diff_hosts_undecided 1 diff hosts_old.yaml hosts_undecided.yaml
golden diff_hosts_same 0 diff hosts_old.yaml hosts_same.yaml

# explain: everything, one profile, the profile a job's metadata selects.
golden explain_clean 0 explain clean.yaml
golden explain_warnings 0 explain warnings.yaml
golden explain_profile 0 explain clean.yaml --profile trusted
golden explain_main_push 0 explain clean.yaml --project acme/app --branch main --trigger push
golden explain_fork 0 explain clean.yaml --project acme/app --branch main --trigger fork_pull_request
golden explain_no_profile 2 explain clean.yaml --profile nope
golden explain_errors 2 explain errors.yaml

# diff: 1 when anything widens, 0 when it only narrows or keeps, 2 on errors.
golden diff_widened 1 diff old.yaml widened.yaml
golden diff_narrowed 0 diff old.yaml narrowed.yaml
golden diff_same 0 diff old.yaml old.yaml
golden diff_errors 2 diff old.yaml errors.yaml
# Widening one way is narrowing the other, and vice versa.
run_policy diff widened.yaml old.yaml
[ "$RC" = 1 ] || fail "diff widened.yaml old.yaml exited $RC (it removes a rule, which counts as widened)"
grep -q '^- narrowed  profile `ci`: resources.memory: 8 GiB -> 4 GiB$' "$OUT" || fail "memory 8G -> 4G not narrowed"
run_policy diff narrowed.yaml old.yaml
[ "$RC" = 1 ] || fail "diff narrowed.yaml old.yaml exited $RC, expected 1"
grep -q '^+ WIDENED  profile `release`: secrets: release_key added' "$OUT" || fail "secret added not widened"
# machine.images and machine.resource_classes are sets: an entry added
# widens, one removed narrows, another order is no change.
run_policy diff old.yaml widened.yaml
grep -q '^+ WIDENED  profile `ci`: machine.images: added android:\*$' "$OUT" || fail "machine image added not widened"
run_policy diff old.yaml narrowed.yaml
grep -q '^- narrowed  profile `ci`: machine.resource_classes: removed arm.\*$' "$OUT" || fail "resource class removed not narrowed"
grep -q '^  unchanged profile `ci`: machine.images: ubuntu-2204:\*, default$' "$OUT" || fail "machine.images not unchanged"

# digest: the canonical form, its digest, and the fixed point.
golden digest_clean 0 digest clean.yaml
golden canonical_clean 0 digest --canonical clean.yaml
golden canonical_warnings 0 digest --canonical warnings.yaml
golden digest_errors 2 digest errors.yaml
for f in clean.yaml warnings.yaml old.yaml widened.yaml narrowed.yaml ../../examples/policy.yaml; do
  run_policy digest "$f"
  [ "$RC" = 0 ] || fail "digest $f exited $RC"
  want=$(cut -d' ' -f1 "$OUT")
  [[ "$want" =~ ^[0-9a-f]{64}$ ]] || fail "digest $f: not a lower-case SHA-256"
  run_policy digest --canonical "$f"
  cp "$OUT" "$WORK/canonical.yaml"
  [ "$(sha256sum < "$WORK/canonical.yaml" | cut -d' ' -f1)" = "$want" ] || fail "digest $f is not the SHA-256 of its canonical form"
  run_policy digest "$WORK/canonical.yaml"
  [ "$(cut -d' ' -f1 "$OUT")" = "$want" ] || fail "the canonical form of $f digests differently"
  run_policy digest --canonical "$WORK/canonical.yaml"
  cmp -s "$OUT" "$WORK/canonical.yaml" || fail "the canonical form of $f is not a fixed point"
  run_policy check --strict "$WORK/canonical.yaml"
  [ "$RC" != 2 ] || fail "the canonical form of $f does not check: $(cat "$OUT")"
done
# Spelling differs, meaning does not: same digest.
sed -e 's/memory: 2G/memory: 2048M/' -e 's/max_run_time: 30m/max_run_time: 1800/' clean.yaml > "$WORK/respelled.yaml"
run_policy digest "$WORK/respelled.yaml"
[ "$(cut -d' ' -f1 "$OUT")" = "$(cut -d' ' -f1 digest_clean.out)" ] || fail "a respelled clean.yaml digests differently"
sed -e 's/memory: 2G/memory: 3G/' clean.yaml > "$WORK/changed.yaml"
run_policy digest "$WORK/changed.yaml"
[ "$(cut -d' ' -f1 "$OUT")" != "$(cut -d' ' -f1 digest_clean.out)" ] || fail "a changed clean.yaml digests the same"

if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
  echo "policy tools: golden outputs rewritten; review: git diff tests/golden"
else
  echo "policy tools: all golden outputs match"
fi

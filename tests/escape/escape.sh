#!/bin/bash
# One hostile job: runs `gatehouse-probe ARGS...` inside the sandbox and
# asserts that the attempt ran ("probe NAME: attempting") and failed in
# exactly the expected way ("probe NAME: result=EXPECTED").
#
#   escape.sh CASE EXPECTED PROBE-ARGS...
#
# EXPECTED is an extended regex matched against the result; "killed:SIG"
# expects the probe to be killed by that signal number after attempting.
# ESCAPE_AS=ns-root runs the job as root in its user namespace
# (user.root_in_namespace), ESCAPE_AS=ns-root-overlay also with
# filesystem.root overlay; unset, the built-in profile.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
: "${PROBE:?PROBE must point at gatehouse-probe}"
case_name=$1 expected=$2
shift 2
name=$1
# A secret the job must not read is made to exist on the host for the test
# (and removed after), so "absent in the job" is proven, not assumed.
if [ "$name" = read-file ] && [ ! -e "$2" ]; then
  made=$2
  d=$(dirname "$made")
  while [ ! -e "$d" ]; do made_dir=$d; d=$(dirname "$d"); done
  mkdir -p "$(dirname "$2")"
  echo "gatehouse-escape-canary" > "$2"
  chmod 600 "$2"
  trap 'rm -f "$made"; [ -n "${made_dir:-}" ] && rm -rf "$made_dir"; rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK/job"
cp "$PROBE" "$WORK/job/gatehouse-probe"
args=""
for a in "$@"; do
  # The broker's canary goes in hex, so the secret never appears in the
  # job's own command lines (which the probe scans too).
  [ "$a" = "@canary-hex" ] && a="hex:$(printf %s "${GATEHOUSE_ESCAPE_CANARY:?}" | od -An -tx1 | tr -d ' \n')"
  args="$args '$a'"
done
cat > "$WORK/job/config.yml" <<YAML
version: 2.1
jobs:
  escape:
    machine: true
    steps:
      - checkout
      - run:
          name: escape attempt $case_name
          command: |
            set +e
            echo "uid=\$(id -u) "
            ./gatehouse-probe $args
            echo "probe-status=\$?"
YAML
policy_args=()
case "${ESCAPE_AS:-}" in
  "") ;;
  ns-root|ns-root-overlay)
    {
      echo "version: 1"; echo "profiles:"; echo "  default:"
      echo "    user: {root_in_namespace: true}"
      if [ "$ESCAPE_AS" = ns-root-overlay ]; then echo "    filesystem: {root: overlay, overlay_size: 256M}"; fi
    } > "$WORK/policy.yaml"
    policy_args=(--policy "$WORK/policy.yaml")
    ;;
  *) fail "unknown ESCAPE_AS=$ESCAPE_AS" ;;
esac
run_job "$WORK/job/config.yml" "${policy_args[@]}"
# The job really ran as asked: root in its namespace, or not.
if [ -n "${ESCAPE_AS:-}" ]; then expect_out "^uid=0 "; else expect_no_out "^uid=0 "; fi
expect_out "^probe $name: attempting"
case "$expected" in
  killed:*)
    sig=${expected#killed:}
    expect_out "^probe-status=$((128 + sig))\$"
    expect_no_out "^probe $name: result="
    ;;
  *)
    grep -E "^probe $name: result=" "$OUT" | head -1 | grep -qE "result=($expected)( |\$)" ||
      fail "expected result $expected, got: $(grep -E "^probe $name: result=" "$OUT" | head -1)"
    ;;
esac
expect_rc 0
echo "case $case_name: $(grep -E "^probe $name: result=|^probe-status=" "$OUT" | tr '\n' ' ')"

#!/bin/bash
# The worker (pid 1 of the job) holds the job spec and runs as the steps'
# uid. A step that could open /proc/1/mem for writing could rewrite the
# next step's command (or read secrets meant for other steps); the worker
# makes itself non-dumpable first thing, so the open fails with EACCES,
# and the following step runs the command the broker sent. Checked as the
# job's ordinary uid and as root in the job's user namespace.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
: "${PROBE:?PROBE must point at gatehouse-probe}"
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
# Same length: the probe rewrites in place. Only hex reaches step 1's
# command line, so the probe cannot find (and count) its own copy.
from=original-command-ran
to=hijacked-command-ran
mkdir -p "$WORK/j"
cp "$PROBE" "$WORK/j/gatehouse-probe"
cat > "$WORK/j/config.yml" <<YAML
steps:
  - checkout
  - run:
      name: rewrite the worker's memory
      command: |
        echo "uid=\$(id -u) "
        ./gatehouse-probe rewrite-pid1-memory hex:$(hex $from) hex:$(hex $to)
        ./gatehouse-probe ptrace-pid1
  - run:
      name: the step the attack aimed at
      command: echo $from
YAML
printf 'version: 1\nprofiles:\n  default:\n    user: {root_in_namespace: true}\n' > "$WORK/ns-root.yaml"
for mode in plain ns-root; do
  args=()
  [ $mode = plain ] || args=(--policy "$WORK/ns-root.yaml")
  run_job "$WORK/j/config.yml" "${args[@]}"
  if [ $mode = plain ]; then expect_no_out "^uid=0 "; else expect_out "^uid=0 "; fi
  expect_out "^probe rewrite-pid1-memory: attempting"
  got=$(grep -E "^probe rewrite-pid1-memory: (result|replaced)=" "$OUT" | head -1)
  [ "$got" = "probe rewrite-pid1-memory: result=EACCES" ] || fail "$mode: /proc/1/mem opened for writing? got: $got"
  expect_out "^probe ptrace-pid1: result=EPERM"
  expect_out "^$from\$"
  expect_no_out "$to"
  expect_rc 0
  echo "$mode: $got; the next step ran its own command"
done

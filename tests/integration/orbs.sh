#!/bin/bash
# Orbs from the local orb folder under `gatehouse run`: the broker reads the
# orbs the job uses (and only those) from --orb-dir, the parse child expands
# them; a partial version takes the highest the folder holds; an orb the
# folder lacks, or a name that could climb out of it, is refused at its line
# with nothing run; a folder of orbs is never fetched from the network.
. "$(dirname "$0")/../lib.sh"
set -e
need_root

ORBS="$WORK/orbs"
mkdir -p "$ORBS/acme"
for v in 1.2.0 1.10.0 2.0.0; do
  cat > "$ORBS/acme/tools@$v.yml" <<YAML
version: 2.1
description: a test orb, version $v
commands:
  greet:
    parameters:
      who: {type: string, default: world}
    steps:
      - run: echo "tools $v greets << parameters.who >>"
executors:
  box:
    machine: {image: ubuntu-2204:current}
    environment: {FROM_ORB_EXECUTOR: "$v"}
YAML
done
# An orb no job names is never read: a broken one costs nothing.
echo "this: [is not: an orb" > "$ORBS/acme/broken@1.0.0.yml"

f=$(job orbs <<'YAML'
version: 2.1
orbs:
  tools: acme/tools@1
  unused: acme/broken@1.0.0
jobs:
  build:
    executor: tools/box
    steps:
      - tools/greet
      - tools/greet: {who: gatehouse}
      - run: echo "executor env $FROM_ORB_EXECUTOR"
YAML
)
run_job "$f" --orb-dir "$ORBS"
expect_rc 0
expect_out '^tools 1\.10\.0 greets world$'        # @1: the highest 1.x.y, numerically
expect_out '^tools 1\.10\.0 greets gatehouse$'
expect_out '^executor env 1\.10\.0$'

# GATEHOUSE_ORB_DIR names it too.
set +e
GATEHOUSE_ORB_DIR="$ORBS" NO_COLOR=1 timeout 300 "$GATEHOUSE" run "$f" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 0
expect_out '^tools 1\.10\.0 greets world$'

# Not in the folder: refused at the line of `orbs:` that names it, naming
# the orb, the version and the folder; the job's steps never ran.
g=$(job missing <<'YAML'
version: 2.1
orbs:
  node: circleci/node@5.1.0
jobs:
  build:
    steps:
      - run: touch /tmp/gatehouse-orbs-MUST-NOT-RUN
      - node/install
YAML
)
rm -f /tmp/gatehouse-orbs-MUST-NOT-RUN
run_job "$g" --orb-dir "$ORBS"
expect_rc 2
expect_out "config\.yml:3:9: error: orb \`circleci/node@5\.1\.0\` is not in the local orb folder $ORBS: this runner does not fetch orbs from the network"
[ ! -e /tmp/gatehouse-orbs-MUST-NOT-RUN ] || fail "a step ran although the job was refused"

# A name that would make a path outside the folder is refused before any
# path is made from it.
h=$(job climb <<'YAML'
version: 2.1
orbs:
  x: ../../etc/passwd@1
jobs:
  build:
    steps: [x/y]
YAML
)
run_job "$h" --orb-dir "$ORBS"
expect_rc 2
expect_out 'config\.yml:3:6: error: orb `x` must name an orb as namespace/name@version'
echo "orbs: local orb folder honoured, missing and hostile names refused"

#!/bin/bash
# Bad input: exit 2, nothing runs, errors name file:line:column with the line
# and a caret; unsupported features are refused naming the step and line.
. "$(dirname "$0")/../lib.sh"
set -e
need_root

f=$(job unknown_key <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run:
          command: touch /tmp/MUST-NOT-RUN
          colour: blue
YAML
)
run_job "$f"
expect_rc 2
expect_out "config.yml:8:11: error: .*colour"
expect_out '^  +colour: blue$'
expect_out '^ +\^$'
expect_no_out '==>'

f=$(job docker <<'YAML'
version: 2.1
jobs:
  build:
    docker:
      - image: cimg/base:stable
    steps:
      - run: echo hi
YAML
)
run_job "$f"
expect_rc 2
expect_out 'config.yml:4:5: error: .*machine runner'

f=$(job cache <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: echo MUST-NOT-RUN
      - save_cache:
          key: k
          paths: [x]
YAML
)
run_job "$f"
expect_rc 2
expect_out 'config.yml:7:[0-9]+: error: .*save_cache'
expect_no_out 'MUST-NOT-RUN'

f=$(job ambiguous <<'YAML'
version: 2.1
jobs:
  one:
    machine: true
    steps: [{run: echo one}]
  two:
    machine: true
    steps: [{run: echo two}]
YAML
)
run_job "$f"
expect_rc 2
expect_out 'one'
expect_out 'two'
run_job "$f" --job nope
expect_rc 2
run_job "$f" --job two
expect_rc 0
expect_out '^two$'

printf 'version: 2.1\njobs:\n  a:\n    steps: [ {run: echo\n' > "$WORK/broken.yml"
run_job "$WORK/broken.yml"
expect_rc 2
expect_out 'broken.yml:[0-9]+:[0-9]+: error'

run_job "$WORK/does-not-exist.yml"
expect_rc 2
run_job
expect_rc 2
echo ok

#!/bin/bash
# A real job through `gatehouse run`: steps, output, identity, environment,
# the working directory, `when`, exit statuses and the summary.
. "$(dirname "$0")/../lib.sh"
set -e
need_root

f=$(job basic <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    environment:
      JOBVAR: from-job
      SHARED: job
    steps:
      - checkout
      - run: echo "first step says hi"
      - run:
          name: identity and environment
          environment:
            SHARED: step
          command: |
            echo "user=$(id -un) uid=$(id -u) home=$HOME pwd=$(pwd)"
            echo "CI=$CI CIRCLECI=$CIRCLECI CIRCLE_JOB=$CIRCLE_JOB CIRCLE_WORKING_DIRECTORY=$CIRCLE_WORKING_DIRECTORY"
            echo "JOBVAR=$JOBVAR SHARED=$SHARED"
            test -f config.yml
      - run:
          name: default signal dispositions
          command: |
            set +o pipefail
            yes | head -1 >/dev/null; echo "yes-status=${PIPESTATUS[0]}"
      - run:
          name: skipped on success
          when: on_fail
          command: echo SHOULD-NOT-RUN
      - run:
          name: always runs
          when: always
          command: echo always-ran
YAML
)
run_job "$f"
expect_rc 0
expect_out '^==> \[2/6\] echo "first step says hi"'
expect_out '^yes-status=141$'
expect_out '^first step says hi$'
expect_out 'user=circleci uid=3434 home=/home/circleci pwd=/home/circleci/project'
expect_out 'CI=true CIRCLECI=true CIRCLE_JOB=build CIRCLE_WORKING_DIRECTORY=~/project'
expect_out 'JOBVAR=from-job SHARED=step'
expect_no_out '^SHOULD-NOT-RUN'
expect_out 'always-ran'
expect_out '<== \[5\] skipped on success: not run'
expect_out 'result: PASSED \(exit 0\)'
expect_out 'peak memory [0-9.]+ (KiB|MiB)'

# A failing step: exit 1, on_fail runs, later on_success steps do not.
f=$(job failing <<'YAML'
version: 2
jobs:
  build:
    machine: true
    steps:
      - run: echo before; false; echo AFTER-FALSE
      - run: echo NEXT-SHOULD-NOT-RUN
      - run:
          when: on_fail
          command: echo on-fail-ran
YAML
)
run_job "$f"
expect_rc 1
expect_out '^before$'
expect_no_out '^AFTER-FALSE'
expect_no_out '^NEXT-SHOULD-NOT-RUN'
expect_out 'on-fail-ran'
expect_out 'result: FAILED \(exit 1\)'

# A single-job file (steps at the top) and pipefail.
f=$(job single <<'YAML'
steps:
  - run: false | true
YAML
)
run_job "$f"
expect_rc 1
echo ok

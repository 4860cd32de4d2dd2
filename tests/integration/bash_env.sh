#!/bin/bash
# BASH_ENV as CircleCI has it: a file, empty and the job's own before the
# first step, that bash reads at the start of every `run` step. What one
# step appends to it reaches the next; nothing else of a step does (its
# `cd`, its variables, even exported ones). `sh` does not read it, as on
# CircleCI.
. "$(dirname "$0")/../lib.sh"
set -e
need_root

f=$(job bash_env <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: |
          test -f "$BASH_ENV" && test ! -s "$BASH_ENV" && echo "empty at start: $BASH_ENV"
          stat -c 'owner=%U mode=%a' "$BASH_ENV"
      - run: |
          echo 'export FROM_BASH_ENV=1' >> "$BASH_ENV"
          cd /tmp
          LOCAL_ONLY=leaked
          export EXPORTED_ONLY=leaked
      - run: echo "X=${FROM_BASH_ENV:-unset} pwd=$(pwd) local=${LOCAL_ONLY:-unset} exported=${EXPORTED_ONLY:-unset}"
      - run:
          shell: /bin/sh
          command: echo "sh sees ${FROM_BASH_ENV:-unset}"
      - run: echo 'X=$((X + 1))' >> "$BASH_ENV"; echo 'export X' >> "$BASH_ENV"
      - run: echo "counted to ${X:-unset}"
      - run: echo "still ${X:-unset}"
YAML
)
run_job "$f"
expect_rc 0
expect_out '^empty at start: /tmp/\.bash_env-run-[0-9a-f]{16}$'
expect_out '^owner=circleci mode=644$'
expect_out '^X=1 pwd=/home/circleci/project local=unset exported=unset$'
expect_out '^sh sees unset$'
# Read afresh by each step: the line it appended runs again in every later one.
expect_out '^counted to 1$'
expect_out '^still 1$'

# Each job has its own: a second run starts empty.
run_job "$f"
expect_rc 0
expect_out '^X=1 pwd=/home/circleci/project'
echo ok

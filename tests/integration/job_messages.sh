#!/bin/bash
# Job-file refusals against the expected outputs in tests/golden/job_messages/
# (exit 2, nothing runs): setup_remote_docker and add_ssh_keys under a
# profile that grants Docker and secrets say what the policy can give, not
# that it denies it; "available jobs" follows only an error about which job
# to run. After an intended change of wording:
#   UPDATE_GOLDEN=1 GATEHOUSE=build/gatehouse tests/integration/job_messages.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
need_root
cd "$HERE/../golden/job_messages"
rm -f /tmp/MUST-NOT-RUN

# golden NAME ARGS...: `gatehouse run ARGS...` must exit 2 and print NAME.out.
golden() {
  local name=$1
  shift
  run_job --policy docker_and_secrets.yaml "$@"
  expect_rc 2
  if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
    cp "$OUT" "$name.out"
    return
  fi
  diff -u "$name.out" "$OUT" >&2 || fail "run $*: output differs from tests/golden/job_messages/$name.out (UPDATE_GOLDEN=1 to accept)"
}

# --job names a valid job; the errors are in its steps: no job list.
golden refused_steps --job build config.yml
# No --job, or a job that does not exist: the choice is the error, so the
# jobs there are follow.
golden no_job config.yml
golden unknown_job --job deploy config.yml
[ ! -e /tmp/MUST-NOT-RUN ] || fail "a refused job ran"
echo "job messages: all golden outputs match"

#!/bin/bash
# The job ends as a unit: background steps, daemons and double forks are
# gone afterwards; no_output_timeout and max_run_time kill what hangs; the
# job's folder is removed (or kept with --keep); leftovers of a crashed run
# are swept at the next start.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
WR="$WORK/workroot"
work_root_mount "$WR"
export GATEHOUSE_WORK_ROOT="$WR"

f=$(job bg <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run:
          name: server
          background: true
          command: |
            echo bg-started
            exec sleep 1000
      - run: |
          sleep 0.5; echo "uid_map: $(cat /proc/self/uid_map)"
      - run: |
          (setsid sleep 999 &) ; nohup sleep 998 >/dev/null 2>&1 & echo daemons-started
YAML
)
run_job "$f"
expect_rc 0
expect_out 'bg-started'
expect_out 'daemons-started'
expect_out 'server: killed by signal 9'
hostuid=$(host_uid_of "$OUT")
[ -n "$hostuid" ] || fail "no host uid in output"
sleep 0.2
if pgrep -u "$hostuid" >/dev/null; then fail "processes of host uid $hostuid survived the job: $(pgrep -a -u "$hostuid")"; fi
[ -z "$(ls -A "$WR")" ] || fail "job folder left behind: $(ls "$WR")"

# no_output_timeout
f=$(job quiet <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run:
          no_output_timeout: 2s
          command: echo talking; sleep 30; echo NEVER
YAML
)
start=$(date +%s)
run_job "$f"
expect_rc 1
expect_out 'too long with no output \(exceeded 2s\)'
expect_out 'no output for 2s: killed'
expect_no_out '^NEVER'
[ $(( $(date +%s) - start )) -lt 20 ] || fail "timeout did not fire in time"

# The profile's no_output_timeout applies to steps that set none.
cat > "$WORK/quiet.yaml" <<'YAML'
version: 1
profiles:
  default:
    resources:
      no_output_timeout: 2s
YAML
f=$(job quiet2 <<'YAML'
steps:
  - run: echo talking; sleep 30; echo NEVER
YAML
)
run_job "$f" --policy "$WORK/quiet.yaml"
expect_rc 1
expect_out 'no output for 2s: killed'

# max_run_time from the policy
cat > "$WORK/short.yaml" <<'YAML'
version: 1
profiles:
  default:
    resources:
      max_run_time: 3s
YAML
f=$(job long <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: while true; do echo tick; sleep 1; done
      - run: echo NEVER-RUNS
YAML
)
run_job "$f" --policy "$WORK/short.yaml"
expect_rc 1
expect_out 'maximum run time'
expect_no_out '^NEVER-RUNS'

# --keep keeps the folder; a leftover with a free uid lock is swept.
f=$(job keep <<'YAML'
steps:
  - run: echo kept > kept.txt
YAML
)
run_job "$f" --keep
expect_rc 0
kept=$(ls "$WR")
[ -n "$kept" ] || fail "--keep did not keep the folder"
[ -f "$WR/$kept/workspace/kept.txt" ] || fail "kept folder lacks the job's file"
run_job "$f"
expect_rc 0
[ -z "$(ls -A "$WR")" ] || fail "leftover $kept was not swept: $(ls "$WR")"

# SIGTERM to the broker cancels the job: exit 4, nothing left running.
f=$(job cancel <<'YAML'
steps:
  - run: |
      echo "uid_map: $(cat /proc/self/uid_map)"; sleep 1000
YAML
)
set +e
NO_COLOR=1 "$GATEHOUSE" run "$f" > "$OUT" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q uid_map "$OUT" && break; sleep 0.1; done
kill -TERM $pid
wait $pid
RC=$?
set -e
expect_rc 4
expect_out 'canceled by the operator'
hostuid=$(host_uid_of "$OUT")
sleep 0.2
if pgrep -u "$hostuid" >/dev/null; then fail "processes survived the cancel"; fi
echo ok

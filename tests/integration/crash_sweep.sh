#!/bin/bash
# A broker killed with SIGKILL mid-job takes the job with it (the worker has
# PDEATHSIG), and the next run sweeps the folder and cgroup it left.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
WR="$WORK/workroot"
work_root_mount "$WR"
export GATEHOUSE_WORK_ROOT="$WR"
f=$(job crash <<'YAML'
steps:
  - run: |
      echo "uid_map: $(cat /proc/self/uid_map)"
      sleep 1000
YAML
)
NO_COLOR=1 "$GATEHOUSE" run "$f" > "$OUT" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q uid_map "$OUT" && break; sleep 0.05; done
hostuid=$(host_uid_of "$OUT")
[ -n "$hostuid" ] || fail "the job did not start"
kill -KILL $pid
wait $pid 2>/dev/null || true
sleep 0.3
# Zombies do not count: the host's init reaps the dead worker when it will.
live=$(ps -u "$hostuid" -o stat=,pid=,comm= | grep -v '^Z' || true)
[ -z "$live" ] || fail "job processes outlived the broker: $live"
left=$(ls "$WR")
[ -n "$left" ] || fail "expected a leftover folder after SIGKILL"
f2=$(job next <<'YAML'
steps:
  - run: echo next
YAML
)
run_job "$f2"
expect_rc 0
[ ! -e "$WR/$left" ] || fail "leftover $left was not swept"
for h in /sys/fs/cgroup/unified /sys/fs/cgroup/memory /sys/fs/cgroup; do
  # the next job may reuse the uid, but removes its cgroup when it ends
  if [ -d "$h/gatehouse/job-$hostuid" ]; then fail "stale cgroup $h/gatehouse/job-$hostuid"; fi
done
echo ok

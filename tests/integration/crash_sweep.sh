#!/bin/bash
# A broker killed with SIGKILL mid-job takes the job with it (the worker has
# PDEATHSIG), the front end says so (exit 4), and the next run sweeps the
# folder and cgroup it left. A front end killed mid-job is a watcher gone:
# the broker cancels the job and cleans up at once.
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
broker=$(pgrep -P $pid -x gatehouse-broke || true)
[ -n "$broker" ] || fail "no gatehouse-broker under the front end $pid"
kill -KILL "$broker"
wait $pid && rc=0 || rc=$?
[ "$rc" = 4 ] || fail "the front end exited $rc after its broker was killed, not 4"
expect_out 'the broker was killed by signal 9'
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

# The front end killed: its broker cancels the job and removes its folder.
NO_COLOR=1 "$GATEHOUSE" run "$f" > "$OUT" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q uid_map "$OUT" && break; sleep 0.05; done
hostuid=$(host_uid_of "$OUT")
[ -n "$hostuid" ] || fail "the second job did not start"
broker=$(pgrep -P $pid -x gatehouse-broke || true)
kill -KILL $pid
wait $pid 2>/dev/null || true
for _ in $(seq 100); do kill -0 "$broker" 2>/dev/null || break; sleep 0.1; done
kill -0 "$broker" 2>/dev/null && fail "the broker went on after its front end was killed"
live=$(ps -u "$hostuid" -o stat=,pid=,comm= | grep -v '^Z' || true)
[ -z "$live" ] || fail "job processes outlived the canceled job: $live"
[ -z "$(ls "$WR")" ] || fail "the canceled job left $(ls "$WR")"
grep -q '"reason":"the stream'"'"'s reader went away: the job was canceled"' "$GATEHOUSE_AUDIT_LOG" ||
  fail "the audit log does not say the job was canceled because its watcher went away"
echo ok

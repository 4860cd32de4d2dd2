#!/bin/bash
# Cleanup takes each job folder back for root and removes it. Something
# that can still write in the workspace at that time (a container the job
# started that outlived it: Docker's default capabilities include
# CAP_DAC_OVERRIDE, whatever --user it runs as) keeps exchanging
# directories with symlinks to victims outside. Root must never act on a
# victim: their owner and mode stay as they were. The swapper runs as the
# job's host uid with CAP_DAC_OVERRIDE, as such a container process would
# (a process of the job's uid alone loses write access to each folder as
# cleanup takes it, before cleanup looks inside). The window of a cleanup
# that follows links is a few microseconds per entry, so the test runs
# many short rounds: the old walk (fstatat, fchownat, then a following
# fchmodat) changed a victim in about 1 to 3 of 24 rounds here; the
# fd-based one must never.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v python3 > /dev/null || skip "python3 is needed for the swapper"
command -v setpriv > /dev/null || skip "setpriv (util-linux) is needed to run the swapper as the job's uid"
WR="$WORK/workroot"
work_root_mount "$WR"
export GATEHOUSE_WORK_ROOT="$WR"
rounds=${CLEANUP_RACE_ROUNDS:-32}
pairs=${CLEANUP_RACE_PAIRS:-4}
# The victims: a file and a directory outside the work root, owned by
# nobody, modes no cleanup would give them.
mkdir "$WORK/victim-dir"
echo victim > "$WORK/victim-file"
chown nobody:nogroup "$WORK/victim-dir" "$WORK/victim-file"
chmod 0755 "$WORK/victim-dir"
chmod 0644 "$WORK/victim-file"
victims() { echo "$(stat -c '%u:%g %a' "$WORK/victim-file") $(stat -c '%u:%g %a' "$WORK/victim-dir")"; }
before=$(victims)

# The job makes the pairs (dN: a directory, lN: a link to a victim), then
# waits until the swapper runs, and ends: cleanup starts under the swapper.
f=$(job race <<YAML
steps:
  - run: |
      mkdir area && cd area
      for i in \$(seq 0 $((pairs - 1))); do
        mkdir -p d\$i/sub
        if [ \$((i % 2)) = 0 ]; then ln -s $WORK/victim-file l\$i; else ln -s $WORK/victim-dir l\$i; fi
      done
      touch ../ready
      for i in \$(seq 100); do [ -e ../go ] && break; sleep 0.05; done
YAML
)
# renameat2(RENAME_EXCHANGE) swaps a directory and a symlink atomically,
# as fast as it can, until cleanup removed the area or the test says stop.
# It counts the swaps made once cleanup reached the area (the broker takes
# each folder for root before it looks inside).
cat > "$WORK/swapper.py" <<'PY'
import ctypes, errno, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_renameat2, AT_FDCWD, RENAME_EXCHANGE = 316, -100, 2
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
os.chdir(sys.argv[1])
pairs = [(b"d%d" % i, b"l%d" % i) for i in range(int(sys.argv[2]))]
open("../go", "w").close()
swaps, during, end = 0, 0, "stopped"
while not stop:
    try:
        taken = os.stat(".").st_uid == 0
    except OSError:
        taken = True
    live = 0
    for a, b in pairs:
        for _ in range(50):
            if libc.syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0:
                swaps += 1
                during += taken
                live += 1
            elif ctypes.get_errno() != errno.ENOENT:
                live += 1
            else:
                break
    if live == 0:
        end = "area removed"
        break
print("swaps=%d during_cleanup=%d ended=%s" % (swaps, during, end))
PY
swapper=""
gh=""
trap '{ [ -z "$swapper" ] || kill $swapper; [ -z "$gh" ] || kill $gh; } 2> /dev/null || true; lib_cleanup' EXIT
hit=0
changed=0
for round in $(seq "$rounds"); do
  NO_COLOR=1 timeout 300 "$GATEHOUSE" run "$f" > "$OUT" 2>&1 &
  gh=$!
  ready=""
  for _ in $(seq 300); do ready=$(ls "$WR"/*/workspace/ready 2> /dev/null | head -1); [ -n "$ready" ] && break; sleep 0.05; done
  [ -n "$ready" ] || { wait $gh || true; fail "round $round: the job did not get ready"; }
  ws=$(dirname "$ready")
  uid=$(stat -c %u "$ws")
  setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=+dac_override --ambient-caps=+dac_override \
    python3 "$WORK/swapper.py" "$ws/area" "$pairs" > "$WORK/swapper.out" 2>&1 &
  swapper=$!
  set +e
  wait $gh
  RC=$?
  set -e
  gh=""
  kill -TERM $swapper 2> /dev/null || true
  wait $swapper || true
  swapper=""
  expect_rc 0
  s=$(cat "$WORK/swapper.out")
  grep -qE '^swaps=[0-9]+ during_cleanup=[1-9][0-9]* ended=' "$WORK/swapper.out" && hit=$((hit + 1))
  now=$(victims)
  if [ "$now" != "$before" ]; then
    changed=$((changed + 1))
    echo "round $round: $s; VICTIM CHANGED: $now"
  else
    echo "round $round: $s; victims unchanged"
  fi
  # Cleanup may leave what the swapper kept moving; the next start sweeps
  # it. Here it goes now, so the next round's `ls` finds one job.
  rm -rf "$(dirname "${ws:?}")"
  chown nobody:nogroup "$WORK/victim-dir" "$WORK/victim-file"
  chmod 0755 "$WORK/victim-dir"
  chmod 0644 "$WORK/victim-file"
done
[ "$changed" = 0 ] || fail "cleanup changed a victim outside the work root in $changed of $rounds rounds (before: $before)"
# The swapping happened while cleanup walked the area.
[ "$hit" -gt 0 ] || fail "in no round did a swap happen during cleanup"
echo "victims unchanged in $rounds rounds ($before); swaps during cleanup in $hit of them"

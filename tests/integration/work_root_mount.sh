#!/bin/bash
# Job workspaces live under the work root, where job uids and their Docker
# containers (as root) write. The broker runs jobs only when the work root
# is on a nosuid,nodev mount, so that a setuid file or device node left
# there is inert on the host:
#  (a) a work root on a mount without nosuid (or without nodev): exit 4,
#      a message saying how to fix it, and nothing runs;
#  (b) a setuid-root binary written into a running job's workspace from
#      outside (as root, as a container would) does not raise the host user
#      who runs it, and a device node there cannot be opened.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
f=$(job marker <<'YAML'
steps:
  - run: echo job-step-ran
YAML
)
# (a) A fresh tmpfs, mounted with neither flag.
bad="$WORK/plain-tmpfs"
mkdir "$bad"
mount -t tmpfs -o mode=0711,size=16m tmpfs "$bad"
GH_TEST_MOUNTS+=("$bad")
run_job "$f" --work-root "$bad"
expect_rc 4
expect_out "the work root $bad is on a mount without nosuid and nodev"
expect_out "mount --bind $bad $bad && mount -o remount,bind,nosuid,nodev $bad"
expect_out "/etc/fstab line \`$bad $bad none bind,nosuid,nodev 0 0\`"
expect_no_out job-step-ran
[ -z "$(ls -A "$bad")" ] || fail "a job folder was made in the refused work root: $(ls -A "$bad")"
# A bind mount with nosuid but not nodev is refused too, naming what lacks.
half="$WORK/nosuid-only"
mkdir "$half"
mount --bind "$half" "$half"
GH_TEST_MOUNTS+=("$half")
mount -o remount,bind,nosuid "$half"
run_job "$f" --work-root "$half"
expect_rc 4
expect_out "the work root $half is on a mount without nodev:"
expect_no_out job-step-ran
echo "(a) refused: no nosuid/nodev, and nosuid without nodev"

# (b) A proper work root; a job that waits while we plant files in it.
WR="$WORK/workroot"
work_root_mount "$WR"
w=$(job waits <<'YAML'
steps:
  - run: |
      touch ready
      for i in $(seq 100); do [ -e done ] && break; sleep 0.1; done
      echo job-finished
YAML
)
GATEHOUSE_WORK_ROOT="$WR" NO_COLOR=1 timeout 300 "$GATEHOUSE" run "$w" > "$OUT" 2>&1 &
gh=$!
trap 'kill $gh 2> /dev/null || true; wait $gh 2> /dev/null || true; lib_cleanup' EXIT
ready=""
for _ in $(seq 300); do ready=$(ls "$WR"/*/workspace/ready 2> /dev/null | head -1); [ -n "$ready" ] && break; sleep 0.1; done
[ -n "$ready" ] || fail "the job did not start"
ws=$(dirname "$ready")
uid=$(stat -c %u "$ws")
[ "$uid" != 0 ] || fail "the workspace belongs to root?"
as_job_uid() { setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"; }
# The control: the same setuid copy where the mount allows setuid (a
# folder only root and that uid can reach) does make its caller root.
ctl="$WORK/control"
mkdir -m 0700 "$ctl"
chown "$uid:$uid" "$ctl"
install -o root -g root -m 4755 "$(command -v id)" "$ctl/id-setuid"
install -o root -g root -m 4755 "$(command -v id)" "$ws/id-setuid"
mknod -m 0666 "$ws/null-device" c 1 3
if is_nosuid_nodev "$ctl"; then
  echo "control skipped: $ctl is on a nosuid mount already"
else
  [ "$(as_job_uid "$ctl/id-setuid" -u)" = 0 ] || fail "control: the setuid copy outside the work root did not run as root"
fi
euid=$(as_job_uid "$ws/id-setuid" -u)
[ "$euid" = "$uid" ] || fail "a setuid-root file in the workspace ran with euid $euid"
if as_job_uid sh -c "echo x > '$ws/null-device'" 2> "$WORK/dev.err"; then fail "a device node in the workspace could be opened"; fi
grep -q "Permission denied" "$WORK/dev.err" || fail "device node: $(cat "$WORK/dev.err")"
rm -f "$ctl/id-setuid"
touch "$ws/done"
set +e
wait $gh
RC=$?
set -e
expect_rc 0
expect_out '^job-finished$'
echo "(b) setuid file ran with euid $euid (not 0); device node refused"

# Shared helpers for the shell-level tests (integration and escape).
# meson passes GATEHOUSE (the broker binary) and PROBE (the escape probe).
# Exit 77 means "skipped" to meson; a skip always says why.
set -u

: "${GATEHOUSE:?GATEHOUSE must point at the gatehouse binary}"
WORK=$(mktemp -d /tmp/gatehouse-test.XXXXXX)
chmod 755 "$WORK"
# Mounts this test made (work_root_mount), undone before $WORK goes. A test
# that sets its own EXIT trap calls lib_cleanup from it.
GH_TEST_MOUNTS=()
lib_cleanup() {
  local m
  for m in "${GH_TEST_MOUNTS[@]}"; do umount -l "$m" 2> /dev/null || true; done
  rm -rf "$WORK"
}
trap lib_cleanup EXIT
OUT="$WORK/out.txt"
# Each test keeps its own audit log (the default is /var/log/gatehouse/audit.jsonl).
export GATEHOUSE_AUDIT_LOG="$WORK/audit.jsonl"

fail() { echo "FAIL: $*" >&2; echo "---- output ----" >&2; cat "$OUT" >&2 2>/dev/null; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
need_root() { [ "$(id -u)" = 0 ] || skip "needs root (run the suite as root)"; }

# Work roots must be nosuid,nodev mounts: the broker refuses any other
# (broker/workdir.cpp, check_work_root_mount). is_nosuid_nodev DIR: the
# mount DIR is on has both flags.
is_nosuid_nodev() {
  local o
  o=",$(findmnt -n -o OPTIONS --target "$1" | tail -1),"
  case "$o" in *,nosuid,*) case "$o" in *,nodev,*) return 0 ;; esac ;; esac
  return 1
}
# work_root_mount DIR: a work root of this test's own (made if missing)
# becomes a nosuid,nodev bind mount of itself, undone at exit.
work_root_mount() {
  local m
  for m in "${GH_TEST_MOUNTS[@]}"; do [ "$m" != "$1" ] || return 0; done
  mkdir -p "$1"
  mount --bind "$1" "$1" || fail "cannot bind-mount the work root $1 on itself"
  GH_TEST_MOUNTS+=("$1")
  mount -o remount,bind,nosuid,nodev "$1" || fail "cannot remount the work root $1 nosuid,nodev"
}
# As root, the default work root is made such a mount once for the host,
# as scripts/prepare-host does (it stays: other runs use it too). Tests
# start in parallel, hence the lock: one of them mounts, the others see it.
GH_DEFAULT_WORK_ROOT=/var/lib/gatehouse/work
if [ "$(id -u)" = 0 ]; then
  (
    flock 9
    [ -d "$GH_DEFAULT_WORK_ROOT" ] || install -d -m 711 /var/lib/gatehouse "$GH_DEFAULT_WORK_ROOT" || exit 1
    is_nosuid_nodev "$GH_DEFAULT_WORK_ROOT" && exit 0
    if ! mountpoint -q "$GH_DEFAULT_WORK_ROOT"; then mount --bind "$GH_DEFAULT_WORK_ROOT" "$GH_DEFAULT_WORK_ROOT" || exit 1; fi
    mount -o remount,bind,nosuid,nodev "$GH_DEFAULT_WORK_ROOT"
  ) 9> /run/gatehouse-work-root-mount.lock || { echo "FAIL: cannot make $GH_DEFAULT_WORK_ROOT a nosuid,nodev mount" >&2; exit 1; }
fi

# job NAME <<'YAML' ... : writes $WORK/NAME/config.yml (one folder per job,
# so checkout copies only that folder).
job() {
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/config.yml"
  echo "$WORK/$1/config.yml"
}

# run_job FILE [args...]: runs gatehouse, output in $OUT, status in $RC.
run_job() {
  set +e
  NO_COLOR=1 timeout 300 "$GATEHOUSE" run "$@" > "$OUT" 2>&1
  RC=$?
  set -e
}

expect_rc() { [ "$RC" = "$1" ] || fail "expected exit $1, got $RC"; }
expect_out() { grep -qE -- "$1" "$OUT" || fail "output lacks /$1/"; }
expect_no_out() { ! grep -qE -- "$1" "$OUT" || fail "output unexpectedly has /$1/"; }

# ensure_agent_user: the system user `gatehouse serve` runs its agent as
# (packaging/gatehouse.sysusers makes it on an installed host).
ensure_agent_user() {
  id gatehouse > /dev/null 2>&1 && return 0
  (
    flock 9
    id gatehouse > /dev/null 2>&1 ||
      useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin gatehouse
  ) 9> /run/lock/gatehouse-test-user.lock
  id gatehouse > /dev/null 2>&1 || skip "cannot create the system user gatehouse (useradd)"
}

# host_uid_of FILE: the host uid a job ran as, from the line
# "uid_map: $(cat /proc/self/uid_map)" the job printed into FILE.
host_uid_of() { sed -n 's/.*uid_map: *[0-9][0-9]* *\([0-9]*\) .*/\1/p' "$1" | head -1; }

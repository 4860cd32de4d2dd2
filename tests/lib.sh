# Shared helpers for the shell-level tests (integration and escape).
# meson passes GATEHOUSE (the broker binary) and PROBE (the escape probe).
# Exit 77 means "skipped" to meson; a skip always says why.
set -u

: "${GATEHOUSE:?GATEHOUSE must point at the gatehouse binary}"
WORK=$(mktemp -d /tmp/gatehouse-test.XXXXXX)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/out.txt"
# Each test keeps its own audit log (the default is /var/log/gatehouse/audit.jsonl).
export GATEHOUSE_AUDIT_LOG="$WORK/audit.jsonl"

fail() { echo "FAIL: $*" >&2; echo "---- output ----" >&2; cat "$OUT" >&2 2>/dev/null; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
need_root() { [ "$(id -u)" = 0 ] || skip "needs root (run the suite as root)"; }

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

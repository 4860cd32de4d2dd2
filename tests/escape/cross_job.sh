#!/bin/bash
# One job cannot read another running job's working directory: not through
# the work root (not in its view), not through /proc (other pid namespace),
# and not as a host uid (each job has its own, and its folder is 0700).
. "$(dirname "$0")/../lib.sh"
set -e
need_root
WR="$WORK/workroot"
work_root_mount "$WR"
export GATEHOUSE_WORK_ROOT="$WR"
mkdir -p "$WORK/a" "$WORK/b"; cp "$PROBE" "$WORK/b/gatehouse-probe"
cat > "$WORK/a/config.yml" <<'YAML'
steps:
  - run: |
      echo "job-a-secret" > secret.txt
      sleep 1000 & echo $! > /tmp/sleeper
      touch ready
      sleep 60
YAML
NO_COLOR=1 "$GATEHOUSE" run "$WORK/a/config.yml" > "$WORK/a.out" 2>&1 &
a=$!
trap 'kill $a 2>/dev/null || true; wait $a 2>/dev/null || true; lib_cleanup' EXIT
secret=""
for _ in $(seq 100); do secret=$(ls -d "$WR"/*/workspace/ready 2>/dev/null | head -1); [ -n "$secret" ] && break; sleep 0.1; done
[ -n "$secret" ] || { cat "$WORK/a.out"; fail "job a did not start"; }
adir=$(dirname "$secret")
# The folder is the other job's host uid's, 0700.
[ "$(stat -c %a "$adir")" = 700 ] || fail "job a's workspace is not 0700"
cat > "$WORK/b/config.yml" <<YAML
steps:
  - checkout
  - run: |
      ./gatehouse-probe read-file $adir/secret.txt
      ./gatehouse-probe read-file /proc/2/environ
      ./gatehouse-probe find-string-in-proc job-a-secret
YAML
run_job "$WORK/b/config.yml"
expect_rc 0
expect_out "^probe read-file: attempting"
[ "$(grep '^probe read-file: result=' "$OUT" | head -1)" = "probe read-file: result=ENOENT" ] || fail "job b reached job a's folder"
expect_out '^probe find-string-in-proc: result=NOTFOUND'
# And as job b's host uid outside any namespace, the folder is closed too.
buid=$(stat -c %u "$adir")
other=$((buid + 1))
if setpriv --reuid="$other" --regid="$other" --clear-groups cat "$adir/secret.txt" 2>/dev/null; then
  fail "another job uid could read job a's folder on the host"
fi
echo ok

#!/bin/bash
# Where a job's cgroups live, and what they limit:
#  - a broker started in a cgroup v2 directory that carries the xattr
#    trusted.delegate=1 (systemd's mark for Delegate=yes; set
#    here with python3, as attr's setfattr is often not installed) moves the
#    directory's processes into its `broker` leaf and makes the job's
#    group under <dir>/jobs/; without the mark, under <v2 root>/gatehouse/;
#  - on cgroup v1 the memory limit covers swap too:
#    memory.memsw.limit_in_bytes equals memory.limit_in_bytes.
# The job's own /proc/self/cgroup is namespaced, so the host side is read
# while the job sleeps.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
v2=$(findmnt -n -t cgroup2 -o TARGET | head -1)
[ -n "$v2" ] || skip "no cgroup v2 hierarchy is mounted"
dir="$v2/gatehouse-delegation-test-$$"
home_cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
mkdir "$dir"
cleanup_cg() {
  # Every process the test put there goes back, then the groups go.
  local d p
  for d in "$dir/broker" "$dir"; do
    [ -e "$d/cgroup.procs" ] || continue
    for p in $(cat "$d/cgroup.procs"); do echo "$p" > "$v2$home_cg/cgroup.procs" 2> /dev/null || true; done
  done
  for d in "$dir"/jobs/* "$dir/jobs" "$dir/broker" "$dir"; do [ -d "$d" ] && rmdir "$d" 2> /dev/null || true; done
}
gh=""
trap '[ -z "$gh" ] || { kill $gh; wait $gh; } 2> /dev/null || true; cleanup_cg; lib_cleanup' EXIT
command -v python3 > /dev/null || skip "python3 is needed to set the xattr"
# Both marks, as systemd sets them: the broker holds no CAP_SYS_ADMIN, so
# it reads user.delegate (trusted.* is hidden from it).
if ! python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.delegate", b"1"); os.setxattr(sys.argv[1], "user.delegate", b"1")' "$dir" 2> "$WORK/xattr.err"; then
  skip "cannot set trusted.delegate and user.delegate on a cgroup v2 directory here: $(tail -1 "$WORK/xattr.err")"
fi
printf 'version: 1\nprofiles:\n  default:\n    resources: {memory: 256M}\n' > "$WORK/policy.yaml"
f=$(job sleeper <<'YAML'
steps:
  - run: |
      touch ready
      for i in $(seq 150); do [ -e done ] && break; sleep 0.1; done
      echo job-finished
YAML
)
WR="$WORK/workroot"
work_root_mount "$WR"
# The broker starts from a shell placed in the delegated directory.
bash -c 'echo $$ > "$1/cgroup.procs" && exec "$2" run "$3" --policy "$4" --work-root "$5"' _ \
  "$dir" "$GATEHOUSE" "$f" "$WORK/policy.yaml" "$WR" > "$OUT" 2>&1 &
gh=$!
ready=""
for _ in $(seq 300); do ready=$(ls "$WR"/*/workspace/ready 2> /dev/null | head -1); [ -n "$ready" ] && break; sleep 0.1; done
[ -n "$ready" ] || fail "the job did not start"
ws=$(dirname "$ready")
uid=$(stat -c %u "$ws")
group="$dir/jobs/job-$uid"
[ -d "$group" ] || fail "no job group $group; groups: $(ls "$dir" "$dir/jobs" 2> /dev/null | tr '\n' ' ')"
procs=$(cat "$group/cgroup.procs")
[ -n "$procs" ] || fail "the job's group $group is empty"
for p in $procs; do
  # (a short-lived `sleep` may be gone already)
  u=$(awk '/^Uid:/ { print $2 }' /proc/$p/status 2> /dev/null) || continue
  [ -z "$u" ] || [ "$u" = "$uid" ] || fail "process $p in $group runs as uid $u, not the job's $uid"
done
[ ! -e "$v2/gatehouse/job-$uid" ] || fail "a group was also made at $v2/gatehouse/job-$uid"
grep -qx "$gh" "$dir/broker/cgroup.procs" || fail "the broker (pid $gh) did not move into $dir/broker"
[ -z "$(cat "$dir/cgroup.procs")" ] || fail "processes left in the delegated directory itself: $(cat "$dir/cgroup.procs")"
echo "job group: ${group#$v2}, $(echo $procs | wc -w) process(es); broker in ${dir#$v2}/broker"
# cgroup v1 memory: the limit covers swap.
mem=$(findmnt -n -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /(^|,)memory(,|$)/ { print $1; exit }')
if [ -n "$mem" ] && [ -d "$mem/gatehouse/job-$uid" ]; then
  m="$mem/gatehouse/job-$uid"
  limit=$(cat "$m/memory.limit_in_bytes")
  [ "$limit" = $((256 * 1024 * 1024)) ] || fail "memory.limit_in_bytes is $limit"
  if [ -e "$m/memory.memsw.limit_in_bytes" ]; then
    [ "$(cat "$m/memory.memsw.limit_in_bytes")" = "$limit" ] || fail "memory.memsw.limit_in_bytes is $(cat "$m/memory.memsw.limit_in_bytes"), not $limit"
    echo "v1 memory: limit_in_bytes = memsw.limit_in_bytes = $limit"
  else
    echo "v1 memory without swap accounting (swap is $( [ "$(wc -l < /proc/swaps)" -gt 1 ] && echo on || echo off))"
  fi
elif [ -e "$group/memory.swap.max" ]; then
  [ "$(cat "$group/memory.swap.max")" = 0 ] || fail "memory.swap.max is $(cat "$group/memory.swap.max")"
  echo "v2 memory: swap.max = 0"
fi
touch "$ws/done"
set +e
wait $gh
RC=$?
set -e
gh=""
expect_rc 0
expect_out '^job-finished$'
[ ! -e "$group" ] || fail "the job's group $group was not removed"
echo ok

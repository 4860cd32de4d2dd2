#!/bin/bash
# Two jobs at once never share a host uid, a folder or a cgroup.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
f=$(job conc <<'YAML'
steps:
  - run: |
      echo "uid_map: $(cat /proc/self/uid_map)"
      echo "cgroup: $(cat /proc/self/cgroup | tr '\n' ' ')"
      sleep 2
YAML
)
NO_COLOR=1 "$GATEHOUSE" run "$f" > "$WORK/a.txt" 2>&1 &
a=$!
NO_COLOR=1 "$GATEHOUSE" run "$f" > "$WORK/b.txt" 2>&1 &
b=$!
wait $a || { cat "$WORK/a.txt"; fail "job a failed"; }
wait $b || { cat "$WORK/b.txt"; fail "job b failed"; }
ua=$(host_uid_of "$WORK/a.txt")
ub=$(host_uid_of "$WORK/b.txt")
[ -n "$ua" ] && [ -n "$ub" ] || fail "no uid maps: $(cat "$WORK/a.txt" "$WORK/b.txt")"
[ "$ua" != "$ub" ] || fail "both jobs ran as host uid $ua"
echo "job a: host uid $ua, job b: host uid $ub"
echo ok

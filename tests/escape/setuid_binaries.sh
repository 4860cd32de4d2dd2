#!/bin/bash
# Setuid binaries are inert: /usr is nosuid and no_new_privs is set, so su
# and passwd run as the job's uid; setuid(0) is refused.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
mkdir -p "$WORK/j"; cp "$PROBE" "$WORK/j/gatehouse-probe"
found=""
for b in /usr/bin/su /usr/bin/passwd /usr/bin/mount /usr/bin/newgrp; do
  [ -u "$b" ] && found="$found $b"
done
[ -n "$found" ] || skip "no setuid binary on this host to try"
{
  echo "steps:"; echo "  - checkout"; echo "  - run: |"
  for b in $found; do echo "      ./gatehouse-probe exec-setuid $b --help"; done
} > "$WORK/j/config.yml"
run_job "$WORK/j/config.yml"
expect_rc 0
n=$(grep -c '^probe exec-setuid: attempting' "$OUT")
[ "$n" = "$(echo $found | wc -w)" ] || fail "not every setuid binary was tried"
expect_no_out 'euid=0'
[ "$(grep -c 'probe exec-setuid: uid=3434 euid=3434' "$OUT")" = "$n" ] || fail "a setuid binary changed its euid"
echo "tried:$found"

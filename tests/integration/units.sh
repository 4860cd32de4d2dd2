#!/bin/bash
# The systemd units (packaging/) as `systemd-analyze security --offline`
# rates them: the agent's "OK" (at most 2.0), the broker's at most the
# figure SECURITY.md records (4.7), its bounding set exactly the four
# capabilities, and the agent never root.
. "$(dirname "$0")/../lib.sh"
set -e
command -v systemd-analyze > /dev/null || skip "systemd-analyze is not installed (Debian's systemd package)"
P="$(cd "$(dirname "$0")/../.." && pwd)/packaging"
score() {
  systemd-analyze security --offline=true "$1" 2> /dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p'
}
a=$(score "$P/gatehouse-agent.service")
b=$(score "$P/gatehouse-broker.service")
[ -n "$a" ] && [ -n "$b" ] || skip "systemd-analyze cannot rate units offline here (systemd older than 252?)"
echo "agent $a, broker $b"
awk -v a="$a" 'BEGIN { exit !(a <= 2.0) }' || fail "gatehouse-agent.service scores $a, above 2.0"
awk -v b="$b" 'BEGIN { exit !(b <= 4.7) }' || fail "gatehouse-broker.service scores $b, above the 4.7 SECURITY.md records"
grep -qx 'CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_CHOWN CAP_FOWNER' "$P/gatehouse-broker.service" ||
  fail "the broker's bounding set is not exactly the four capabilities"
grep -qx 'User=gatehouse' "$P/gatehouse-agent.service" || fail "the agent unit does not run as gatehouse"
grep -qx 'CapabilityBoundingSet=' "$P/gatehouse-agent.service" || fail "the agent unit keeps capabilities"
echo ok

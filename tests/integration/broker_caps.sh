#!/bin/bash
# The broker needs no CAP_SYS_ADMIN: jobs run under a broker whose bounding
# set holds only CAP_SETUID, CAP_SETGID, CAP_CHOWN and CAP_FOWNER.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
f=$(job caps <<'YAML'
steps:
  - checkout
  - run: echo "job ran"; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
YAML
)
set +e
NO_COLOR=1 setpriv --bounding-set=-all,+setuid,+setgid,+chown,+fowner --inh-caps=-all -- \
  sh -c 'grep CapBnd /proc/self/status; exec "$0" run "$1"' "$GATEHOUSE" "$f" > "$OUT" 2>&1
RC=$?
set -e
# setuid=7 setgid=6 chown=0 fowner=3 -> bits 0,3,6,7 = 0xc9
expect_out 'CapBnd:[[:space:]]+00000000000000c9'
expect_rc 0
expect_out '^job ran$'
expect_out 'CapEff:[[:space:]]+0000000000000000'
expect_out 'NoNewPrivs:[[:space:]]+1'
expect_out 'Seccomp:[[:space:]]+2'

# And without CAP_SETUID the broker can neither start the checkout as
# another uid nor map one: it fails closed, exit 4.
set +e
NO_COLOR=1 setpriv --bounding-set=-all,+setgid,+chown,+fowner --inh-caps=-all -- "$GATEHOUSE" run "$f" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 4
expect_out 'checkout: cannot switch to uid [0-9]+ and gid [0-9]+: the broker needs CAP_SETUID and CAP_SETGID'
expect_no_out 'job ran'
g=$(job caps-nocheckout <<'YAML'
steps:
  - run: echo "job ran"
YAML
)
set +e
NO_COLOR=1 setpriv --bounding-set=-all,+setgid,+chown,+fowner --inh-caps=-all -- "$GATEHOUSE" run "$g" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 4
expect_out 'uid_map'
expect_no_out 'job ran'
echo ok

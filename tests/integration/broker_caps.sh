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

# And without CAP_SETUID nothing can take another uid: not the front end
# (it runs as nobody), not the broker (it maps the job's uid): it fails
# closed before anything runs, exit 4, saying why.
set +e
NO_COLOR=1 setpriv --bounding-set=-all,+setgid,+chown,+fowner --inh-caps=-all -- "$GATEHOUSE" run "$f" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 4
expect_out 'CAP_SETUID'
expect_out 'uid_map'
expect_no_out 'job ran'
echo ok

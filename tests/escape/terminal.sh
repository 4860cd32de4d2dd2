#!/bin/bash
# Run from a terminal, the job still shares none with the operator: no
# controlling tty (/dev/tty is ENXIO), and TIOCSTI/TIOCLINUX are refused by
# seccomp, also with the request's high bits set, even on a pty of its own.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v script >/dev/null || skip "script (util-linux) is not installed"
mkdir -p "$WORK/j"; cp "$PROBE" "$WORK/j/gatehouse-probe"
cat > "$WORK/j/config.yml" <<'YAML'
steps:
  - checkout
  - run: |
      ./gatehouse-probe read-file /dev/tty
      script -qec "./gatehouse-probe tiocsti 0; ./gatehouse-probe tioclinux 0" /dev/null
YAML
set +e
# The broker runs on a pseudo-terminal of its own, as an operator's shell would.
NO_COLOR=1 script -qec "$GATEHOUSE run $WORK/j/config.yml" /dev/null > "$OUT" 2>&1 </dev/null
RC=$?
set -e
tr -d '\r' < "$OUT" > "$OUT.clean" && mv "$OUT.clean" "$OUT"
expect_rc 0
expect_out '^probe read-file: result=ENXIO'
expect_out '^probe tiocsti: attempting'
expect_out '^probe tiocsti: result=EPERM'
expect_out '^probe tiocsti-high: result=EPERM'
expect_out '^probe tioclinux: attempting'
expect_out '^probe tioclinux: result=EPERM'
echo ok

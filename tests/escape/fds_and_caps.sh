#!/bin/bash
# A step inherits only fds 0-2 (not the worker channel, not the broker's
# files) and holds no capability, with no_new_privs and a seccomp filter.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
mkdir -p "$WORK/j"; cp "$PROBE" "$WORK/j/gatehouse-probe"
cat > "$WORK/j/config.yml" <<'YAML'
steps:
  - checkout
  - run: ./gatehouse-probe list-fds; ./gatehouse-probe caps
  - run:
      background: true
      command: ./gatehouse-probe list-fds
  - run: sleep 0.5
YAML
# The broker holds an extra open fd (9) while it runs: it must not leak.
exec 9</etc/hostname
run_job "$WORK/j/config.yml"
exec 9<&-
expect_rc 0
expect_out 'probe list-fds: attempting'
[ "$(grep -c '^probe list-fds: fds=0,1,2$' "$OUT")" = 2 ] || fail "a step saw fds beyond 0-2: $(grep 'fds=' "$OUT")"
for s in CapInh CapPrm CapEff CapBnd CapAmb; do expect_out "^probe caps: $s=0000000000000000$"; done
expect_out '^probe caps: NoNewPrivs=1$'
expect_out '^probe caps: Seccomp=2$'
echo ok

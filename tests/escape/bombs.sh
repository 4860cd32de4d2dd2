#!/bin/bash
# A fork bomb stops at the job's pids limit and a memory bomb is killed at
# its memory limit, while the host stays responsive; both jobs end cleanly.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
cat > "$WORK/small.yaml" <<'YAML'
version: 1
profiles:
  default:
    resources:
      memory: 256M
      pids: 128
YAML
mkdir -p "$WORK/j"; cp "$PROBE" "$WORK/j/gatehouse-probe"
cat > "$WORK/j/config.yml" <<'YAML'
steps:
  - checkout
  - run: ./gatehouse-probe fork-bomb
  - run: set +e; ./gatehouse-probe memory-bomb 2048; echo "probe-status=$?"
YAML
NO_COLOR=1 "$GATEHOUSE" run "$WORK/j/config.yml" --policy "$WORK/small.yaml" > "$OUT" 2>&1 &
pid=$!
# The host answers while the bombs go off.
worst=0
while kill -0 $pid 2>/dev/null; do
  a=$(date +%s%N); /bin/true; sh -c 'echo $$' >/dev/null; b=$(date +%s%N)
  ms=$(( (b - a) / 1000000 )); [ $ms -gt $worst ] && worst=$ms
  sleep 0.1
done
wait $pid && RC=0 || RC=$?
echo "slowest host command during the bombs: ${worst}ms"
[ $worst -lt 2000 ] || fail "the host stalled for ${worst}ms"
expect_out '^probe fork-bomb: attempting'
expect_out '^probe fork-bomb: result=EAGAIN count=[0-9]+'
count=$(sed -n 's/.*result=EAGAIN count=\([0-9]*\).*/\1/p' "$OUT")
[ "$count" -le 128 ] || fail "fork bomb made $count processes with pids: 128"
expect_out '^probe memory-bomb: attempting'
expect_out '^probe-status=137$'
expect_out 'killed for exceeding the memory limit'
expect_rc 0
echo ok

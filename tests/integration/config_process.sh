#!/bin/bash
# `gatehouse config process` against expected outputs in
# tests/golden/config_process/: a config using every 2.1 feature, and real
# configs from tests/corpus with their (stand-in) orbs; exit statuses and
# errors at their lines. Runs from tests/corpus so outputs hold no
# temporary paths. After an intended change:
#   UPDATE_GOLDEN=1 GATEHOUSE=build/gatehouse tests/integration/config_process.sh
# rewrites the .out files; review `git diff tests/golden` before committing.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
GOLDEN=$(cd "$HERE/../golden/config_process" && pwd)
cd "$HERE/../corpus"

# golden NAME WANT_RC ARGS...: `gatehouse config process ARGS...` (stdout
# and stderr) must exit WANT_RC and print exactly NAME.out.
golden() {
  local name=$1 want=$2
  shift 2
  set +e
  "$GATEHOUSE" config process --orb-dir orbs "$@" > "$OUT" 2>&1
  RC=$?
  set -e
  [ "$RC" = "$want" ] || fail "config process $* exited $RC, expected $want"
  if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
    cp "$OUT" "$GOLDEN/$name.out"
    return
  fi
  [ -f "$GOLDEN/$name.out" ] || fail "tests/golden/config_process/$name.out is missing (UPDATE_GOLDEN=1 writes it)"
  diff -u "$GOLDEN/$name.out" "$OUT" >&2 || fail "config process $*: output differs from $name.out (UPDATE_GOLDEN=1 to accept)"
}

F=../golden/config_process/features.yml
golden features 0 "$F" --branch main --param deploy=true --param region=us
golden features_defaults 0 "$F" --branch dev
golden features_one_job 0 "$F" --job test-22 --branch main
golden features_bad_param 2 "$F" --param region=mars
golden features_no_job 2 "$F" --job test-18

# Real configs: pipeline parameters and registry orbs (cimg-base), a matrix
# with conditional sections in its names (angular-cli), an inline orb and a
# workflow `when` (plotly dash), matrices with exclude (wasmvm), a large
# config with commands and executors (telegraf), and an orb this folder
# does not hold (node-orb's dev version).
golden cimg_base 0 circleci/CircleCI-Public__cimg-base__config.yml
golden angular_cli 0 circleci/angular__angular-cli__config.yml
golden plotly_dash 0 circleci/plotly__dash__config.yml
golden wasmvm 0 circleci/CosmWasm__wasmvm__config.yml
golden telegraf_one_job 0 circleci/influxdata__telegraf__config.yml --job test-go-linux
golden node_orb_missing 2 circleci/CircleCI-Public__node-orb__config.yml

# Unprivileged, the same: the child confines itself without root.
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$WORK"
  cp "$F" "$WORK/features.yml"
  chmod 644 "$WORK/features.yml"
  su nobody -s /bin/sh -c "'$GATEHOUSE' config process '$WORK/features.yml' --branch main --param deploy=true --param region=us" \
    > "$OUT" 2>&1 || fail "config process as nobody failed"
  diff -u "$GOLDEN/features.out" "$OUT" >&2 || fail "config process as nobody differs from features.out"
fi
echo "config process: golden outputs match"

# Helpers for the Docker proxy's integration tests: a real dockerd of our
# own (scripts/test-dockerd) and ways to ask it directly what exists, so a
# test can prove what the proxy let through. Sourced after lib.sh (bash).
#
#   docker_require            start the test daemon or skip (exit 77) saying why
#   dk ARGS...                the Debian CLI against the daemon itself (not the proxy)
#   dk_count_label K=V        containers (-a) + networks + volumes + images with label K=V
#   dk_inspect_field ID TMPL  docker inspect --format TMPL ID
#   dk_remove_label K=V       force-remove all of those (teardown)
#
# Always use $DOCKER (the Debian CLI, 20.10, API 1.41) by full path: another
# CLI may be at /usr/local/bin/docker, or none at all on a fresh machine.

# shellcheck disable=SC2034 # used by the tests that source this
DOCKER=/usr/bin/docker
TEST_DOCKER_SOCK=/run/gatehouse-test-docker/docker.sock
TEST_DOCKER_HOST=unix://$TEST_DOCKER_SOCK
TEST_IMAGE=gatehouse-test/busybox:latest
TEST_DOCKERD_SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/test-dockerd

# lib.sh's skip prints "SKIP: reason" and exits 77; have one if used alone.
declare -F skip > /dev/null || skip() {
  echo "SKIP: $*" >&2
  exit 77
}

# docker_require: makes sure the test dockerd answers and holds $TEST_IMAGE;
# skips the test (exit 77) with the reason otherwise.
docker_require() {
  local out rc=0
  out=$("$TEST_DOCKERD_SCRIPT" start 2>&1) || rc=$?
  [ "$rc" = 0 ] && return 0
  out=$(printf '%s\n' "$out" | grep -m1 'dockerd unavailable' || printf '%s\n' "$out" | tail -n 1)
  skip "${out:-dockerd unavailable: scripts/test-dockerd start exited $rc}"
}

# dk ARGS...: the daemon directly, bypassing any proxy.
dk() { "$DOCKER" -H "$TEST_DOCKER_HOST" "$@"; }

# dk_count_label KEY=VALUE: how many objects of any kind carry that label.
dk_count_label() {
  local f="label=$1"
  {
    dk ps -a -q --no-trunc --filter "$f"
    dk network ls -q --no-trunc --filter "$f"
    dk volume ls -q --filter "$f"
    dk images -q --no-trunc --filter "$f" | sed 's/^/image:/'
  } 2> /dev/null | sed '/^$/d' | sort -u | wc -l
}

# dk_inspect_field ID GO_TEMPLATE: one field of a container, image, network
# or volume, e.g. dk_inspect_field "$cid" '{{.HostConfig.Privileged}}'.
dk_inspect_field() { dk inspect --format "$2" "$1"; }

# dk_remove_label KEY=VALUE: removes everything with that label (never fails).
# shellcheck disable=SC2086 # $ids is a list of ids, split on purpose
dk_remove_label() {
  local f="label=$1" ids _
  ids=$(dk ps -a -q --filter "$f" 2> /dev/null) || true
  [ -z "$ids" ] || dk rm -f -v $ids > /dev/null 2>&1 || true
  ids=$(dk network ls -q --filter "$f" 2> /dev/null) || true
  [ -z "$ids" ] || dk network rm $ids > /dev/null 2>&1 || true
  ids=$(dk volume ls -q --filter "$f" 2> /dev/null) || true
  [ -z "$ids" ] || dk volume rm -f $ids > /dev/null 2>&1 || true
  # Images may be parents of one another: a few rounds, children go first.
  for _ in 1 2 3; do
    ids=$(dk images -q --no-trunc --filter "$f" 2> /dev/null | sort -u) || true
    [ -n "$ids" ] || break
    dk rmi -f $ids > /dev/null 2>&1 || true
  done
  return 0
}

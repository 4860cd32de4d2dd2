#!/bin/bash
# Sandbox benchmarks, each against a peer run in the same invocation, so
# the figures are ratios on this machine and this load, not absolute times.
#
#   bench/run.sh [BUILD_DIR] [RUNS]
#
# 1. whole-process start-up: `gatehouse run` of a one-step `true` job vs
#    `bwrap --unshare-all` with comparable binds running `true`, and vs
#    `docker run --rm` when a dockerd answers. Target: <= 1.5x bwrap.
# 2. a syscall-heavy workload inside the sandbox vs the same binary outside,
#    timed from inside the workload. Target: <= 1.05x.
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-21}
GH="$BUILD/gatehouse"
LOAD="$BUILD/bench/bench-syscall-load"
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 2; }
# The default work root must be a nosuid,nodev mount (SECURITY.md).
"$(dirname "$0")/../scripts/prepare-host" > /dev/null
command -v bwrap >/dev/null || { echo "bench: bwrap is missing (scripts/install-deps)" >&2; exit 2; }
T=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_ns() { date +%s%N; }
time_cmd() {  # prints elapsed ns of one run of "$@"
  local a b
  a=$(now_ns); "$@" >/dev/null 2>&1 || { echo "bench: command failed: $*" >&2; exit 1; }; b=$(now_ns)
  echo $((b - a))
}

mkdir -p "$T/true"
printf 'steps:\n  - run: "true"\n' > "$T/true/job.yml"
BWRAP=(bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --symlink usr/bin /bin
       --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --ro-bind /etc/ld.so.cache /etc/ld.so.cache
       --tmpfs /tmp --proc /proc --dev /dev --bind "$T/true" /home/circleci/project --chdir /home/circleci/project
       --uid 3434 --gid 3434 --cap-drop ALL /bin/bash -eo pipefail -c true)

have_docker=0
if command -v docker >/dev/null && docker info >/dev/null 2>&1 && docker image inspect busybox >/dev/null 2>&1; then have_docker=1; fi

: > "$T/gh"; : > "$T/bw"; : > "$T/dk"
for _ in $(seq 3); do time_cmd "$GH" run "$T/true/job.yml" >/dev/null; time_cmd "${BWRAP[@]}" >/dev/null; done  # warm-up
for _ in $(seq "$RUNS"); do
  time_cmd "$GH" run "$T/true/job.yml" >> "$T/gh"
  time_cmd "${BWRAP[@]}" >> "$T/bw"
  [ $have_docker = 1 ] && time_cmd docker run --rm busybox true >> "$T/dk"
done
gh=$(median < "$T/gh"); bw=$(median < "$T/bw")
printf 'start-up (median of %d): gatehouse run %.1f ms, bwrap %.1f ms, ratio %.2fx (target <= 1.5x)\n' \
  "$RUNS" "$(echo "$gh/1000000" | bc -l)" "$(echo "$bw/1000000" | bc -l)" "$(echo "$gh/$bw" | bc -l)"
if [ $have_docker = 1 ]; then
  dk=$(median < "$T/dk")
  printf '  docker run --rm %.1f ms, gatehouse/docker ratio %.2fx\n' "$(echo "$dk/1000000" | bc -l)" "$(echo "$gh/$dk" | bc -l)"
else
  echo "  docker: skipped (no dockerd with a busybox image answers here)"
fi

mkdir -p "$T/load"
cp "$LOAD" "$T/load/load"
printf 'steps:\n  - checkout\n  - run: for i in 1 2 3 4 5 6 7; do ./load 200000; done\n' > "$T/load/job.yml"
inside=$("$GH" run "$T/load/job.yml" 2>&1 | sed -n 's/^elapsed_ns=//p' | median)
outside=$(for i in 1 2 3 4 5 6 7; do "$T/load/load" 200000; done | sed -n 's/^elapsed_ns=//p' | median)
printf 'syscall micro-benchmark (median of 7, 1M syscalls each, the worst case): inside %.1f ms, outside %.1f ms, ratio %.3fx\n' \
  "$(echo "$inside/1000000" | bc -l)" "$(echo "$outside/1000000" | bc -l)" "$(echo "$inside/$outside" | bc -l)"

# A build-like syscall-heavy workload: walk and read a large tree of small
# files (what tar, git status, make and compilers do), timed from inside.
tree_load='s=$(date +%s%N); tar -cf - /usr/include /usr/share/perl 2>/dev/null | cat > /dev/null; find /usr/lib -type f -newer /etc/hostname >/dev/null 2>&1; e=$(date +%s%N); echo "elapsed_ns=$((e - s))"'
cat > "$T/load/tree.yml" <<YAML
steps:
  - run: |
      for i in 1 2 3; do $tree_load; done
YAML
bash -c "$tree_load" >/dev/null  # warm the page cache
# Rounds alternate inside and outside so drift on the machine hits both;
# each round keeps the fastest of three runs; the median round is reported.
: > "$T/ratios"; : > "$T/in"; : > "$T/out"
for _ in 1 2 3 4 5 6 7; do
  i=$("$GH" run "$T/load/tree.yml" 2>&1 | sed -n 's/^elapsed_ns=//p' | sort -n | head -1)
  o=$(for _ in 1 2 3; do bash -c "$tree_load"; done | sed -n 's/^elapsed_ns=//p' | sort -n | head -1)
  echo "$i" >> "$T/in"; echo "$o" >> "$T/out"; echo "$i/$o" | bc -l >> "$T/ratios"
done
printf 'syscall-heavy workload (tar + find over /usr; 7 alternating rounds, best of 3 each): inside %.1f ms, outside %.1f ms, median ratio %.3fx (target <= 1.05x)\n' \
  "$(echo "$(median < "$T/in")/1000000" | bc -l)" "$(echo "$(median < "$T/out")/1000000" | bc -l)" "$(median < "$T/ratios")"

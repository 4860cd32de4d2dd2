#!/bin/bash
# The Docker proxy against the direct socket, in one invocation, each run
# from inside a Gatehouse job (same sandbox, same daemon; only the socket
# differs):
#
#   bench/docker.sh [BUILD_DIR] [RUNS]
#
# 1. `docker run --rm` latency: median of 2xRUNS runs of a container that
#    runs `true`, through the proxy against through the host socket.
# 2. `docker logs` throughput: a container that printed 64 MiB, its logs
#    read to /dev/null (median of 2x3), through the proxy against direct.
# Each side's job runs twice, interleaved (proxy, direct, direct, proxy).
# Targets (issue 5): latency at most 1.05x, throughput at least 0.9x.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
RUNS=${2:-21}
HERE=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 2; }
# The default work root must be a nosuid,nodev mount (SECURITY.md).
"$(dirname "$0")/../scripts/prepare-host" > /dev/null
export GATEHOUSE_DOCKER_PROXY="$BUILD/docker/gatehouse-docker-proxy"
"$HERE/../scripts/test-dockerd" start > /dev/null
SOCK=/run/gatehouse-test-docker/docker.sock
IMG=gatehouse-test/busybox:latest
T=$(mktemp -d /tmp/gatehouse-bench-docker.XXXXXX)
chmod 755 "$T"
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
export GATEHOUSE_AUDIT_LOG="$T/audit.jsonl"

cat > "$T/policy.yaml" <<YAML
version: 1
profiles:
  default:
    docker: {mode: proxy, socket: $SOCK, proxy: {images: ["docker.io/gatehouse-test/*"], memory: 1G}}
  direct:
    docker: {mode: direct, acknowledge: root-equivalent, socket: $SOCK}
YAML
mkdir -p "$T/job"
cat > "$T/job/config.yml" <<YAML
version: 2.1
jobs:
  bench:
    machine: true
    steps:
      - run: |
          D=/usr/bin/docker
          \$D run --rm --network none $IMG true
          for i in \$(seq $RUNS); do
            s=\$(date +%s%N); \$D run --rm --network none $IMG true; e=\$(date +%s%N)
            echo "LAT \$(( (e - s) / 1000 ))"
          done
          \$D run --name loud --network none -m 1g $IMG sh -c 'yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c 67108864' > /dev/null
          for i in 1 2 3; do
            s=\$(date +%s%N); \$D logs loud > /dev/null 2>&1; e=\$(date +%s%N)
            echo "LOGS \$(( (e - s) / 1000 ))"
          done
          \$D rm -f loud > /dev/null
YAML
median() { sort -g | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
run() {  # run PROFILE -> $T/PROFILE.out
  "$BUILD/gatehouse" run "$T/job/config.yml" --policy "$T/policy.yaml" --profile "$1" > "$T/$1.out" 2>&1 ||
    { echo "bench: the $1 job failed:" >&2; tail -20 "$T/$1.out" >&2; exit 1; }
}
# Each side runs twice, in the order proxy, direct, direct, proxy, so that
# neither gains from going first or last (the daemon's state changes).
for p in default direct direct default; do
  run "$p"
  cat "$T/$p.out" >> "$T/$p.all"
done
lat_p=$(sed -n 's/^LAT //p' "$T/default.all" | median); lat_d=$(sed -n 's/^LAT //p' "$T/direct.all" | median)
log_p=$(sed -n 's/^LOGS //p' "$T/default.all" | median); log_d=$(sed -n 's/^LOGS //p' "$T/direct.all" | median)
printf 'docker run --rm latency (median of 2x%d): proxy %.1f ms, direct %.1f ms, ratio %.3fx (target <= 1.05x)\n' \
  "$RUNS" "$(echo "$lat_p/1000" | bc -l)" "$(echo "$lat_d/1000" | bc -l)" "$(echo "$lat_p/$lat_d" | bc -l)"
printf 'docker logs throughput, 64 MiB (median of 2x3): proxy %.0f MiB/s, direct %.0f MiB/s, ratio %.3fx (target >= 0.9x)\n' \
  "$(echo "64000000/$log_p" | bc -l)" "$(echo "64000000/$log_d" | bc -l)" "$(echo "$log_d/$log_p" | bc -l)"

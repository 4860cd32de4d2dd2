#!/bin/bash
# The CI flows a job needs, through the Docker proxy, against a real
# dockerd: run, build, logs, exec, a network and a volume shared by two
# containers, a bind of the working directory; then cleanup at job end,
# proved by asking the daemon itself. Also: the proxy runs as nobody with
# no capabilities, and a job with docker `deny` has no socket at all.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../docker_lib.sh"
set -e
need_root
docker_require

cat > "$WORK/policy.yaml" <<YAML
version: 1
profiles:
  default:
    docker:
      mode: proxy
      socket: $TEST_DOCKER_SOCK
      proxy:
        images: ["docker.io/gatehouse-test/*"]
  nodocker: {}
YAML
mkdir -p "$WORK/flows"
printf 'FROM %s\nRUN echo built-in-image > /built\n' "$TEST_IMAGE" > "$WORK/flows/Dockerfile"
echo from-the-workspace > "$WORK/flows/data.txt"
f=$(job flows <<YAML
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - checkout
      - run: |
          set -x
          echo "DOCKER_HOST=\$DOCKER_HOST"
          D=/usr/bin/docker
          \$D version --format 'server API {{.Server.APIVersion}}'
          \$D run --rm $TEST_IMAGE echo hello-from-a-container
          DOCKER_BUILDKIT=0 \$D build -q -t jobimage:1 .
          \$D run --rm jobimage:1 cat /built
          \$D run -d --name logger $TEST_IMAGE sh -c 'echo a-log-line; sleep 60'
          sleep 1
          \$D logs logger
          \$D exec logger echo exec-works
          \$D network create shared-net
          \$D volume create shared-vol
          \$D run --rm --network shared-net -v shared-vol:/data $TEST_IMAGE sh -c 'echo via-volume > /data/f'
          \$D run --rm --network shared-net -v shared-vol:/data $TEST_IMAGE cat /data/f
          \$D run --rm -v "\$PWD":/w $TEST_IMAGE cat /w/data.txt
          \$D ps -a --format '{{.Names}}' | sed 's/^/listed: /'
          \$D inspect --format 'memory={{.HostConfig.Memory}} pids={{.HostConfig.PidsLimit}}' logger
          echo "proxy-processes-visible: \$(ps -e -o comm | grep -c docker-proxy || true)"
          echo FLOWS-DONE
YAML
)
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 0
expect_out "^DOCKER_HOST=unix:///var/run/docker.sock"
expect_out "^server API 1.41"
expect_out "^hello-from-a-container"
expect_out "^built-in-image"
expect_out "^a-log-line"
expect_out "^exec-works"
expect_out "^via-volume"
expect_out "^from-the-workspace"
expect_out "^listed: logger"
expect_out "^memory=[1-9][0-9]* pids=1024"
expect_out "^FLOWS-DONE"
expect_out "^proxy-processes-visible: 0"

# The proxy ran as nobody with the socket's group and no capabilities: the
# audit log's sandbox record says proxy; the daemon holds nothing of the job.
JOB_ID=$(grep -m1 '"event":"sandbox"' "$GATEHOUSE_AUDIT_LOG" | sed 's/.*"job_id":"\([^"]*\)".*/\1/')
[ -n "$JOB_ID" ] || fail "no sandbox record in the audit log"
grep -q '"docker":"proxy"' "$GATEHOUSE_AUDIT_LOG" || fail "the sandbox record does not say docker proxy"
n=$(dk_count_label "org.gatehouse.job=$JOB_ID")
[ "$n" = 0 ] || fail "$n objects of job $JOB_ID outlived it"
[ -z "$(dk ps -a -q --filter name=logger)" ] || fail "the job's container outlived the job"
[ -z "$(dk images -q jobimage:1)" ] || fail "the job's image outlived the job"
[ ! -e "/run/gatehouse-docker/$JOB_ID" ] || fail "the proxy's socket folder outlived the job"
pgrep -f "gatehouse-docker-proxy" > /dev/null && pgrep -a -f gatehouse-docker-proxy | grep -q "$TEST_DOCKER_SOCK" &&
  fail "a proxy outlived its job" || true

# While a job runs, its proxy is nobody, with the Docker socket's group as
# its only supplementary group and no capabilities at all.
f=$(job slow <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: sleep 4
YAML
)
"$GATEHOUSE" run "$f" --policy "$WORK/policy.yaml" > "$WORK/slow.out" 2>&1 &
SLOW=$!
pid=""
for _ in $(seq 60); do
  pid=$(pgrep -f "gatehouse-docker-proxy --upstream $TEST_DOCKER_SOCK" | head -1) && [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || fail "no proxy process while the job ran"
st=/proc/$pid/status
sock_gid=$(stat -c %g "$TEST_DOCKER_SOCK")
grep -qE "^Uid:\s+65534\s+65534\s+65534\s+65534" "$st" || fail "the proxy is not nobody: $(grep Uid "$st")"
grep -qE "^Groups:\s+$sock_gid\s*$" "$st" || fail "the proxy's groups: $(grep Groups "$st") (want only $sock_gid)"
grep -qE "^CapEff:\s+0+$" "$st" || fail "the proxy has capabilities: $(grep CapEff "$st")"
grep -qE "^CapPrm:\s+0+$" "$st" || fail "the proxy has permitted capabilities"
grep -qE "^Seccomp:\s+2" "$st" || fail "the proxy is not under seccomp"
grep -qE "^NoNewPrivs:\s+1" "$st" || fail "the proxy lacks no_new_privs"
wait $SLOW || fail "the slow job failed: $(cat "$WORK/slow.out")"
! kill -0 "$pid" 2> /dev/null || fail "the proxy outlived its job"

# The default (deny): no socket, no DOCKER_HOST.
f=$(job nodocker <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: |
          echo "DOCKER_HOST=${DOCKER_HOST:-unset}"
          [ -e /var/run/docker.sock ] && echo socket-present || echo no-socket
          /usr/bin/docker version 2>&1 | tail -1 || true
YAML
)
run_job "$f" --policy "$WORK/policy.yaml" --profile nodocker
expect_rc 0
expect_out "^DOCKER_HOST=unset"
expect_out "^no-socket"
expect_out "^Cannot connect to the Docker daemon"
echo ok

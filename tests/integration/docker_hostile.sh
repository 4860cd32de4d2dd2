#!/bin/bash
# A hostile job against the Docker proxy: every refused field, in every
# disguise (key case, Unicode folding, duplicate keys, top-level HostConfig,
# chunked body, Content-Length: 0, form bodies, versioned and unversioned
# paths, another job's container by name and by id prefix). The job sends
# raw requests (docker/hostile.py) and prints what each got; this script
# checks each answer's status and rule, then asks the daemon itself that
# nothing was created or changed, and that the refusals reached the audit log.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../docker_lib.sh"
set -e
need_root
docker_require
command -v python3 > /dev/null || skip "needs python3 (the hostile client runs in the job)"

# Another job's container (labelled with another job id) and an unlabelled one.
VICTIM=gh-victim-$$
dk run -d --name "$VICTIM" --network none --label org.gatehouse.job=run-someoneelse "$TEST_IMAGE" sleep 300 > /dev/null
VICTIM_ID=$(dk_inspect_field "$VICTIM" '{{.Id}}')
STOPPED=$(dk create --name "gh-stopped-$$" --network none --label org.gatehouse.job=run-someoneelse "$TEST_IMAGE" true)
trap 'dk rm -f -v "$VICTIM" "$STOPPED" > /dev/null 2>&1; dk rmi -f ci.local/hostile-img:1 > /dev/null 2>&1; rm -rf "$WORK"' EXIT

cat > "$WORK/policy.yaml" <<YAML
version: 1
profiles:
  default:
    docker:
      mode: proxy
      socket: $TEST_DOCKER_SOCK
      proxy:
        images: ["docker.io/gatehouse-test/*", "docker.io/library/*"]
YAML
mkdir -p "$WORK/hostile"
cp "$(dirname "$0")/docker/hostile.py" "$WORK/hostile/"
f=$(job hostile <<YAML
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - checkout
      - run: python3 hostile.py $TEST_IMAGE $VICTIM $VICTIM_ID $(dk_inspect_field "$TEST_IMAGE" '{{.Id}}') $STOPPED
YAML
)
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 0
expect_out "^DONE"

# variant status rule: what each attempt must get.
while read -r name status rule; do
  line=$(grep -E "^VARIANT $name " "$OUT" || true)
  [ -n "$line" ] || fail "variant $name did not run"
  [ "$line" = "VARIANT $name $status $rule" ] || fail "variant $name: expected '$status $rule', got '${line#VARIANT $name }'"
done <<'EXPECT'
control-create 201 ok
privileged 403 privileged
privileged-unversioned 403 privileged
privileged-lowercase 403 unknown-key
privileged-uppercase 403 unknown-key
privileged-duplicate 400 json-duplicate-key
privileged-top-level 403 top-level-hostconfig
securityopt-unicode-key 400 json-non-ascii-key
securityopt-case-collision 400 json-case-collision
privileged-chunked 403 privileged
content-length-zero 400 json-syntax
form-body 403 form-body
form-body-multipart 403 form-body
cl-and-te 400 framing
cap-add 403 cap-add
security-opt 403 security-opt
masked-paths-empty 403 masked-paths
readonly-paths-empty 403 readonly-paths
runtime 403 runtime
network-host 403 network-mode
pid-host 403 pid-mode
ipc-host 403 ipc-mode
uts-host 403 uts-mode
userns-host 403 userns-mode
cgroupns-host 403 cgroupns-mode
pid-container 403 pid-mode
cgroup-parent 403 cgroup-parent
devices 403 devices
device-cgroup-rules 403 device-cgroup-rules
bind-etc 403 bind-mount
bind-root 403 bind-mount
mount-bind-etc 403 bind-mount
volume-driver-opts 403 volume-driver-opts
volumes-from-victim 403 volumes-from
links-victim 403 links
storage-opt 403 storage-opt
ports 403 ports
publish-all 403 publish-all
log-driver 403 log-driver
sysctls 403 sysctls
memory-above 403 memory-limit
annotations 403 annotations
image-id-prefix 403 image
image-not-allowed 403 image
endpoint-plugins 403 plugins
endpoint-swarm 403 swarm
endpoint-services 403 services
endpoint-nodes 403 nodes
endpoint-secrets 403 secrets
endpoint-configs 403 configs
endpoint-libpod 403 libpod
endpoint-debug 403 debug
api-version-old 400 api-version
path-double-slash 400 path-empty-segment
path-dotdot 400 path-dot-segment
path-encoded-slash 400 path-encoding
absolute-form 400 target-form
query-duplicate 400 query-duplicate-key
query-semicolon 400 query-separator
victim-stop-by-name 404 not-owned
victim-stop-by-id-prefix 404 not-owned
victim-inspect 404 not-owned
victim-exec 404 not-owned
victim-remove 404 not-owned
update-memory-above 403 memory-limit
update-privileged 403 unknown-key
update-devices 403 devices
update-victim 404 not-owned
privileged-exec 403 privileged-exec
pull-not-allowed 403 image-pull
pull-fromsrc 403 image-import
image-load 403 image-load
build-network-host 403 build-network
build-remote 403 build-remote
build-extrahosts 403 build-extra-hosts
build-cgroupparent 403 build-cgroup-parent
build-base-not-allowed 403 build-base
build-copy-from-not-allowed 403 build-base
build-ok 200 ok
push-not-allowed 403 image-push
tag-shadows-base 403 image-name
build-tag-shadows-base 403 image-name
push-victim-image 404 not-owned
delete-base-image 404 not-owned
endpoint-tasks 403 tasks
endpoint-checkpoints 403 checkpoints
endpoint-session 403 buildkit
endpoint-grpc 403 buildkit
endpoint-system-df 403 system
body-too-large 413 body-too-large
pipelined 200 ok
prune 200 ok
EXPECT
expect_out "^LISTED victim-hidden"

# The matrix: each refused field in each disguise got the answer the client
# expected (the client writes down what it wants; the proxy only answers).
bad=$(awk '$1 == "MATRIX" && ($4 != $6 || $5 != $7)' "$OUT")
[ -z "$bad" ] || fail "matrix variants answered otherwise: $(echo "$bad" | head -5)"
n=$(grep -c '^MATRIX ' "$OUT")
[ "$n" -ge 270 ] && grep -q "^MATRIX-COUNT $n$" "$OUT" || fail "only $n matrix variants ran"
expect_out "^CONTROL privileged=False capadd=None network=none memory=[1-9]"

# The daemon itself: nothing refused was created, the victim is untouched,
# and the control container the job did create is gone with the job.
[ -z "$(dk ps -a -q --filter name=hostile-x)" ] || fail "a refused create reached the daemon"
[ "$(dk_inspect_field "$VICTIM" '{{.State.Running}}')" = true ] || fail "the other job's container was stopped"
[ -z "$(dk ps -a -q --filter name=hostile-control)" ] || fail "the job's own container outlived the job"
[ -z "$(dk images -q evil/miner)" ] || fail "a refused pull reached the daemon"
[ -z "$(dk ps -a -q --filter name=hostile-pipelined)" ] || fail "a request smuggled after another reached the daemon"
[ "$(dk_inspect_field "$STOPPED" '{{.State.Status}}')" = created ] || fail "the job's prune removed another job's container"
[ -z "$(dk images -q ci.local/hostile-img:1)" ] || fail "the job's image outlived the job"
[ -n "$(dk images -q "$TEST_IMAGE")" ] || fail "the base image was deleted"
expect_out "^EVENTS victim-unseen own-seen"

# Every refusal is in the audit log with its rule.
for r in privileged unknown-key json-duplicate-key top-level-hostconfig form-body not-owned image-pull; do
  grep -q "\"rule\":\"$r\"" "$GATEHOUSE_AUDIT_LOG" || fail "no audit record for rule $r"
done
"$GATEHOUSE" audit verify "$GATEHOUSE_AUDIT_LOG" > /dev/null || fail "the audit log does not verify"
echo "ok: $(grep -c "^VARIANT" "$OUT") hostile variants and $n matrix variants answered as expected"

#!/bin/bash
# Each profile field of --policy changes what a job can actually do.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
mkdir -p "$WORK/ro" "$WORK/rw" "$WORK/hidden"
echo "tool-data" > "$WORK/ro/tool.txt"
echo "hidden-data" > "$WORK/hidden/secret.txt"
chmod 777 "$WORK/rw"
cat > "$WORK/policy.yaml" <<YAML
version: 1
profiles:
  default:
    user:
      name: builder
      uid: 2000
      gid: 2000
      home: /home/builder
    uid_pool:
      first: 1910000
      count: 4
    filesystem:
      read_only: [$WORK/ro]
      read_write: [$WORK/rw]
      hidden: [$WORK/ro/hidden-inside]
      tmp_size: 8M
    resources:
      pids: 64
    environment:
      set:
        FROM_POLICY: fixed
        JOBVAR: policy-wins
      pass: [GH_PASS_ME]
YAML
mkdir -p "$WORK/ro/hidden-inside"
echo "should-not-see" > "$WORK/ro/hidden-inside/x"
f=$(job pol <<YAML
version: 2.1
jobs:
  build:
    machine: true
    environment:
      JOBVAR: from-job
    steps:
      - run: |
          echo "who=\$(id -un):\$(id -u) home=\$HOME pwd=\$(pwd)"
          echo "map=\$(cat /proc/self/uid_map | tr -s ' ')"
          cat $WORK/ro/tool.txt
          touch $WORK/ro/new 2>&1 || echo "ro-refused"
          echo written > $WORK/rw/out.txt && echo rw-ok
          ls $WORK/ro/hidden-inside | wc -l | sed 's/^/hidden-entries=/'
          test -e $WORK/hidden/secret.txt || echo "unlisted-path-absent"
          echo "FROM_POLICY=\$FROM_POLICY JOBVAR=\$JOBVAR GH_PASS_ME=\$GH_PASS_ME GH_NOT_PASSED=\${GH_NOT_PASSED:-unset}"
          dd if=/dev/zero of=/tmp/big bs=1M count=16 2>&1 | head -1 || true
          echo "pids.max-reached=\$( (for i in \$(seq 100); do sleep 2 & done) 2>&1 | grep -c 'fork' )"
YAML
)
GH_PASS_ME=passed GH_NOT_PASSED=leak run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 0
expect_out 'who=builder:2000 home=/home/builder pwd=/home/builder/project'
expect_out 'map=[ ]?2000 191000[0-3] 1'
expect_out '^tool-data$'
expect_out '^ro-refused$'
expect_out '^rw-ok$'
[ "$(cat "$WORK/rw/out.txt")" = written ] || fail "the read-write path was not written on the host"
expect_out '^hidden-entries=0$'
expect_out '^unlisted-path-absent$'
expect_out 'FROM_POLICY=fixed JOBVAR=policy-wins GH_PASS_ME=passed GH_NOT_PASSED=unset'
expect_out 'No space left on device'
expect_out 'pids.max-reached=[1-9]'

# A profile that does not exist, and a bad field: exit 2 with file:line:col.
run_job "$f" --policy "$WORK/policy.yaml" --profile nope
expect_rc 2
expect_out 'default'
printf 'version: 1\nprofiles:\n  default:\n    resources:\n      memory: lots\n' > "$WORK/bad.yaml"
run_job "$f" --policy "$WORK/bad.yaml"
expect_rc 2
expect_out 'bad.yaml:5:[0-9]+: error'
# A pool that holds a host account's uid is refused before anything runs.
printf 'version: 1\nprofiles:\n  default:\n    uid_pool: {first: 65534, count: 2}\n' > "$WORK/nobody.yaml"
run_job "$f" --policy "$WORK/nobody.yaml"
expect_rc 4
expect_out "gives to 'nobody'"
expect_no_out '^==>'
echo ok

#!/bin/bash
# root_in_namespace: the job is uid 0 in its user namespace, mapped to one
# unprivileged pool uid, and holds exactly the keep-list of sandbox/caps.cpp
# (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID = 0xfb) in its
# effective, permitted and bounding sets, nothing inheritable or ambient,
# with no_new_privs and seccomp; the same after an execve. What it writes in
# the workspace belongs to the pool uid on the host, never to host root.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
mkdir -p "$WORK/j"; cp "$PROBE" "$WORK/j/gatehouse-probe"
# A host directory the job may write (read_write), holding a file of host
# root's: the job's capabilities must not reach it even where no read-only
# mount stands in the way.
mkdir -m 0777 "$WORK/rw"
echo "host-root-secret" > "$WORK/rw/host-secret"; chmod 600 "$WORK/rw/host-secret"
cat > "$WORK/policy.yaml" <<YAML
version: 1
profiles:
  default:
    user: {root_in_namespace: true}
    filesystem: {read_write: ["$WORK/rw"]}
YAML
cat > "$WORK/j/config.yml" <<YAML
steps:
  - checkout
  - run: |
      echo "uid_map: \$(cat /proc/self/uid_map)"
      echo "gid_map: \$(cat /proc/self/gid_map)"
      echo "id: \$(id -u):\$(id -g) \$(id -un)"
      ./gatehouse-probe caps
      # After another execve (sh -> the probe) the sets are the same.
      sh -c './gatehouse-probe caps' | sed 's/^probe caps:/probe caps-again:/'
      ./gatehouse-probe read-file $WORK/rw/host-secret
      ./gatehouse-probe chmod $WORK/rw/host-secret 0644
      ./gatehouse-probe chown $WORK/rw/host-secret 0 0
      touch $WORK/rw/made-by-ns-root
YAML
run_job "$WORK/j/config.yml" --policy "$WORK/policy.yaml"
expect_rc 0
expect_out '^id: 0:0 root$'
expect_out '^uid_map: +0 +[0-9]+ +1$'
expect_out '^gid_map: +0 +[0-9]+ +1$'
host_uid=$(host_uid_of "$OUT")
[ -n "$host_uid" ] && [ "$host_uid" != 0 ] || fail "ns root mapped to host uid '$host_uid'"
for p in caps caps-again; do
  expect_out "^probe $p: CapEff=00000000000000fb$"
  expect_out "^probe $p: CapPrm=00000000000000fb$"
  expect_out "^probe $p: CapBnd=00000000000000fb$"
  expect_out "^probe $p: CapInh=0000000000000000$"
  expect_out "^probe $p: CapAmb=0000000000000000$"
  expect_out "^probe $p: NoNewPrivs=1$"
  expect_out "^probe $p: Seccomp=2$"
done
expect_out '^probe read-file: result=EACCES$'
expect_out '^probe chmod: result=EPERM$'
expect_out '^probe chown: result=EPERM$'
[ "$(stat -c %a:%u "$WORK/rw/host-secret")" = 600:0 ] || fail "host file changed: $(stat -c %a:%u "$WORK/rw/host-secret")"
# What ns root creates belongs to its pool uid on the host, not to root.
[ "$(stat -c %u:%g "$WORK/rw/made-by-ns-root")" = "$host_uid:$host_uid" ] ||
  fail "file made by ns root is owned by $(stat -c %u:%g "$WORK/rw/made-by-ns-root") on the host, not $host_uid"
echo "ns root: host uid $host_uid, caps 0xfb, host file untouched"

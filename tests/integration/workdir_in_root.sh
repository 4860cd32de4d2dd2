#!/bin/bash
# Paths in the job's view are resolved inside its new root, never on the
# host's tree. The root's /var/tmp is a link to /tmp; a working directory
# below it used to be made through that link before pivot_root, i.e. in the
# HOST's /tmp (owned by the job's uid), and the job ran without its
# workspace. Now it lands on the job's own /tmp: steps share it, checkout
# copies into it, the host's /tmp and /var/tmp get nothing. Also a working
# directory through /bin on merged-/usr hosts (/bin -> usr/bin): the job
# gets it, or, where /usr is the host's read-only tree, fails closed; no
# host path is touched either way.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
WR="$WORK/workroot"
work_root_mount "$WR"
export GATEHOUSE_WORK_ROOT="$WR"
x="gatehouse-wd-$$"
for p in /tmp/$x /var/tmp/$x /usr/bin/$x /bin/$x; do [ ! -e "$p" ] || fail "$p exists before the test"; done

f=$(job vartmp <<YAML
version: 2.1
jobs:
  build:
    machine: true
    working_directory: /var/tmp/$x/sub
    steps:
      - checkout
      - run: |
          echo "real=\$(pwd -P)"
          echo from-step-one > written.txt
      - run: |
          echo "step two reads: \$(cat written.txt)"
          test -f config.yml && echo checkout-landed-here
          echo "workspace-mount=\$(findmnt -n -o TARGET --target .)"
YAML
)
run_job "$f" --keep
expect_rc 0
expect_out "^real=/tmp/$x/sub\$"
expect_out '^step two reads: from-step-one$'
expect_out '^checkout-landed-here$'
expect_out "^workspace-mount=/tmp/$x/sub\$"
# The host's side: the file is in the job's workspace folder, and nothing
# named $x was made in the host's /tmp or /var/tmp.
ws=$(ls -d "$WR"/*/workspace | head -1)
[ "$(cat "$ws/written.txt" 2> /dev/null)" = from-step-one ] || fail "the step's file is not in the job's workspace $ws"
for p in /tmp/$x /var/tmp/$x; do [ ! -e "$p" ] || fail "the job created $p on the host"; done
rm -rf "${ws%/workspace}"

# Through /bin, a link into /usr on merged-/usr hosts.
if [ -L /bin ]; then
  f=$(job bin <<YAML
version: 2.1
jobs:
  build:
    machine: true
    working_directory: /bin/$x
    steps:
      - run: |
          echo "real=\$(pwd -P)"
          echo in-usr > written.txt && cat written.txt
YAML
)
  # /usr is the host's, read-only: no mount point can be made in it.
  # (sandbox/entry.cpp's spawn can lose the child's report when the child
  # fails before the broker wrote its "placed" signal: "placed signal:
  # Broken pipe". Still refused; the run is repeated to see the report.)
  for _ in 1 2 3 4 5; do
    run_job "$f"
    grep -q "placed signal: Broken pipe" "$OUT" || break
  done
  expect_rc 4
  expect_out "sandbox setup failed at step build root: bind /bin/$x: Read-only file system"
  # With an overlay root /usr is the job's: the workspace is /usr/bin/$x.
  printf 'version: 1\nprofiles:\n  default:\n    filesystem: {root: overlay, overlay_size: 256M}\n' > "$WORK/overlay.yaml"
  run_job "$f" --policy "$WORK/overlay.yaml"
  expect_rc 0
  expect_out "^real=/usr/bin/$x\$"
  expect_out '^in-usr$'
  for p in /usr/bin/$x /bin/$x /tmp/$x /var/tmp/$x; do [ ! -e "$p" ] || fail "the job created $p on the host"; done
  echo "merged /usr: read-only root refused, overlay root ran in /usr/bin/$x"
else
  echo "/bin is not a link on this host: the merged-/usr case does not apply"
fi
echo ok

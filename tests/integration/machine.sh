#!/bin/bash
# A job's `machine: image:` and `resource_class` are honoured
# (policy/machine.hpp, docs/policy.md "machine"): a job that asks for
# another architecture or OS than this host's is refused at the value's
# line and column before anything of it runs (exit 2, as other job-file
# refusals), one the profile's `machine` lists do not allow is refused
# naming the profile and the policy line (exit 3, as other policy
# refusals), and one this host is and the policy allows runs.
#
# The job parser fills Job::machine_image, Job::resource_class and their
# marks; until it does (the CircleCI 2.1 processing), the located
# assertions here fail.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
[ "$(uname -m)" = x86_64 ] || skip "the expected messages are an x86_64 host's; this host is $(uname -m)"

# The steps write their markers into a host folder the policy lends them,
# so the test sees whether anything ran.
mkdir -p "$WORK/out"
chmod 777 "$WORK/out"
cat > "$WORK/policy.yaml" <<YAML
version: 1
profiles:
  default:
    filesystem:
      read_write: [$WORK/out]
  narrow:
    extends: default
    machine:
      images: ["ubuntu-2204:*"]
      resource_classes: [medium]
YAML

# expect_exactly FILE: the run's output is exactly FILE's text.
expect_exactly() {
  diff -u "$1" "$OUT" >&2 || fail "the output is not exactly the expected message"
}
# audit_reason EXIT REASON: the last audit record refused the job with both.
audit_reason() {
  tail -1 "$GATEHOUSE_AUDIT_LOG" > "$WORK/last.json"
  grep -qF '"event":"refused"' "$WORK/last.json" || fail "no refused record: $(cat "$WORK/last.json")"
  grep -qF "\"exit_code\":$1" "$WORK/last.json" || fail "refused record without exit_code $1: $(cat "$WORK/last.json")"
  grep -qF "\"reason\":\"$2\"" "$WORK/last.json" || fail "refused record without reason $2: $(cat "$WORK/last.json")"
}

# 1. An Arm class on this x86_64 host: refused, whatever the policy lists.
f=$(job arm <<YAML
version: 2.1
jobs:
  build:
    machine:
      image: ubuntu-2204:2024.01.1
    resource_class: arm.large
    steps:
      - run: touch $WORK/out/ran-arm
YAML
)
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 2
cat > "$WORK/want-arm" <<EOF
$f:6:21: error: resource class \`arm.large\` is an aarch64 machine (CircleCI's arm.* classes are Arm VMs), and this host is x86_64 (uname -m): the job would run on the wrong architecture
      resource_class: arm.large
                      ^
  allowed here: what profile \`default\` allows (machine.resource_classes) and this x86_64 Linux host can run: small, medium, medium+, large, xlarge, 2xlarge, 2xlarge+, medium.gen2, large.gen2, xlarge.gen2, 2xlarge.gen2, 2xlarge+.gen2, medium.gen3, large.gen3, xlarge.gen3, 2xlarge.gen3, */*; an aarch64 job needs an aarch64 runner (no policy key changes this host's architecture)
EOF
expect_exactly "$WORK/want-arm"
[ ! -e "$WORK/out/ran-arm" ] || fail "the arm.large job ran on an x86_64 host"
audit_reason 2 'resource class `arm.large` needs an aarch64 host; this host is x86_64'

# The class may also sit in `machine:` itself, as CircleCI allows.
f=$(job arm_in_machine <<YAML
version: 2.1
jobs:
  build:
    machine:
      resource_class: arm.medium
    steps:
      - run: touch $WORK/out/ran-arm-in-machine
YAML
)
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 2
expect_out "^$f:5:23: error: resource class \`arm.medium\` is an aarch64 machine"
[ ! -e "$WORK/out/ran-arm-in-machine" ] || fail "the arm.medium job ran on an x86_64 host"

# 2. A Windows image on this Linux host: refused at the image.
f=$(job windows <<YAML
version: 2.1
jobs:
  build:
    machine:
      image: windows-server-2022-gui:current
    steps:
      - run: touch $WORK/out/ran-windows
YAML
)
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 2
cat > "$WORK/want-windows" <<EOF
$f:5:14: error: machine image \`windows-server-2022-gui:current\` is a Windows machine (CircleCI's windows-* images), and this host runs Linux: the job would run on the wrong operating system
        image: windows-server-2022-gui:current
               ^
  allowed here: what profile \`default\` allows (machine.images) and this x86_64 Linux host can run: ubuntu-*, default, circleci/classic:*; a Windows job needs a Windows runner (no policy key changes this host's OS)
EOF
expect_exactly "$WORK/want-windows"
[ ! -e "$WORK/out/ran-windows" ] || fail "the Windows job ran on a Linux host"
audit_reason 2 'machine image `windows-server-2022-gui:current` needs a Windows host; this host runs Linux'

# 3. What this host is and the policy allows: runs.
f=$(job ubuntu <<YAML
version: 2.1
jobs:
  build:
    machine:
      image: ubuntu-2204:2024.01.1
    resource_class: large
    steps:
      - run: touch $WORK/out/ran-ubuntu && echo ubuntu-ran
YAML
)
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 0
expect_out '^ubuntu-ran$'
[ -e "$WORK/out/ran-ubuntu" ] || fail "the ubuntu-2204 + large job did not run"
# The same under a profile that lists only `medium`: refused by the
# policy, naming the profile and the line that would have to change.
run_job "$f" --policy "$WORK/policy.yaml" --profile narrow
expect_rc 3
rm -f "$WORK/out/ran-ubuntu"
cat > "$WORK/want-narrow" <<EOF
$f:6:21: error: resource class \`large\` is not allowed by profile \`narrow\`: it matches no pattern of machine.resource_classes ($WORK/policy.yaml:10:7)
      resource_class: large
                      ^
  allowed here: medium; to allow it, add a pattern that matches it to machine.resource_classes of profile \`narrow\` at $WORK/policy.yaml:10:7
EOF
expect_exactly "$WORK/want-narrow"
[ ! -e "$WORK/out/ran-ubuntu" ] || fail "a job the profile refuses ran"
audit_reason 3 'profile `narrow` does not allow resource class `large` (machine.resource_classes)'

# 4. A job that names neither (`machine: true`) is not checked.
f=$(job plain <<YAML
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: touch $WORK/out/ran-plain
YAML
)
run_job "$f" --policy "$WORK/policy.yaml" --profile narrow
expect_rc 0
[ -e "$WORK/out/ran-plain" ] || fail "a job naming no image or class did not run"
echo "machine: arm and Windows jobs refused at their lines, ubuntu-2204 + large ran"

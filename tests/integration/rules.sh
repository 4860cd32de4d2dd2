#!/bin/bash
# The policy's rules pick the profile from job metadata (first match wins,
# a final default); --profile overrides them; what this build cannot
# enforce is refused with exit 3 before anything runs; seccomp and
# environment changes in a profile change what the job can do.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
cat > "$WORK/policy.yaml" <<'YAML'
version: 1
profiles:
  untrusted:
    resources: {pids: 64}
    environment:
      set: {WHICH: untrusted}
  trusted:
    environment:
      set: {WHICH: trusted}
      deny: [HIDE_ME]
    seccomp:
      allow: [ptrace]
      deny: [uname]
  egress:
    network:
      mode: egress
      allow: ["deb.debian.org:80"]
  proxy:
    docker:
      mode: proxy
      socket: /nonexistent/docker.sock
      proxy: {images: ["docker.io/library/*"]}
rules:
  - match: {trigger: fork_pull_request}
    profile: untrusted
  - match: {project: "acme/*", branch: [main, "release/**"]}
    profile: trusted
  - match: {job: needs-egress}
    profile: egress
  - match: {tag: "v*"}
    profile: proxy
  - profile: untrusted
YAML
f=$(job rules <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    environment:
      HIDE_ME: from-the-job
    steps:
      - run: |
          echo "WHICH=$WHICH HIDE_ME=${HIDE_ME:-removed}"
          uname >/dev/null 2>&1 && echo uname-ok || echo uname-refused
          # ptrace(PTRACE_TRACEME): 0 when the profile allows ptrace, -1 (EPERM) otherwise
          python3 -c 'import ctypes; print("ptrace=%d" % ctypes.CDLL(None).ptrace(0, 0, 0, 0))'
YAML
)
P=(--policy "$WORK/policy.yaml")

# First match wins: a fork PR of acme/app on main is still untrusted.
run_job "$f" "${P[@]}" --project acme/app --branch main --trigger fork_pull_request
expect_rc 0
expect_out 'profile: untrusted \(rule 1\)'
expect_out '^WHICH=untrusted HIDE_ME=from-the-job$'
expect_out '^uname-ok$'
expect_out '^ptrace=-1$'

# A misspelt trigger is refused before anything runs: it would otherwise
# match no trigger rule and fall through to another profile.
run_job "$f" "${P[@]}" --project acme/app --branch main --trigger fork-pull-request
expect_rc 2
expect_out 'fork-pull-request not in \{push,pull_request,fork_pull_request'
expect_no_out '^==>'

# The trusted rule: env deny removes the job's variable, seccomp changes bite.
run_job "$f" "${P[@]}" --project acme/app --branch release/1.2/hotfix --trigger push
expect_rc 0
expect_out 'profile: trusted \(rule 2\)'
expect_out '^WHICH=trusted HIDE_ME=removed$'
expect_out '^uname-refused$'
expect_out '^ptrace=0$'

# `*` does not cross `/`: acme/app/sub is not acme/*; falls to the default.
run_job "$f" "${P[@]}" --project acme/app/sub --branch main
expect_rc 0
expect_out 'profile: untrusted \(rule 5\)'

# --profile overrides the rules.
run_job "$f" "${P[@]}" --profile trusted
expect_rc 0
expect_out 'profile: trusted \(--profile\)'
run_job "$f" "${P[@]}" --profile nope
expect_rc 2
expect_out 'no profile `nope`'
expect_no_out '^==>'

# What this build cannot enforce: exit 3, a message that says so, nothing run,
# and the refusal audited.
f2=$(job egress <<'YAML'
version: 2.1
jobs:
  needs-egress:
    machine: true
    steps:
      - run: touch /tmp/should-not-run; echo RAN
YAML
)
run_job "$f2" "${P[@]}"
expect_rc 3
expect_out 'network `egress`.*cannot enforce it yet'
expect_no_out '^RAN$'
expect_no_out '^==>'
grep -q '"event":"refused"' "$GATEHOUSE_AUDIT_LOG" || fail "the refusal was not audited"
# The proxy profile is chosen, and fails closed when its daemon is missing.
run_job "$f" "${P[@]}" --tag v1.0
expect_rc 4
expect_out 'docker proxy: /nonexistent/docker.sock: No such file or directory \(is dockerd running\?\)'
expect_no_out '^==>'
echo ok

#!/bin/bash
# `gatehouse run FILE --workflow W`: the jobs run in dependency order, a
# matrix expands to CircleCI's names (2x2 less an exclude), a failed job's
# dependant is skipped, an approval holds its dependants unless --approve,
# filters leave jobs out, a `parallelism: 3` job runs its three nodes; the
# exit status is the worst job's. Then a job's nodes without a workflow,
# --node-index, and the refusals (a bad plan at its line, bad flags).
#
# Running a matrix-expanded name (`--job unit-mac-3.12 --workflow ci`), job
# `parameters:` and `parallelism:` need the CircleCI 2.1 processor
# (policy/config_*.cpp); the job parser that predates it refuses them, so
# this test passes once that processor is in the tree.
. "$(dirname "$0")/../lib.sh"
set -e
need_root

f=$(job workflow <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run: echo "ran $CIRCLE_JOB"
  unit:
    machine: true
    parameters:
      os: {type: string}
      version: {type: string}
    steps:
      - run: echo "ran $CIRCLE_JOB"
      - run: echo "version << parameters.version >> on $CIRCLE_JOB"
  flaky:
    machine: true
    steps:
      - run: echo "ran $CIRCLE_JOB"; exit 3
  report:
    machine: true
    steps:
      - run: echo SHOULD-NOT-RUN-report
  shard:
    machine: true
    parallelism: 3
    steps:
      - run: echo "shard node $CIRCLE_NODE_INDEX of $CIRCLE_NODE_TOTAL"
  deploy:
    machine: true
    steps:
      - run: echo "ran $CIRCLE_JOB"
  lint:
    machine: true
    steps:
      - run: echo "ran $CIRCLE_JOB"
workflows:
  ci:
    jobs:
      - build
      - unit:
          requires: [build]
          matrix:
            parameters:
              version: ["3.11", "3.12"]
              os: [linux, mac]
            exclude:
              - {os: mac, version: "3.11"}
      - flaky: {requires: [build]}
      - report: {requires: [flaky]}
      - shard: {requires: [unit]}
      - hold: {type: approval, requires: [shard]}
      - deploy: {requires: [hold]}
      - lint: {filters: {branches: {only: main}}}
YAML
)

# The front ends that show the jobs' output run as nobody under seccomp;
# only their parent, which reads the plan and exit statuses, stays root.
NO_COLOR=1 "$GATEHOUSE" run "$f" --workflow ci > "$OUT" 2>&1 &
parent=$!
seen=
for _ in $(seq 500); do
  for c in $(pgrep -P $parent -x gatehouse || true); do
    grep -qE '^Uid:\s+65534\s+65534\s+65534\s+65534$' /proc/$c/status 2> /dev/null &&
      grep -qE '^Seccomp:\s+2$' /proc/$c/status 2> /dev/null && seen=1
  done
  [ -n "$seen" ] && break
  kill -0 $parent 2> /dev/null || break
  sleep 0.01
done
set +e
wait $parent
RC=$?
set -e
[ -n "$seen" ] || fail "no job's front end was seen running as nobody under seccomp"
expect_rc 1

# The order: dependencies first, file order among the rest. A matrix's
# values go into the name in the order of the parameters' names (`os`
# before `version`, whatever order they are written in), as CircleCI's
# configuration reference shows (build-macos-0.1).
grep -E '^Job .* from ' "$OUT" | sed 's/ from .*//' > "$WORK/order"
cat > "$WORK/want" <<'EOF'
Job build
Job unit-linux-3.11
Job unit-linux-3.12
Job unit-mac-3.12
Job flaky
Job shard (node 0 of 3)
Job shard (node 1 of 3)
Job shard (node 2 of 3)
EOF
diff -u "$WORK/want" "$WORK/order" > "$WORK/diff" || fail "jobs ran out of order: $(cat "$WORK/diff")"
expect_out '^Workflow ci from .*config.yml: 9 jobs$'
expect_out '^filtered out \(no --branch\): lint$'
expect_out '^ran unit-linux-3.11$'
expect_out '^ran unit-mac-3.12$'
expect_no_out 'unit-mac-3.11'
# Needs the 2.1 processor: the matrix value reaches the job's parameter.
expect_out '^version 3.12 on unit-mac-3.12$'
expect_out '^shard node 0 of 3$'
expect_out '^shard node 1 of 3$'
expect_out '^shard node 2 of 3$'
expect_out '^Job shard: 3 of 3 nodes ran in [0-9.]+m?s: node 0 passed, node 1 passed, node 2 passed\.$'
expect_out '^skipped: report needs flaky, which failed$'
expect_no_out 'SHOULD-NOT-RUN'
expect_out '^held: hold is an approval: the jobs that need it do not run \(--approve hold runs them\)$'
expect_out '^skipped: deploy needs hold, which is waiting for approval$'
expect_no_out '^ran deploy$'
expect_out '^  build +1 +passed +[0-9.]+m?s$'
expect_out '^  flaky +1 +failed \(exit 1\) +[0-9.]+m?s$'
expect_out '^  report +- +skipped \(needs flaky\)$'
expect_out '^  shard +3 +passed'
expect_out '^  hold +- +held for approval$'
expect_out '^  result: FAILED \(exit 1\); held at 1 approval; 2 jobs did not run$'

# Approved, on main: the hold lets deploy through and lint is not filtered.
run_job "$f" --workflow ci --approve hold --branch main
expect_rc 1
expect_out '^Workflow ci from .*config.yml: 10 jobs$'
expect_out '^approved: hold \(--approve\)$'
expect_out '^ran deploy$'
expect_out '^ran lint$'
expect_no_out '^filtered out'
expect_out '^  result: FAILED \(exit 1\); 1 job did not run$'

# A job's nodes without a workflow: all of them, or the one named.
run_job "$f" --job shard
expect_rc 0
[ "$(grep -c '^shard node' "$OUT")" = 3 ] || fail "expected three nodes"
expect_out '^Job shard: 3 of 3 nodes ran'
run_job "$f" --job shard --parallel 3
expect_rc 0
[ "$(grep -c '^shard node' "$OUT")" = 3 ] || fail "expected three nodes with --parallel 3"
run_job "$f" --job shard --node-index 2
expect_rc 0
expect_out '^shard node 2 of 3$'
[ "$(grep -c '^shard node' "$OUT")" = 1 ] || fail "--node-index ran more than one node"
run_job "$f" --job shard --node-index 3
expect_rc 2
expect_out 'refused: --node-index 3 is not a node of job `shard`, which runs 3 nodes \(0 to 2\)'
run_job "$f" --job build
expect_rc 0
expect_no_out 'nodes ran'

# A plan with errors runs nothing and names the line.
g=$(job badplan <<'YAML'
version: 2.1
jobs:
  a:
    machine: true
    steps:
      - run: echo SHOULD-NOT-RUN-a
workflows:
  w:
    jobs:
      - a
      - a: {name: b, requires: [nope]}
YAML
)
run_job "$g" --workflow w
expect_rc 2
expect_out 'config.yml:11:33: error: job `b` requires `nope`, which is not a job in workflow `w`'
expect_no_out 'SHOULD-NOT-RUN'
run_job "$g" --workflow other
expect_rc 2
expect_out 'there is no workflow `other` in this file'

# Flags the front end refuses before anything starts.
run_job "$f" --workflow ci --approve nosuch
expect_rc 2
expect_out '--approve nosuch: workflow ci has no approval job of that name that runs \(its approvals: hold\)'
run_job "$f" --workflow ci --param 1bad=x
expect_rc 2
expect_out 'a parameter name starts with a letter'
run_job "$f" --workflow ci --node-index 1
expect_rc 2
expect_out '--node-index picks one node of one job'
run_job "$f" --job build --approve hold
expect_rc 2
expect_out '--approve names approval jobs of a --workflow run'
run_job "$f" --job shard --parallel 2 --stream-fd 1
expect_rc 2
expect_out 'the stream.s records would interleave'
echo ok

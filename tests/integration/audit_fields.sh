#!/bin/bash
# docs/audit.md names every field the audit log's records carry. Real jobs
# write every kind of record the broker writes without Docker: through
# `gatehouse run` a job that passes, one that hits its pids limit (a
# denial), one refused before a profile is picked and one refused after;
# through `gatehouse serve` a task that runs and a task that is refused
# (both carry task_id). Every key of every line (nested ones too, e.g.
# sandbox.host_uid) and every event name must appear in docs/audit.md as
# `key`. (The Docker proxy's denials add `docker` {rule, request, status};
# docker_proxy.sh writes those.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve_lib.sh"
set -e
DOC="$(cd "$(dirname "$0")/../.." && pwd)/docs/audit.md"
[ -f "$DOC" ] || fail "no $DOC"
serve_setup r1
cat > "$WORK/policy.yaml" <<'YAML'
version: 1
profiles:
  default:
    resources: {pids: 16}
  egress:
    network: {mode: egress, allow: ["example.com:443"]}
YAML
mkdir -p "$WORK/src"
cat > "$WORK/src/config.yml" <<'YAML'
version: 2.1
jobs:
  ok:
    machine: true
    steps:
      - run: echo fine
  forks:
    machine: true
    steps:
      - run:
          shell: /bin/sh
          command: for i in $(seq 40); do sleep 2 & done; wait
YAML
P="$WORK/policy.yaml"
run_job "$WORK/src/config.yml" --job ok --policy "$P"
expect_rc 0
run_job "$WORK/src/config.yml" --job forks --policy "$P"
expect_rc 1
run_job "$WORK/src/config.yml" --job nosuch --policy "$P"
expect_rc 2
run_job "$WORK/src/config.yml" --job ok --policy "$P" --profile egress
expect_rc 3

agent_config r1 "mode: continuous"
ok=$(submit "$WORK/src/config.yml" --job ok)
bad=$(submit "$WORK/src/config.yml" --job nosuch)
start_agent r1
wait_for '^completed$' state_of "$ok"
wait_for '^completed$' state_of "$bad"

L="$GATEHOUSE_AUDIT_LOG"
events=$(jq -r .event "$L" | sort -u | tr '\n' ' ')
[ "$events" = "admitted denial refused result sandbox " ] || fail "expected every event but docker's, got: $events"
jq -e -s "any(.[]; .event == \"refused\" and .task_id == \"$bad\" and (.job_id | test(\"^run-[0-9a-f]{16}$\")))" "$L" > /dev/null ||
  fail "no refused record with the task's id and a job_id"
jq -e -s "any(.[]; .event == \"result\" and .task_id == \"$ok\")" "$L" > /dev/null || fail "no result record with the task's id"

# Every key, at any depth, and every event name, as `name` in the doc.
missing=""
for k in $(jq -r '[paths | map(select(type == "string")) | last] | .[]' "$L" | sort -u) $(jq -r .event "$L" | sort -u); do
  grep -qF "\`$k\`" "$DOC" || missing="$missing $k"
done
[ -z "$missing" ] || fail "docs/audit.md does not mention these fields of the audit log's records:$missing"
echo "checked $(wc -l < "$L") records against $DOC"
echo ok

#!/bin/bash
# A uid pool that overlaps a subordinate id range of /etc/subuid or
# /etc/subgid is refused before anything runs: newuidmap/newgidmap would
# let the range's owner act as a job's uid. The message names the file,
# the line's owner and range, and what to do. Malformed lines are ignored.
# The files are restored in the trap (only the lines added here go).
. "$(dirname "$0")/../lib.sh"
set -e
need_root
first=1961000
count=8
tag="gatehouse-test-$$"
printf 'version: 1\nprofiles:\n  default:\n    uid_pool: {first: %s, count: %s}\n' $first $count > "$WORK/policy.yaml"
f=$(job subid <<'YAML'
steps:
  - run: echo job-step-ran
YAML
)
made=()
for file in /etc/subuid /etc/subgid; do [ -e $file ] || made+=("$file"); done
restore() {
  local file
  for file in /etc/subuid /etc/subgid; do [ ! -e $file ] || sed -i "/^$tag/d" $file; done
  for file in "${made[@]}"; do [ -s "$file" ] || rm -f "$file"; done
}
trap 'restore; lib_cleanup' EXIT
# The pool works as long as no range covers it; a malformed line is ignored.
for file in /etc/subuid /etc/subgid; do
  [ -e $file ] || : > $file
  if awk -F: -v a=$first -v n=$count '$2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ && $2 < a + n && $2 + $3 > a { f = 1 } END { exit !f }' $file; then
    skip "$file already has a range over $first..$((first + count - 1)): this host cannot run the test"
  fi
  echo "$tag-malformed:${first}x:$count" >> $file
done
run_job "$f" --policy "$WORK/policy.yaml"
expect_rc 0
expect_out '^job-step-ran$'
for file in /etc/subuid /etc/subgid; do
  # Covers the pool's last id: 1961007..1961106.
  echo "$tag:$((first + count - 1)):100" >> $file
  line=$(grep -n "^$tag:" $file | cut -d: -f1)
  run_job "$f" --policy "$WORK/policy.yaml"
  expect_rc 4
  expect_out "the uid pool \[$first, $((first + count))\) overlaps the subordinate id range $((first + count - 1))\.\.$((first + count + 98)) \(100 ids\) that $file line $line gives to '$tag'"
  expect_out "Choose a uid_pool outside every range in /etc/subuid and /etc/subgid, or move that user's range"
  expect_no_out job-step-ran
  sed -i "/^$tag:/d" $file
  echo "$file: refused ($(grep -o "overlaps.*gives to '$tag'" "$OUT"))"
done

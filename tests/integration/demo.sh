#!/bin/bash
# README's demo job passes, and what it shows refused is refused.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
src="$(cd "$(dirname "$0")/../.." && pwd)"
run_job "$src/examples/hello/.circleci/config.yml" --job build
expect_rc 0
expect_out '^hello, world$'
expect_out 'no /etc/shadow here'
expect_out "the host's tools are read-only"
expect_out "the host's network is not reachable"
run_job "$src/examples/hello/.circleci/config.yml" --job lint
expect_rc 0
echo ok

#!/bin/bash
# checkout copies the git work tree holding the job file: tracked files and
# untracked files that are not ignored; never ignored files, never .git.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v git >/dev/null || skip "git is not installed"
R="$WORK/repo"
mkdir -p "$R/.circleci" "$R/src"
cd "$R"
git init -q -b main .
git config user.email t@example.invalid
git config user.name t
echo 'secret.env' > .gitignore
echo tracked > src/tracked.txt
echo dots > src/a..b.txt
echo SECRET > secret.env
cat > .circleci/config.yml <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - checkout
      - run: |
          find . -type f | sort
          echo "branch=$CIRCLE_BRANCH sha=$CIRCLE_SHA1 repo=$CIRCLE_PROJECT_REPONAME"
          test ! -e .git && echo no-dot-git
          test ! -e secret.env && echo no-ignored-file
YAML
git add -A
git commit -qm init
echo untracked > src/untracked.txt
sha=$(git rev-parse HEAD)
cd /
run_job "$R/.circleci/config.yml"
expect_rc 0
expect_out '^\./src/tracked\.txt$'
expect_out '^\./src/untracked\.txt$'
expect_out '^\./src/a\.\.b\.txt$'
expect_out '^\./\.circleci/config\.yml$'
expect_out "branch=main sha=$sha repo=repo"
expect_out '^no-dot-git$'
expect_out '^no-ignored-file$'
echo ok

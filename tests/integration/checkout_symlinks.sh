#!/bin/bash
# checkout must never read or write through a symbolic link a tree's owner
# planted: not a committed folder swapped for a link (read attack), not a
# link listed before a path beneath it (write attack, absolute and relative
# targets), not a folder swapped for a link during the copy, and not a link
# on the way to the job file that would make root the reader. A normal
# user-owned work tree is still copied: tracked and untracked-unignored
# files, links as links, never .git.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v git >/dev/null || skip "git is not installed"
id nobody >/dev/null 2>&1 || skip "there is no user nobody to own the trees"
U=nobody
WR="$WORK/wr"  # the work root: staging folders are $WR/<job>/checkout
work_root_mount "$WR"
mkdir -p "$WR"

# new_repo DIR: a git work tree with a job that lists what it got.
new_repo() {
  mkdir -p "$1/.circleci"
  git -C "$1" init -q -b main .
  git -C "$1" config user.email t@example.invalid
  git -C "$1" config user.name t
  cat > "$1/.circleci/config.yml" <<'YAML'
version: 2.1
jobs:
  build:
    machine: true
    steps:
      - checkout
      - run: |
          echo "job ran"
          find . -path ./.git -prune -o -print | sort
          grep -r . . 2>/dev/null | grep "CANARY[-]" || echo "no canary"
YAML
}
commit() { git -C "$1" add -A && git -C "$1" commit -qm "$2"; }
run() { run_job "$1" --work-root "$WR"; }

# 1. Read attack: r/secret.txt is committed, then r becomes a link to a
# root-only folder, hidden from `git status` by .git/info/exclude.
ROOTONLY="$WORK/rootonly"
mkdir -m 0700 "$ROOTONLY"
echo "CANARY-read-$$" > "$ROOTONLY/secret.txt"
R="$WORK/read"
new_repo "$R"
mkdir "$R/r" && echo decoy > "$R/r/secret.txt"
commit "$R" init
rm -rf "$R/r" && ln -s "$ROOTONLY" "$R/r"
echo r >> "$R/.git/info/exclude"
git -C "$R" ls-files --cached | grep -qx r/secret.txt || fail "setup: r/secret.txt is not listed"
chown -hR "$U" "$R"
run "$R/.circleci/config.yml"
expect_rc 4
expect_out 'checkout: `r/secret.txt` lies under `r`, a symbolic link; refusing to copy through it'
expect_no_out 'CANARY-read'
expect_no_out '^job ran$'

# 2. Write attack, absolute target: an untracked link w -> a root folder is
# listed before the tracked w/evil.conf.
VICTIM="$WORK/victim"
mkdir "$VICTIM"
echo "ORIGINAL" > "$VICTIM/keep.conf"
W="$WORK/write-abs"
new_repo "$W"
mkdir "$W/w" && echo "PWNED" > "$W/w/evil.conf" && echo "PWNED" > "$W/w/keep.conf"
commit "$W" init
rm -rf "$W/w" && ln -s "$VICTIM" "$W/w"
git -C "$W" ls-files -z --cached --others --exclude-standard | tr '\0' '\n' > "$WORK/listing"
grep -qx w "$WORK/listing" && grep -qx w/evil.conf "$WORK/listing" || fail "setup: w and w/evil.conf are not both listed"
chown -hR "$U" "$W"
run "$W/.circleci/config.yml"
expect_rc 4
expect_out 'checkout: `w/(evil|keep)\.conf` lies under `w`, a symbolic link; refusing to copy through it'
[ ! -e "$VICTIM/evil.conf" ] || fail "a file was written through the link into $VICTIM"
[ "$(cat "$VICTIM/keep.conf")" = ORIGINAL ] || fail "$VICTIM/keep.conf was overwritten"

# 3. Write attack, relative target: from the staging folder the link climbs
# to / and on to $VICTIM; from the deeper source tree the same text lands
# in a folder of the owner's, holding the bytes to plant. Copying by path
# (the old way) read the owner's bytes and wrote them into $VICTIM.
DEEP="$WORK/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12"
W2="$DEEP/write-rel"
new_repo "$W2"
mkdir "$W2/w" && echo "PWNED" > "$W2/w/evil.conf"
commit "$W2" init
ups=$(( $(echo "$WR/x/checkout" | tr -cd / | wc -c) + 2 ))
target=$(printf '../%.0s' $(seq "$ups"))${VICTIM#/}
rm -rf "$W2/w" && ln -s "$target" "$W2/w"
src_side=$(cd "$W2" && realpath -m "$target")  # where the link lands from the source tree
mkdir -p "$src_side" && echo "PWNED" > "$src_side/evil.conf"
chown -hR "$U" "$WORK/d1"
run "$W2/.circleci/config.yml"
expect_rc 4
expect_out 'checkout: `w/evil\.conf` lies under `w`, a symbolic link; refusing to copy through it'
[ ! -e "$VICTIM/evil.conf" ] || fail "a file was written through the relative link into $VICTIM"
[ "$(cat "$VICTIM/keep.conf")" = ORIGINAL ] || fail "$VICTIM/keep.conf was overwritten"

# 4. The owner's link on the way to the job file: .circleci -> a root-owned
# folder. Its real folder is root's, but the user chose it: root must not
# become the reader (it would copy the root-only file beside the job).
CFG="$WORK/rootcfg"
mkdir "$CFG"
cp "$R/.circleci/config.yml" "$CFG/config.yml"
echo "CANARY-owner-$$" > "$CFG/private.txt" && chmod 0600 "$CFG/private.txt"
L="$WORK/linked"
mkdir "$L" && ln -s "$CFG" "$L/.circleci"
chown -hR "$U" "$L"
run "$L/.circleci/config.yml"
# The job file itself is read the same way, before any checkout: bad input.
expect_rc 2
expect_out "$CFG is root's, but $L on the way to it can be changed by another user"
expect_no_out 'CANARY-owner'
expect_no_out '^job ran$'

# 5. A folder swapped for a link while a large tree is copied: the link
# leads to a folder the reader COULD read, so only openat2's refusal to
# follow links keeps its canary out. Any run may pass (the swap missed)
# or be refused; none may copy the canary.
OUTSIDE="$WORK/outside"
S="$WORK/swap"
new_repo "$S"
mkdir -p "$S/d" "$OUTSIDE"
for i in $(seq 1 3000); do echo "file $i" > "$S/d/f$i.txt"; echo "CANARY-swap-$i" > "$OUTSIDE/f$i.txt"; done
commit "$S" init
echo 'd.real' >> "$S/.git/info/exclude"
chown -hR "$U" "$S" "$OUTSIDE"
( while :; do
    mv "$S/d" "$S/d.real" 2>/dev/null && ln -s "$OUTSIDE" "$S/d" && sleep 0.01 && rm -f "$S/d" && mv "$S/d.real" "$S/d" &&
      echo swapped >> "$WORK/swaps"
  done ) &
SWAPPER=$!
refused=0
for n in 1 2 3 4 5 6; do
  run "$S/.circleci/config.yml"
  expect_no_out 'CANARY-swap'
  if [ "$RC" = 4 ]; then
    refused=$((refused + 1))
    expect_out 'checkout: `d[^`]*` .*(a symbolic link|changed while it was being copied)'
  else
    expect_rc 0
    expect_out '^no canary$'
  fi
done
kill "$SWAPPER"; wait "$SWAPPER" 2>/dev/null || true
echo "swap runs refused: $refused of 6; swaps: $(wc -l < "$WORK/swaps")"
[ -s "$WORK/swaps" ] || fail "the folder was never swapped"
[ "$(cat "$OUTSIDE/f1.txt")" = CANARY-swap-1 ] || fail "$OUTSIDE/f1.txt was overwritten"

# 6. A normal user-owned work tree: tracked and untracked-unignored files,
# a link copied as a link, never ignored files, never .git.
N="$WORK/normal"
new_repo "$N"
mkdir "$N/src"
echo tracked > "$N/src/tracked.txt"
printf '#!/bin/sh\n' > "$N/src/tool.sh" && chmod 0755 "$N/src/tool.sh"
ln -s tracked.txt "$N/src/link"
echo 'ignored.txt' > "$N/.gitignore"
echo ignored > "$N/ignored.txt"
commit "$N" init
echo untracked > "$N/src/untracked.txt"
chown -hR "$U" "$N"
cat >> "$N/.circleci/config.yml" <<'YAML'
      - run: |
          test -L src/link && echo "link -> $(readlink src/link)"
          test -x src/tool.sh && echo "tool is executable"
          test ! -e .git && echo no-dot-git
YAML
run "$N/.circleci/config.yml"
expect_rc 0
expect_out "^Copied 6 files from the git work tree $N\$"
for p in ./src/tracked.txt ./src/untracked.txt ./src/tool.sh ./src/link ./.gitignore ./.circleci/config.yml; do
  expect_out "^${p//./\\.}\$"
done
expect_no_out '^\./ignored\.txt$'
expect_out '^link -> tracked\.txt$'
expect_out '^tool is executable$'
expect_out '^no-dot-git$'
echo ok

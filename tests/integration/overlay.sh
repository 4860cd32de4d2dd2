#!/bin/bash
# filesystem.root: overlay with user.root_in_namespace: the job is root in
# its namespace over an overlay of the host's /usr, /etc directories and
# package state. It can install software (new files, replaced files, a
# local .deb through dpkg and apt), and none of it reaches the host. Host
# files can be replaced but not changed in place. Without root: overlay,
# the same root job finds /usr read-only.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
command -v dpkg-deb > /dev/null || skip "dpkg-deb is not installed (not a Debian host)"
grep -qw overlay /proc/filesystems || modprobe overlay 2> /dev/null || skip "the kernel has no overlayfs"

cat > "$WORK/policy.yaml" <<'YAML'
version: 1
profiles:
  default:
    user: {root_in_namespace: true}
    filesystem: {root: overlay, overlay_size: 512M}
YAML

# A tiny package, built here; the name is unique so a host install or a
# leak would be noticed.
pkg=gh-overlay-test
mkdir -p "$WORK/deb/DEBIAN" "$WORK/deb/usr/local/bin"
printf '#!/bin/sh\necho hello from the package\n' > "$WORK/deb/usr/local/bin/$pkg"
chmod 755 "$WORK/deb/usr/local/bin/$pkg"
cat > "$WORK/deb/DEBIAN/control" <<EOF
Package: $pkg
Version: 1.0
Architecture: all
Maintainer: gatehouse tests <tests@example.invalid>
Description: gatehouse overlay test package
EOF
printf '#!/bin/sh\necho postinst ran as $(id -u)\n' > "$WORK/deb/DEBIAN/postinst"
chmod 755 "$WORK/deb/DEBIAN/postinst"
mkdir -p "$WORK/j"
dpkg-deb --root-owner-group -b "$WORK/deb" "$WORK/j/$pkg.deb" > /dev/null
dpkg -s "$pkg" > /dev/null 2>&1 && fail "$pkg is installed on the host before the test"

host_before=$(stat -c '%i %s %Y' /usr/bin/true /usr/bin/yes /var/lib/dpkg/status /etc/passwd)

cat > "$WORK/j/config.yml" <<YAML
steps:
  - checkout
  - run:
      name: tools run and new files are the job's
      command: |
        echo "id: \$(id -u)"
        dpkg --version > dpkg-version.txt && head -1 dpkg-version.txt
        printf '#!/bin/sh\necho hello from usr-local\n' > /usr/local/bin/hello
        chmod 755 /usr/local/bin/hello
        hello
        cp /bin/true /usr/bin/zzz-gatehouse && /usr/bin/zzz-gatehouse && rm /usr/bin/zzz-gatehouse
        echo x > /usr/share/doc/README.gatehouse
        echo "usr-writes=ok"
  - run:
      name: host files are replaced, never changed in place
      command: |
        set +e
        echo >> /usr/bin/true; echo "append-host-file=\$?"
        chmod 4755 /usr/bin/true; echo "chmod-host-file=\$?"
        printf '#!/bin/sh\necho replaced\n' > /tmp/yes && chmod 755 /tmp/yes && mv /tmp/yes /usr/bin/yes
        echo "replace-host-file=\$? \$(/usr/bin/yes | head -1)"
        rm /usr/bin/true && [ ! -e /usr/bin/true ]; echo "remove-host-file=\$?"
  - run:
      name: /etc and /var are the job's
      command: |
        echo "gatehouse-test:x:4242:4242::/nonexistent:/bin/false" >> /etc/passwd
        grep -c gatehouse-test /etc/passwd
        echo "// gatehouse test" > /etc/apt/apt.conf.d/99gatehouse-test
        dpkg -l dpkg > dpkg-l.txt && tail -1 dpkg-l.txt | cut -c1-2
        echo "etc-var=ok"
  - run:
      name: dpkg -i of a local package
      command: |
        dpkg -i $pkg.deb
        dpkg -s $pkg | grep '^Status:'
        $pkg
        dpkg -r $pkg > /dev/null && [ ! -e /usr/local/bin/$pkg ] && echo "dpkg-remove=ok"
  - run:
      name: apt-get install of a local package
      command: |
        apt-get install -y ./$pkg.deb > apt.log 2>&1 || { cat apt.log; exit 1; }
        $pkg
YAML
run_job "$WORK/j/config.yml" --policy "$WORK/policy.yaml"
expect_rc 0
expect_out '^id: 0$'
expect_out "^Debian 'dpkg' package management program"
expect_out '^hello from usr-local$'
expect_out '^usr-writes=ok$'
# in place: the job does not own host files (their owner is unmapped), and
# a copy-up would have to give the copy that unmapped owner
expect_out '^append-host-file=1$'
expect_out '^chmod-host-file=1$'
expect_out '^replace-host-file=0 replaced$'
expect_out '^remove-host-file=0$'
expect_out '^etc-var=ok$'
expect_out '^ii$'
expect_out '^postinst ran as 0$'
expect_out '^Status: install ok installed$'
expect_out '^dpkg-remove=ok$'
[ "$(grep -c '^hello from the package$' "$OUT")" = 2 ] || fail "the package's program did not run twice (dpkg, apt)"

# Nothing of it on the host.
for f in /usr/local/bin/hello /usr/bin/zzz-gatehouse /usr/share/doc/README.gatehouse \
  "/usr/local/bin/$pkg" /etc/apt/apt.conf.d/99gatehouse-test; do
  [ ! -e "$f" ] || fail "$f appeared on the host"
done
[ "$host_before" = "$(stat -c '%i %s %Y' /usr/bin/true /usr/bin/yes /var/lib/dpkg/status /etc/passwd)" ] ||
  fail "a host file changed"
grep -q gatehouse-test /etc/passwd && fail "the job's /etc/passwd line reached the host"
dpkg -s "$pkg" > /dev/null 2>&1 && fail "$pkg is installed on the host"

# Without the overlay, root in the namespace still cannot write /usr.
cat > "$WORK/policy-host.yaml" <<'YAML'
version: 1
profiles:
  default:
    user: {root_in_namespace: true}
YAML
mkdir -p "$WORK/h"
cat > "$WORK/h/config.yml" <<'YAML'
steps:
  - run: |
      set +e
      echo "id: $(id -u)"
      touch /usr/local/bin/hello 2> /dev/null; echo "usr-write=$?"
      touch /etc/gatehouse-test 2> /dev/null; echo "etc-write=$?"
YAML
run_job "$WORK/h/config.yml" --policy "$WORK/policy-host.yaml"
expect_rc 0
expect_out '^id: 0$'
expect_out '^usr-write=1$'
expect_out '^etc-write=1$'

# The overlay needs no CAP_SYS_ADMIN in the broker (DESIGN.md): it is
# mounted inside the job's user namespace. Same bounding set as
# broker_caps.sh.
if command -v setpriv > /dev/null; then
  mkdir -p "$WORK/c"
  cat > "$WORK/c/config.yml" <<'YAML'
steps:
  - run: echo made > /usr/local/bin/made-under-small-broker && cat /usr/local/bin/made-under-small-broker
YAML
  set +e
  NO_COLOR=1 setpriv --bounding-set=-all,+setuid,+setgid,+chown,+fowner --inh-caps=-all -- \
    "$GATEHOUSE" run "$WORK/c/config.yml" --policy "$WORK/policy.yaml" > "$OUT" 2>&1
  RC=$?
  set -e
  expect_rc 0
  expect_out '^made$'
  [ ! -e /usr/local/bin/made-under-small-broker ] || fail "the job's file reached the host"
else
  echo "note: setpriv missing, the small-broker overlay case was not run"
fi
echo "overlay: installs stay in the job; host unchanged"

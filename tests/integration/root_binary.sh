#!/bin/bash
# What runs as root, seen from outside:
#  - gatehouse-broker links no network client, TLS, HTTP server or YAML
#    parser (ldd and nm show it), and no output masker: job output is
#    masked by the worker, inside the sandbox, and root never scans it;
#  - a plain `gatehouse run` started by full root (every capability) holds
#    only the broker's four capabilities in the broker process, no groups,
#    no_new_privs; its front end, which shows the job's output, runs as
#    nobody under seccomp with no capabilities.
. "$(dirname "$0")/../lib.sh"
set -e
need_root
B="$(dirname "$GATEHOUSE")/gatehouse-broker"
[ -x "$B" ] || fail "no gatehouse-broker beside $GATEHOUSE"
ldd "$B" > "$OUT" 2>&1 || true
expect_no_out 'libcurl|libssl|libyaml|libhttp_parser|libsqlite|libarchive|libspdlog'
if command -v nm > /dev/null; then
  nm -C "$B" 2> /dev/null | grep -E ' [TtWw] ' > "$WORK/symbols" || true
  [ -s "$WORK/symbols" ] || skip "the broker binary has no symbol table to look at"
  grep -E ' (curl_|Curl_|SSL_connect|SSL_read|YAML::|yaml_parser|http_parser_execute|sqlite3_)' "$WORK/symbols" > "$OUT" &&
    fail "the broker links a network, TLS, YAML, HTTP or SQL library: $(head -3 "$OUT")"
  grep -E 'Masker' "$WORK/symbols" > "$OUT" && fail "the broker links the output masker: $(head -3 "$OUT")"
  grep -qE 'gh::worker::Masker::feed' <(nm -C "$(dirname "$GATEHOUSE")/gatehouse-worker" 2> /dev/null) ||
    fail "the worker does not link the output masker"
fi

f=$(job sleeper <<'YAML'
steps:
  - run: sleep 3
YAML
)
NO_COLOR=1 "$GATEHOUSE" run "$f" > "$OUT" 2>&1 &
front=$!
for _ in $(seq 100); do broker=$(pgrep -P $front -x gatehouse-broke || true); [ -n "$broker" ] && break; sleep 0.05; done
[ -n "$broker" ] || fail "no gatehouse-broker under the front end"
sleep 0.5
st=/proc/$broker/status
grep -qE '^CapEff:\s+00000000000000c9$' "$st" || fail "the broker's effective set: $(grep CapEff "$st")"
grep -qE '^CapPrm:\s+00000000000000c9$' "$st" || fail "the broker's permitted set: $(grep CapPrm "$st")"
grep -qE '^CapBnd:\s+00000000000000c9$' "$st" || fail "the broker's bounding set: $(grep CapBnd "$st")"
grep -qE '^CapAmb:\s+0+$' "$st" || fail "the broker's ambient set: $(grep CapAmb "$st")"
grep -qE '^NoNewPrivs:\s+1$' "$st" || fail "the broker lacks no_new_privs"
grep -qE '^Groups:\s*$' "$st" || fail "the broker holds groups: $(grep Groups "$st")"
st=/proc/$front/status
grep -qE '^Uid:\s+65534\s+65534\s+65534\s+65534$' "$st" || fail "the front end is not nobody: $(grep Uid "$st")"
grep -qE '^CapEff:\s+0+$' "$st" || fail "the front end has capabilities"
grep -qE '^Seccomp:\s+2$' "$st" || fail "the front end is not under seccomp"
grep -qE '^NoNewPrivs:\s+1$' "$st" || fail "the front end lacks no_new_privs"
wait $front || fail "the job failed: $(cat "$OUT")"

# Started without root, nothing starts.
set +e
setpriv --reuid=65534 --regid=65534 --clear-groups "$B" run --client-fd 1 --file "$f" > "$OUT" 2>&1
RC=$?
set -e
expect_rc 4
expect_out 'the broker must run as root'
echo ok

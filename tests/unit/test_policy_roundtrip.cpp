// The canonical form through the parser: parse(canonical(P)) has the same
// canonical form and digest as P, for the shipped example, a policy with
// every field set, hand-written files with extends and shorthands, and
// environment values of every code point class.
#include <doctest/doctest.h>

#include <algorithm>

#include <cstdio>
#include <string>

#include "policy/policy.hpp"
#include "policy/tools_text.hpp"
#include "tests/unit/policy_fixtures.hpp"
#include "tests/unit/read_file.hpp"

using namespace gh::policy;
using namespace gh::policy::fixtures;

// ---------------------------------------------------------------------------
// Through the parser: parse(canonical(P)) has the same canonical form as P.

namespace {

Policy parsed(const std::string& text) {
  PolicyOutcome o = parse_policy_text("policy.yaml", text);
  INFO(text);
  INFO(o.diagnostics.render());
  REQUIRE(o.policy);
  return *o.policy;
}

void round_trips(const Policy& p) {
  const std::string c = canonical_yaml(p);
  const Policy again = parsed(c);
  CHECK(canonical_yaml(again) == c);
  CHECK(policy_digest(again) == policy_digest(p));
}

}  // namespace

TEST_CASE("round trip: examples/policy.yaml") {
  const Policy p = parsed(read_all(GH_SOURCE_ROOT "/examples/policy.yaml"));
  round_trips(p);
}

TEST_CASE("round trip: a policy built with every field, odd strings included") {
  round_trips(everything());
  Policy p = everything();
  // Root in the namespace plus every docker mode and memory form.
  p.profiles[0].docker.mode = DockerMode::Direct;
  p.profiles[0].docker.acknowledged_root_equivalent = true;
  p.profiles[0].docker.socket = "/srv/docker \"odd\".sock";
  p.profiles[1].docker.proxy.memory_bytes.reset();
  p.profiles[1].docker.proxy.pids.reset();
  p.profiles[1].resources.cpus = 1.0 / 3;
  round_trips(p);
}

TEST_CASE("round trip: hand-written files with extends, shorthands and units") {
  const std::string text = R"(version: 1
secrets_dir: /srv/gatehouse/secrets
audit: {log: /srv/gatehouse/audit.jsonl}
signatures:
  required: yes
  trusted_keys:
    - {name: release-key, ed25519: ei0SfS8Ltum9Zsh7jT3FiGugoMwqr7hry0V6MOdNbFg=}
    - name: ops.2024_b
      ed25519: "nD19niAShisRbXWSpuFoYTZ3KqsINLKPsa+xKexf0KU="
profiles:
  base:
    user: {name: builder, uid: 2000, gid: 2001, home: /home/builder}
    uid_pool: {first: 2000000, count: 128}
    filesystem:
      read_only: [/opt/tools]
      hidden: [/usr/share/doc]
      tmp_size: 2G
      home_size: 512M
    network: none
    docker: deny
    resources: {memory: 8G, pids: 2048, cpus: 1.5, max_run_time: 1h30m, no_output_timeout: 15m, open_files: 8192, file_size: 1T}
    environment:
      set:
        PLAIN: value
        QUOTES: "say \"hi\" and 'bye'"
        BACKSLASH: 'C:\path\to'
        LINES: "one\ntwo\r\nthree\ttab"
        UNICODE: "é ☃ 𝄞 \u00e9 \x1b[0m \u0085 \u2028"
        EMPTY: ""
        SPACES: "  lead and trail  "
        HASH: "# not a comment"
        COLON: "a: b"
      pass: [LANG, HTTP_PROXY]
      deny: [AWS_SECRET_ACCESS_KEY]
  egress:
    extends: base
    network:
      mode: egress
      allow: ["registry.npmjs.org:443", "*.debian.org:80", "10.0.0.0/8:*", "[::1]:8080", "[fd00::]/8:9000-9010"]
    seccomp: {allow: [ptrace], deny: [io_setup]}
    secrets:
      - {name: npm_token, env: NPM_TOKEN}
      - name: release_key
        file: release.key
  rooty:
    extends: egress
    user: {root_in_namespace: true}
    filesystem: {root: overlay, overlay_size: 6G, read_write: [/srv/cache]}
    network: host
    resources: {memory: unlimited, cpus: 0.25}
    docker: {mode: direct, acknowledge: root-equivalent, socket: /run/docker.sock}
  proxied:
    docker:
      mode: proxy
      proxy:
        images: ["docker.io/library/*", "registry.local/**"]
        push: ["registry.local/team/**"]
        bind_paths: [/home/circleci/project]
        ports: ["8080", "9000-9010"]
        buildkit: true
        memory: 2G
        pids: 256
rules:
  - match: {trigger: fork_pull_request}
    profile: base
  - match:
      project: "acme/*"
      branch: [main, "release/**"]
      tag: "v*"
      job: [deploy]
      signed_by: release-key
    profile: rooty
  - match: {project: "acme/**", trigger: [push, pull_request]}
    profile: egress
  - match: {job: docker-*}
    profile: proxied
  - profile: base
)";
  const Policy p = parsed(text);
  round_trips(p);
  // Spot checks that the values survived (not just that both sides agree).
  const std::string c = canonical_yaml(parsed(canonical_yaml(p)));
  CHECK(c.find(R"("QUOTES": "say \"hi\" and 'bye'")") != std::string::npos);
  CHECK(c.find(R"("BACKSLASH": "C:\\path\\to")") != std::string::npos);
  CHECK(c.find(R"("LINES": "one\ntwo\r\nthree\ttab")") != std::string::npos);
  CHECK(c.find(R"("UNICODE": "é ☃ 𝄞 é \x1b[0m \u0085 \u2028")") != std::string::npos);
  CHECK(c.find(R"("SPACES": "  lead and trail  ")") != std::string::npos);
  CHECK(c.find("      cpus: 0.25\n") != std::string::npos);
  CHECK(c.find("      max_run_time: 5400\n") != std::string::npos);
  CHECK(c.find("      memory: unlimited\n") != std::string::npos);
  // Trusted keys are a set: by name.
  CHECK(c.find("signatures:\n  required: true\n  trusted_keys:\n    - name: \"ops.2024_b\"\n") != std::string::npos);
  CHECK(c.find("    - name: \"release-key\"\n      ed25519: \"ei0SfS8Ltum9Zsh7jT3FiGugoMwqr7hry0V6MOdNbFg=\"\n") !=
        std::string::npos);
  const Profile* rooty = nullptr;
  for (const auto& prof : p.profiles)
    if (prof.name == "rooty") rooty = &prof;
  REQUIRE(rooty);
  CHECK(rooty->environment.set.size() == 9);
  CHECK(rooty->secrets.size() == 2);

  // Same meaning, different spelling: same digest.
  Policy without_rules = parsed("version: 1\nprofiles:\n  default: {}\n");
  Policy spelled = parsed("version: 1\nprofiles:\n  default:\n    network: {mode: none}\n    resources: {memory: 4G, "
                          "max_run_time: 3h}\nrules:\n  - profile: default\n");
  CHECK(policy_digest(without_rules) == policy_digest(spelled));
  round_trips(without_rules);
}

TEST_CASE("round trip: environment values of every code point class") {
  // A deterministic pseudo-random walk over ASCII, the controls values may
  // hold (newline, tab, CR, ESC), C1,
  // separators and astral characters.
  uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 8) & 0xffff; };
  const uint32_t specials[] = {'"', '\\', '\n', '\t', '\r', 0x1b, 0x85, 0x9f, 0xa0, 0x2028, 0x2029, 0xfeff,
                               0xe9, 0x2603, 0x1d11e, ' ', '#', ':', '\'', '{', '[', '&', '*', '!', '%', '@', '`'};
  auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else if (cp < 0x800) s += {static_cast<char>(0xc0 | cp >> 6), static_cast<char>(0x80 | (cp & 63))};
    else if (cp < 0x10000)
      s += {static_cast<char>(0xe0 | cp >> 12), static_cast<char>(0x80 | (cp >> 6 & 63)), static_cast<char>(0x80 | (cp & 63))};
    else
      s += {static_cast<char>(0xf0 | cp >> 18), static_cast<char>(0x80 | (cp >> 12 & 63)),
            static_cast<char>(0x80 | (cp >> 6 & 63)), static_cast<char>(0x80 | (cp & 63))};
    return s;
  };
  Policy p = clean();
  for (int i = 0; i < 64; ++i) {
    std::string v;
    const uint32_t len = next() % 24;
    for (uint32_t k = 0; k < len; ++k) {
      const uint32_t r = next();
      v += utf8(r % 3 == 0 ? specials[r % std::size(specials)] : r % 3 == 1 ? 0x20 + r % 0x5f : 0xa0 + r % 0x2000);
    }
    p.profiles[0].environment.set.push_back({"V" + std::to_string(i), v});
  }
  round_trips(p);
  const Policy again = parsed(canonical_yaml(p));
  auto want = p.profiles[0].environment.set;
  std::sort(want.begin(), want.end());  // a map: the canonical form sorts it
  CHECK(again.profiles[0].environment.set == want);
}

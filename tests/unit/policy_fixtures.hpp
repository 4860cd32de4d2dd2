// Policies built directly from the model (no parser) for the operator
// tools' tests: a small clean one, and one with every field away from its
// default and hostile strings.
#pragma once

#include <string>

#include "policy/policy.hpp"

namespace gh::policy::fixtures {

inline Profile named(const std::string& name, int line) {
  Profile p;
  p.name = name;
  p.mark = {line, 3};
  return p;
}

inline Rule rule(const std::string& profile, int line, RuleMatch m = {}) {
  Rule r;
  r.match = std::move(m);
  r.profile = profile;
  r.mark = {line, 5};
  return r;
}

// A small clean policy: nothing lint warns about.
inline Policy clean() {
  Policy p;
  p.profiles = {named("default", 4), named("trusted", 10)};
  p.profiles[1].resources.memory_bytes = 8ull << 30;
  RuleMatch m;
  m.project = {"acme/*"};
  m.branch = {"main"};
  m.trigger = {"push"};
  p.rules = {rule("trusted", 20, m), rule("default", 25)};
  p.rules_written = true;
  return p;
}

// Every field set away from its default, with hostile strings.
inline Policy everything() {
  Policy p = clean();
  p.secrets_dir = "/srv/secrets";
  p.audit.log = "/srv/audit/log.jsonl";
  Profile& t = p.profiles[1];
  t.user = {"builder", 2000, 2001, "/home/builder", false};
  t.uid_pool = {2000000, 128};
  t.filesystem.root = RootFs::Overlay;
  t.filesystem.overlay_bytes = 8ull << 30;
  t.filesystem.read_only = {"/opt/tools", "/srv/mirror"};
  t.filesystem.read_write = {"/srv/cache"};
  t.filesystem.hidden = {"/usr/share/doc"};
  t.filesystem.tmp_bytes = 2ull << 30;
  t.filesystem.home_bytes = 512ull << 20;
  t.network.mode = NetworkMode::Egress;
  t.network.allow = {"registry.npmjs.org:443", "*.debian.org:80", "10.0.0.0/8:*", "[::1]:8080"};
  t.docker.mode = DockerMode::Proxy;
  t.docker.socket = "/run/docker.sock";
  t.docker.proxy = {{"docker.io/library/*"}, {"registry.local/team/**"}, {"/home/builder/project"}, {"8080", "9000-9010"},
                    true, 2ull << 30, 256};
  t.resources = {16ull << 30, 2048, 1.5, 7200, 900, 8192, 1ull << 40};
  t.seccomp.allow = {"ptrace"};
  t.seccomp.deny = {"io_setup"};
  t.environment.set = {{"LANG", "C.UTF-8"}, {"ODD", "a \"quoted\" \\back\\slash\nnew line\ttab \x1b[0m é ☃ \xc2\x85"}};
  t.environment.pass = {"HTTP_PROXY"};
  t.environment.deny = {"AWS_SECRET_ACCESS_KEY"};
  t.secrets = {{"npm_token", SecretExposure::As::Env, "NPM_TOKEN", {12, 9}},
               {"release_key", SecretExposure::As::File, "release.key", {14, 9}}};
  t.machine = {{"ubuntu-2204:*", "android:*"}, {"large", "arm.*", "acme/linux-?"}, {16, 7}, {17, 7}};
  Profile root = named("rooty", 30);
  root.user.root_in_namespace = true;
  root.user.name = "root";
  root.user.uid = root.user.gid = 0;
  root.docker.mode = DockerMode::Direct;
  root.docker.acknowledged_root_equivalent = true;
  root.resources.memory_bytes = 0;
  root.resources.cpus = 0.1;
  p.profiles.push_back(root);
  // A real Ed25519 public key (ei0SfS8Ltum9Zsh7jT3FiGugoMwqr7hry0V6MOdNbFg=), trusted under the
  // name the rule below requires.
  p.signatures.required = true;
  p.signatures.trusted_keys = {{"release-key",
                                {0x7a, 0x2d, 0x12, 0x7d, 0x2f, 0x0b, 0xb6, 0xe9, 0xbd, 0x66, 0xc8,
                                 0x7b, 0x8d, 0x3d, 0xc5, 0x88, 0x6b, 0xa0, 0xa0, 0xcc, 0x2a, 0xaf,
                                 0xb8, 0x6b, 0xcb, 0x45, 0x7a, 0x30, 0xe7, 0x4d, 0x6c, 0x58},
                                {8, 7}}};
  RuleMatch m;
  m.tag = {"v*"};
  m.job = {"deploy", "release"};
  m.signed_by = {"release-key"};
  p.rules.insert(p.rules.begin() + 1, rule("rooty", 22, m));
  return p;
}

}  // namespace gh::policy::fixtures

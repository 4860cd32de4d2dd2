// Helpers shared by the policy parser's unit tests (test_policy.cpp,
// test_policy_rules.cpp): parse a text, find an error at its line:col, and
// compare two profiles field by field.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "policy/seccomp_names.hpp"

using gh::policy::DockerMode;
using gh::policy::JobMeta;
using gh::policy::NetworkMode;
using gh::policy::parse_duration_seconds;
using gh::policy::parse_policy_text;
using gh::policy::parse_size;
using gh::policy::Policy;
using gh::policy::PolicyOutcome;
using gh::policy::Profile;
using gh::policy::RootFs;
using gh::policy::SecretExposure;
using Strings = std::vector<std::string>;


inline PolicyOutcome parse(const std::string& text) { return parse_policy_text("policy.yaml", text); }

inline bool has_error(const PolicyOutcome& o, int line, int col, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.mark.line == line && d.mark.column == col &&
        d.message.find(what) != std::string::npos)
      return true;
  return false;
}

inline bool has_error(const PolicyOutcome& o, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.message.find(what) != std::string::npos) return true;
  return false;
}

// `body` is indented under `profiles: default:` (4 spaces), starting on line 4.
inline std::string profile(const std::string& body) { return "version: 1\nprofiles:\n  default:\n" + body; }

inline void refused_at(const std::string& text, int line, int col, const std::string& what) {
  auto o = parse(text);
  CAPTURE(text);
  INFO(o.diagnostics.render());
  CHECK_FALSE(o.policy);
  CHECK(has_error(o, line, col, what));
}

// The parsed policy (the test fails when there is none).
inline Policy accepted(const std::string& text) {
  auto o = parse(text);
  CAPTURE(text);
  INFO(o.diagnostics.render());
  REQUIRE(o.policy);
  CHECK(o.diagnostics.all().empty());
  return std::move(*o.policy);
}

inline Profile only(const std::string& body) { return accepted(profile(body)).profiles.at(0); }

inline const Profile& named(const Policy& p, const std::string& name) {
  const Profile* prof = p.find(name);
  REQUIRE(prof);
  return *prof;
}

// Every field of two profiles but the name, extends and mark.
inline void same_settings(const Profile& a, const Profile& b) {
  CHECK(a.user.name == b.user.name);
  CHECK(a.user.uid == b.user.uid);
  CHECK(a.user.gid == b.user.gid);
  CHECK(a.user.home == b.user.home);
  CHECK(a.user.root_in_namespace == b.user.root_in_namespace);
  CHECK(a.uid_pool.first == b.uid_pool.first);
  CHECK(a.uid_pool.count == b.uid_pool.count);
  CHECK(a.filesystem.root == b.filesystem.root);
  CHECK(a.filesystem.overlay_bytes == b.filesystem.overlay_bytes);
  CHECK(a.filesystem.read_only == b.filesystem.read_only);
  CHECK(a.filesystem.read_write == b.filesystem.read_write);
  CHECK(a.filesystem.hidden == b.filesystem.hidden);
  CHECK(a.filesystem.tmp_bytes == b.filesystem.tmp_bytes);
  CHECK(a.filesystem.home_bytes == b.filesystem.home_bytes);
  CHECK(a.network.mode == b.network.mode);
  CHECK(a.network.allow == b.network.allow);
  CHECK(a.docker.mode == b.docker.mode);
  CHECK(a.docker.acknowledged_root_equivalent == b.docker.acknowledged_root_equivalent);
  CHECK(a.docker.socket == b.docker.socket);
  CHECK(a.docker.proxy.images == b.docker.proxy.images);
  CHECK(a.docker.proxy.push == b.docker.proxy.push);
  CHECK(a.docker.proxy.bind_paths == b.docker.proxy.bind_paths);
  CHECK(a.docker.proxy.ports == b.docker.proxy.ports);
  CHECK(a.docker.proxy.buildkit == b.docker.proxy.buildkit);
  CHECK(a.docker.proxy.memory_bytes == b.docker.proxy.memory_bytes);
  CHECK(a.docker.proxy.pids == b.docker.proxy.pids);
  CHECK(a.resources.memory_bytes == b.resources.memory_bytes);
  CHECK(a.resources.pids == b.resources.pids);
  CHECK(a.resources.cpus == doctest::Approx(b.resources.cpus));
  CHECK(a.resources.max_run_time_s == b.resources.max_run_time_s);
  CHECK(a.resources.no_output_timeout_s == b.resources.no_output_timeout_s);
  CHECK(a.resources.open_files == b.resources.open_files);
  CHECK(a.resources.file_size_bytes == b.resources.file_size_bytes);
  CHECK(a.seccomp.allow == b.seccomp.allow);
  CHECK(a.seccomp.deny == b.seccomp.deny);
  CHECK(a.environment.set == b.environment.set);
  CHECK(a.environment.pass == b.environment.pass);
  CHECK(a.environment.deny == b.environment.deny);
  REQUIRE(a.secrets.size() == b.secrets.size());
  for (size_t i = 0; i < a.secrets.size(); ++i) {
    CHECK(a.secrets[i].name == b.secrets[i].name);
    CHECK(a.secrets[i].as == b.secrets[i].as);
    CHECK(a.secrets[i].target == b.secrets[i].target);
  }
  CHECK(a.machine.images == b.machine.images);
  CHECK(a.machine.resource_classes == b.machine.resource_classes);
}

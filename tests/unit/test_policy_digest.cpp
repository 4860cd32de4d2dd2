// The digest changes exactly when the meaning does (docs/policy.md, "The
// canonical form"): a random reordering of a policy's profiles, maps and
// set-like lists, or a reformatting of its file, keeps the digest; a random
// change of meaning changes it. Auditors compare digests across hosts.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "policy/glob_cover.hpp"
#include "policy/policy.hpp"
#include "read_file.hpp"

namespace {

using gh::policy::Policy;

Policy parsed(const std::string& text) {
  auto o = gh::policy::parse_policy_text("policy.yaml", text);
  INFO(o.diagnostics.render());
  REQUIRE(o.policy);
  return *o.policy;
}

template <class V>
void shuffle(V& v, std::mt19937& rng) {
  std::shuffle(v.begin(), v.end(), rng);
}

// Every reordering the meaning does not see.
void reorder(Policy& p, std::mt19937& rng) {
  shuffle(p.profiles, rng);
  shuffle(p.signatures.trusted_keys, rng);
  for (auto& prof : p.profiles) {
    shuffle(prof.environment.set, rng);
    shuffle(prof.environment.pass, rng);
    shuffle(prof.environment.deny, rng);
    shuffle(prof.secrets, rng);
    shuffle(prof.filesystem.read_only, rng);
    shuffle(prof.filesystem.read_write, rng);
    shuffle(prof.filesystem.hidden, rng);
    shuffle(prof.seccomp.allow, rng);
    shuffle(prof.seccomp.deny, rng);
    shuffle(prof.network.allow, rng);
    shuffle(prof.docker.proxy.images, rng);
    shuffle(prof.docker.proxy.push, rng);
    shuffle(prof.docker.proxy.bind_paths, rng);
    shuffle(prof.docker.proxy.ports, rng);
    shuffle(prof.machine.images, rng);
    shuffle(prof.machine.resource_classes, rng);
  }
  for (auto& r : p.rules)
    for (auto* l : {&r.match.project, &r.match.branch, &r.match.tag, &r.match.trigger, &r.match.job, &r.match.signed_by})
      shuffle(*l, rng);
}

// The same YAML in another layout: flow style, other quoting, keys of every
// mapping in another order.
YAML::Node reshaped(const YAML::Node& n, std::mt19937& rng) {
  if (n.IsMap()) {
    // Indices are shuffled, not nodes: assigning a YAML::Node writes
    // through to the node it refers to.
    std::vector<std::pair<std::string, YAML::Node>> kv;
    for (const auto& e : n) kv.emplace_back(e.first.Scalar(), reshaped(e.second, rng));
    std::vector<size_t> order(kv.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    shuffle(order, rng);
    YAML::Node out(YAML::NodeType::Map);
    for (size_t i : order) out.force_insert(kv[i].first, kv[i].second);
    out.SetStyle(rng() % 2 ? YAML::EmitterStyle::Flow : YAML::EmitterStyle::Block);
    return out;
  }
  if (n.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const auto& e : n) out.push_back(reshaped(e, rng));
    out.SetStyle(rng() % 2 ? YAML::EmitterStyle::Flow : YAML::EmitterStyle::Block);
    return out;
  }
  return n;
}

}  // namespace

TEST_CASE("digest: reordering profiles, maps and sets, or reformatting the file, keeps it") {
  const std::string text = read_all(GH_SOURCE_ROOT "/examples/policy.yaml");
  const Policy p = parsed(text);
  const std::string d = gh::policy::policy_digest(p);
  std::mt19937 rng(20261203);
  for (int i = 0; i < 200; ++i) {
    Policy q = p;
    reorder(q, rng);
    CHECK(gh::policy::policy_digest(q) == d);
  }
  // The file itself reformatted: profiles and keys in other orders, flow or block.
  for (int i = 0; i < 50; ++i) {
    YAML::Emitter out;
    out << reshaped(YAML::Load(text), rng);
    REQUIRE(out.good());
    CAPTURE(out.c_str());
    CHECK(gh::policy::policy_digest(parsed(out.c_str())) == d);
  }
}

TEST_CASE("digest: a random change of meaning changes it") {
  const Policy p = parsed(read_all(GH_SOURCE_ROOT "/examples/policy.yaml"));
  const std::string d = gh::policy::policy_digest(p);
  REQUIRE(p.profiles.size() >= 2);
  REQUIRE(p.rules.size() >= 2);
  std::mt19937 rng(7);
  const std::vector<std::function<void(Policy&, size_t)>> changes = {
      [](Policy& q, size_t i) { q.profiles[i].resources.pids += 1; },
      [](Policy& q, size_t i) { q.profiles[i].resources.memory_bytes += 4096; },
      [](Policy& q, size_t i) { q.profiles[i].environment.set.push_back({"ADDED", "1"}); },
      [](Policy& q, size_t i) { q.profiles[i].environment.pass.push_back("ADDED"); },
      [](Policy& q, size_t i) { q.profiles[i].seccomp.deny.push_back("io_destroy"); },
      [](Policy& q, size_t i) { q.profiles[i].machine.images.push_back("ubuntu-1404:*"); },
      [](Policy& q, size_t i) { q.profiles[i].filesystem.hidden.push_back("/srv/added"); },
      [](Policy& q, size_t i) { q.profiles[i].name += "x"; },
      [](Policy& q, size_t) { std::swap(q.rules[0], q.rules[1]); },  // the first match wins: order is meaning
      [](Policy& q, size_t) { q.signatures.required = !q.signatures.required; },
  };
  for (int n = 0; n < 200; ++n) {
    Policy q = p;
    const size_t which = rng() % changes.size(), profile = rng() % q.profiles.size();
    CAPTURE(which);
    changes[which](q, profile);
    CHECK(gh::policy::policy_digest(q) != d);
  }
}

TEST_CASE("glob containment: sound, with the cases diff relies on") {
  using gh::policy::glob_covers;
  CHECK(glob_covers("docker.io/library/*", "docker.io/library/alpine:*"));
  CHECK(glob_covers("docker.io/library/*", "docker.io/library/busybox:1.?"));
  CHECK(glob_covers("docker.io/**", "docker.io/library/*"));
  CHECK(glob_covers("docker.io/**", "docker.io/a/**"));
  CHECK(glob_covers("ubuntu-*", "ubuntu-2204:*"));
  CHECK(glob_covers("a?c", "abc"));
  CHECK(glob_covers("*", "?"));
  // Not covered: `*` stops at `/`; `?` is one character; a literal is itself.
  CHECK_FALSE(glob_covers("docker.io/library/*", "docker.io/library/**"));
  CHECK_FALSE(glob_covers("docker.io/library/*", "docker.io/library/x/y"));
  CHECK_FALSE(glob_covers("docker.io/*", "docker.io/library/alpine"));
  CHECK_FALSE(glob_covers("a?c", "a*c"));
  CHECK_FALSE(glob_covers("a?c", "ac"));
  CHECK_FALSE(glob_covers("docker.io/library/alpine:*", "docker.io/library/*"));
  CHECK_FALSE(glob_covers("abc", "a?c"));
  CHECK(gh::policy::globs_cover({"x/*", "y/**"}, {"x/a", "y/b/c", "y/**"}));
  CHECK_FALSE(gh::policy::globs_cover({"x/*", "y/**"}, {"x/a/b"}));
}

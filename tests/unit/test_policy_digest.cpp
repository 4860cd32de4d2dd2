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
#include "policy/host_pattern.hpp"
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

TEST_CASE("host:port containment: names, wildcards, networks and port ranges") {
  using gh::policy::host_patterns_cover;
  using V = std::vector<std::string>;
  CHECK(host_patterns_cover({"*.debian.org:80"}, {"deb.debian.org:80"}));
  CHECK(host_patterns_cover({"*.debian.org:80"}, {"*.security.debian.org:80"}));
  CHECK(host_patterns_cover({"*.Debian.org:*"}, {"DEB.debian.ORG:8000-8100"}));
  CHECK(host_patterns_cover({"10.0.0.0/8:*"}, {"10.1.0.0/16:443", "10.2.3.4:22"}));
  CHECK(host_patterns_cover({"10.1.2.3/8:443"}, {"10.0.0.0/8:443"}));  // one network, two spellings
  CHECK(host_patterns_cover({"[fd00::]/8:*"}, {"[fd12::1]:443", "[fd00::]/16:80"}));
  CHECK(host_patterns_cover({"a.com:1-100", "a.com:101-200"}, {"a.com:50-150"}));  // ports joined
  CHECK(host_patterns_cover({"*.a.com:443", "x.a.com:80"}, {"x.a.com:80"}));
  // Not held: the apex is not under its wildcard; names and addresses are
  // never compared; a wider network, port or family is wider.
  CHECK_FALSE(host_patterns_cover({"*.debian.org:80"}, {"debian.org:80"}));
  CHECK_FALSE(host_patterns_cover({"*.debian.org:80"}, {"evildebian.org:80"}));
  CHECK_FALSE(host_patterns_cover({"a.com:443"}, {"*.a.com:443"}));
  CHECK_FALSE(host_patterns_cover({"a.com:443"}, {"a.com:*"}));
  CHECK_FALSE(host_patterns_cover({"10.0.0.0/16:*"}, {"10.0.0.0/8:*"}));
  CHECK_FALSE(host_patterns_cover({"*.example.com:443"}, {"93.184.216.34:443"}));
  CHECK_FALSE(host_patterns_cover({"0.0.0.0/0:*"}, {"[::1]:443"}));
  CHECK_FALSE(host_patterns_cover({"a.com:1-100", "a.com:102-200"}, {"a.com:50-150"}));
  CHECK_FALSE(host_patterns_cover(V{}, {"a.com:443"}));

  using gh::policy::port_lists_cover;
  CHECK(port_lists_cover({"9000-9004", "9005"}, {"9003-9005"}));
  CHECK(port_lists_cover({"8000-9000"}, {"8080", "8443"}));
  CHECK_FALSE(port_lists_cover({"8080"}, {"8080-8081"}));
  CHECK_FALSE(port_lists_cover({"9000-9004", "9006"}, {"9003-9006"}));
}

// A cover answer is a proof: whenever the outer list is said to hold the
// inner one, every host:port the inner one matches, the outer one matches.
TEST_CASE("host:port containment is sound on random patterns and addresses") {
  using gh::policy::HostPattern;
  std::mt19937 rng(13);
  const std::vector<std::string> names = {"a.com", "x.a.com", "y.x.a.com", "b.com", "a.org"};
  const std::vector<std::string> addrs = {"10.0.0.1", "10.1.2.3", "10.128.0.1", "192.168.1.1", "fd00::1", "fd12::1"};
  auto port = [&] {
    const unsigned lo = 1 + rng() % 6, hi = lo + rng() % 3;
    return rng() % 5 == 0 ? std::string("*") : rng() % 2 ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
  };
  auto pattern = [&] {
    switch (rng() % 4) {
      case 0: return names[rng() % names.size()] + ":" + port();
      case 1: return "*." + names[rng() % names.size()] + ":" + port();
      case 2: return "10." + std::to_string(rng() % 2 * 128) + ".0.0/" + std::to_string(1 + rng() % 16) + ":" + port();
      default: return "[fd" + std::to_string(rng() % 2 * 12) + "::]/" + std::to_string(8 + rng() % 12) + ":" + port();
    }
  };
  int held = 0;
  for (int n = 0; n < 10000; ++n) {
    std::vector<std::string> outer, inner;
    for (unsigned k = 1 + rng() % 3; k > 0; --k) outer.push_back(pattern());
    for (unsigned k = 1 + rng() % 2; k > 0; --k) inner.push_back(pattern());
    if (!gh::policy::host_patterns_cover(outer, inner)) continue;
    ++held;
    for (const auto& i : inner) {
      const HostPattern ip = *gh::policy::parse_host_pattern(i);
      std::vector<std::string> hosts = addrs;
      for (const auto& nm : names) {
        hosts.push_back(nm);
        hosts.push_back("z." + nm);
      }
      for (const auto& h : hosts)
        for (uint16_t p = 1; p <= 9; ++p) {
          if (!gh::policy::host_pattern_matches(ip, h, p)) continue;
          const bool outer_matches = std::any_of(outer.begin(), outer.end(), [&](const std::string& o) {
            return gh::policy::host_pattern_matches(*gh::policy::parse_host_pattern(o), h, p);
          });
          CAPTURE(i);
          CAPTURE(h);
          CAPTURE(p);
          CHECK(outer_matches);
        }
    }
  }
  CHECK(held > 200);  // the property was exercised, not vacuously true
}

// The canonical spelling of network.allow means what the list did, is its
// own canonical spelling, and is one spelling for rewrites of one meaning.
TEST_CASE("network.allow canonical spelling keeps the meaning") {
  using gh::policy::canonical_host_patterns;
  using V = std::vector<std::string>;
  CHECK(canonical_host_patterns({"10.1.2.3/8:8000-8049", "10.0.0.0/8:8050-8100", "A.com:443", "a.com:443"}) ==
        V{"10.0.0.0/8:8000-8100", "a.com:443"});
  CHECK(canonical_host_patterns({"*.a.com:1-10", "x.a.com:5-20"}) == canonical_host_patterns({"*.a.com:1-10", "x.a.com:11-20"}));
  CHECK(canonical_host_patterns({"*.a.com:443", "x.a.com:443"}) == V{"*.a.com:443"});
  CHECK(canonical_host_patterns({"[FD00::1]/8:1-65535", "10.1.2.3/32:80"}) == V{"10.1.2.3:80", "[fd00::]/8:*"});
  CHECK(gh::policy::canonical_port_list({"9006-9010", "9000-9004", "9005", "8080"}) == V{"8080", "9000-9010"});
  CHECK(gh::policy::canonical_port_list({"1-65535"}) == V{"1-65535"});  // docker.proxy.ports takes no `*`

  std::mt19937 rng(17);
  const V names = {"a.com", "x.a.com", "y.x.a.com", "b.com"};
  const V hosts = {"a.com", "x.a.com", "y.x.a.com", "z.y.x.a.com", "q.a.com", "b.com", "z.b.com", "10.0.0.1", "10.200.0.1", "fd00::1"};
  auto pattern = [&] {
    const unsigned lo = 1 + rng() % 8, hi = lo + rng() % 4;
    const std::string port = rng() % 6 == 0 ? "*" : std::to_string(lo) + "-" + std::to_string(hi);
    switch (rng() % 4) {
      case 0: return names[rng() % names.size()] + ":" + port;
      case 1: return "*." + names[rng() % names.size()] + ":" + port;
      case 2: return "10." + std::to_string(rng() % 256) + ".0.0/" + std::to_string(1 + rng() % 16) + ":" + port;
      default: return std::string("[fd00::]/8:") + port;
    }
  };
  auto matches = [](const V& list, const std::string& h, uint16_t p) {
    return std::any_of(list.begin(), list.end(), [&](const std::string& s) {
      return gh::policy::host_pattern_matches(*gh::policy::parse_host_pattern(s), h, p);
    });
  };
  for (int n = 0; n < 2000; ++n) {
    V list;
    for (unsigned k = 1 + rng() % 5; k > 0; --k) list.push_back(pattern());
    const V canon = canonical_host_patterns(list);
    CAPTURE(list);
    CHECK(canonical_host_patterns(canon) == canon);
    for (const auto& h : hosts)
      for (uint16_t p = 1; p <= 13; ++p) CHECK(matches(list, h, p) == matches(canon, h, p));
  }
}

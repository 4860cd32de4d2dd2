// The operator tools on a parsed policy: canonical form and digest, lint
// warnings, explain, diff. Policies are built directly from the model here;
// the round trip through the parser is in test_policy_roundtrip.cpp.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "policy/tools_text.hpp"
#include "tests/unit/policy_fixtures.hpp"

using namespace gh::policy;
using Kind = DiffLine::Kind;
using namespace gh::policy::fixtures;

namespace {

std::vector<const gh::Diagnostic*> warnings(const Policy& p) {
  static std::vector<gh::Diagnostics> keep;  // the pointers outlive this call
  keep.emplace_back("policy.yaml");
  lint(p, keep.back());
  std::vector<const gh::Diagnostic*> out;
  for (const auto& d : keep.back().all()) {
    CHECK(d.severity == gh::Severity::Warning);  // lint never adds errors
    out.push_back(&d);
  }
  return out;
}

bool warned(const Policy& p, const std::string& what, int line = -1) {
  for (const auto* d : warnings(p))
    if (d->message.find(what) != std::string::npos && (line < 0 || d->mark.line == line)) return true;
  return false;
}

// The diff line about `field` (of any kind), or "" when there is none.
std::pair<bool, Kind> diff_kind(const Policy& a, const Policy& b, const std::string& needle) {
  std::pair<bool, Kind> found{false, Kind::Unchanged};
  for (const auto& l : diff(a, b))
    if (l.text.find(needle) != std::string::npos) {
      // Several lines may name a field (added and removed): any widened wins.
      if (!found.first || l.kind == Kind::Widened) found = {true, l.kind};
    }
  return found;
}

void expect_diff(const Policy& a, const Policy& b, const std::string& needle, Kind k) {
  auto [found, kind] = diff_kind(a, b, needle);
  INFO(render_diff(diff(a, b)));
  CAPTURE(needle);
  REQUIRE(found);
  CHECK(kind == k);
}

}  // namespace

TEST_CASE("quote: any string becomes one printable double-quoted line") {
  using text::quote;
  CHECK(quote("") == "\"\"");
  CHECK(quote("plain") == "\"plain\"");
  CHECK(quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(quote("l1\nl2\tt\r") == "\"l1\\nl2\\tt\\r\"");
  CHECK(quote(std::string("\x01\x1b\x7f", 3)) == "\"\\x01\\x1b\\x7f\"");
  CHECK(quote(std::string("nul\0x", 5)) == "\"nul\\x00x\"");
  CHECK(quote("é☃𝄞") == "\"é☃𝄞\"");                         // printable UTF-8 kept
  CHECK(quote("\xc2\x85|\xe2\x80\xa8|\xef\xbb\xbf") == "\"\\u0085|\\u2028|\\ufeff\"");  // C1, LS, BOM
  CHECK(quote("\xff\xc3") == "\"\\xff\\xc3\"");              // broken UTF-8 never passes through raw
}

TEST_CASE("number: the shortest decimal that reads back exactly, no exponent") {
  CHECK(text::number(2.0) == "2");
  CHECK(text::number(0.5) == "0.5");
  CHECK(text::number(0.1) == "0.1");
  CHECK(text::number(1.5) == "1.5");
  CHECK(text::number(64.0) == "64");
  for (double v : {1.0 / 3, 0.1 + 0.2, 123.456, 0.001, 1e-7, 4096.0}) {
    const std::string s = text::number(v);
    CAPTURE(s);
    CHECK(s.find('e') == std::string::npos);
    CHECK(std::stod(s) == v);
  }
}

TEST_CASE("canonical form: every field written, defaults included, fixed order") {
  Policy p;
  p.profiles = {named("default", 3)};
  p.rules = {rule("default", 0)};
  const std::string c = canonical_yaml(p);
  CHECK(c == R"(version: 1
secrets_dir: "/etc/gatehouse/secrets"
audit:
  log: "/var/log/gatehouse/audit.jsonl"
signatures:
  required: false
  trusted_keys: []
profiles:
  "default":
    user:
      name: "circleci"
      uid: 3434
      gid: 3434
      home: "/home/circleci"
      root_in_namespace: false
    uid_pool:
      first: 1900000
      count: 64
    filesystem:
      root: host
      read_only: []
      read_write: []
      hidden: []
      tmp_size: 1073741824
      home_size: 1073741824
    network:
      mode: none
    docker:
      mode: deny
    resources:
      memory: 4294967296
      pids: 1024
      cpus: 2
      max_run_time: 10800
      no_output_timeout: 600
      open_files: 4096
      file_size: 17179869184
    seccomp:
      allow: []
      deny: []
    environment:
      set: {}
      pass: []
      deny: []
    secrets: []
    machine:
      images: ["circleci/classic:*", "default", "ubuntu-*"]
      resource_classes: ["*/*", "2xlarge", "2xlarge+", "2xlarge+.gen2", "2xlarge.gen2", "2xlarge.gen3", "arm.*", "large", "large.gen2", "large.gen3", "medium", "medium+", "medium.gen2", "medium.gen3", "small", "xlarge", "xlarge.gen2", "xlarge.gen3"]
rules:
  - profile: "default"
)");
}

TEST_CASE("canonical form: modes write their own fields and no others") {
  const std::string c = canonical_yaml(everything());
  // root_in_namespace: no name/uid/gid (the syntax forbids them there).
  CHECK(c.find("    user:\n      home: \"/home/circleci\"\n      root_in_namespace: true\n") != std::string::npos);
  CHECK(c.find("      root: overlay\n      overlay_size: 8589934592\n") != std::string::npos);
  CHECK(c.find("      mode: egress\n      allow: [\"*.debian.org:80\", \"10.0.0.0/8:*\", \"[::1]:8080\", "
               "\"registry.npmjs.org:443\"]\n") != std::string::npos);
  CHECK(c.find("      mode: direct\n      acknowledge: \"root-equivalent\"\n      socket: \"/var/run/docker.sock\"\n") !=
        std::string::npos);
  CHECK(c.find("      mode: proxy\n      socket: \"/run/docker.sock\"\n      proxy:\n        images: "
               "[\"docker.io/library/*\"]\n") != std::string::npos);
  CHECK(c.find("        buildkit: true\n        memory: 2147483648\n        pids: 256\n") != std::string::npos);
  CHECK(c.find("      memory: unlimited\n") != std::string::npos);
  CHECK(c.find("      cpus: 0.1\n") != std::string::npos);
  CHECK(c.find("      cpus: 1.5\n") != std::string::npos);
  CHECK(c.find("        \"ODD\": \"a \\\"quoted\\\" \\\\back\\\\slash\\nnew line\\ttab \\x1b[0m é ☃ \\u0085\"\n") !=
        std::string::npos);
  CHECK(c.find("    secrets:\n      - name: \"npm_token\"\n        env: \"NPM_TOKEN\"\n      - name: \"release_key\"\n"
               "        file: \"release.key\"\n") != std::string::npos);
  CHECK(c.find("  - match:\n      tag: [\"v*\"]\n      job: [\"deploy\", \"release\"]\n      signed_by: "
               "[\"release-key\"]\n    profile: \"rooty\"\n") != std::string::npos);
  CHECK(c.find("extends") == std::string::npos);
  // One line per logical line: no raw control character but the newlines.
  for (char ch : c) CHECK((static_cast<unsigned char>(ch) >= 0x20 || ch == '\n'));
}

TEST_CASE("digest: lower-case SHA-256 of the canonical form, stable, sensitive to every field") {
  const Policy base = everything();
  const std::string d = policy_digest(base);
  REQUIRE(d.size() == 64);
  CHECK(d.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(policy_digest(everything()) == d);

  // Against an independent implementation.
  char path[] = "/tmp/gh-canonical-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string c = canonical_yaml(base);
  REQUIRE(write(fd, c.data(), c.size()) == static_cast<ssize_t>(c.size()));
  close(fd);
  FILE* sum = popen(("sha256sum " + std::string(path)).c_str(), "r");
  REQUIRE(sum);
  char buf[65] = {};
  REQUIRE(fread(buf, 1, 64, sum) == 64);
  pclose(sum);
  unlink(path);
  CHECK(std::string(buf) == d);

  using Edit = std::function<void(Policy&)>;
  const std::vector<std::pair<const char*, Edit>> edits = {
      {"secrets_dir", [](Policy& p) { p.secrets_dir = "/srv/other"; }},
      {"audit.log", [](Policy& p) { p.audit.log = "/srv/other.jsonl"; }},
      {"signatures.required", [](Policy& p) { p.signatures.required = false; }},
      {"trusted key name", [](Policy& p) { p.signatures.trusted_keys[0].name = "release-key2"; }},
      {"trusted key", [](Policy& p) { p.signatures.trusted_keys[0].public_key[5] ^= 1; }},
      {"trusted key added", [](Policy& p) { p.signatures.trusted_keys.push_back({"other", {9}, {}}); }},
      {"profile name", [](Policy& p) { p.profiles[0].name = "dflt"; }},
      {"user.name", [](Policy& p) { p.profiles[1].user.name = "other"; }},
      {"user.uid", [](Policy& p) { p.profiles[1].user.uid = 2002; }},
      {"user.gid", [](Policy& p) { p.profiles[1].user.gid = 2002; }},
      {"user.home", [](Policy& p) { p.profiles[1].user.home = "/home/x"; }},
      {"root_in_namespace", [](Policy& p) { p.profiles[0].user.root_in_namespace = true; }},
      {"uid_pool.first", [](Policy& p) { p.profiles[1].uid_pool.first++; }},
      {"uid_pool.count", [](Policy& p) { p.profiles[1].uid_pool.count++; }},
      {"root", [](Policy& p) { p.profiles[0].filesystem.root = RootFs::Overlay; }},
      {"overlay_size", [](Policy& p) { p.profiles[1].filesystem.overlay_bytes++; }},
      {"read_only", [](Policy& p) { p.profiles[1].filesystem.read_only.pop_back(); }},
      {"read_write", [](Policy& p) { p.profiles[1].filesystem.read_write.push_back("/srv/b"); }},
      {"hidden", [](Policy& p) { p.profiles[1].filesystem.hidden.clear(); }},
      {"tmp_size", [](Policy& p) { p.profiles[1].filesystem.tmp_bytes++; }},
      {"home_size", [](Policy& p) { p.profiles[1].filesystem.home_bytes++; }},
      {"network.mode", [](Policy& p) { p.profiles[0].network.mode = NetworkMode::Host; }},
      {"network.allow", [](Policy& p) { p.profiles[1].network.allow[0] = "registry.npmjs.org:444"; }},
      {"docker.mode", [](Policy& p) { p.profiles[0].docker.mode = DockerMode::Direct; }},
      {"docker.socket", [](Policy& p) { p.profiles[1].docker.socket = "/run/d.sock"; }},
      {"proxy.images", [](Policy& p) { p.profiles[1].docker.proxy.images.push_back("x/*"); }},
      {"proxy.push", [](Policy& p) { p.profiles[1].docker.proxy.push.clear(); }},
      {"proxy.bind_paths", [](Policy& p) { p.profiles[1].docker.proxy.bind_paths.clear(); }},
      {"proxy.ports", [](Policy& p) { p.profiles[1].docker.proxy.ports.pop_back(); }},
      {"proxy.buildkit", [](Policy& p) { p.profiles[1].docker.proxy.buildkit = false; }},
      {"proxy.memory", [](Policy& p) { p.profiles[1].docker.proxy.memory_bytes.reset(); }},
      {"proxy.pids", [](Policy& p) { p.profiles[1].docker.proxy.pids = 257; }},
      {"memory", [](Policy& p) { p.profiles[1].resources.memory_bytes++; }},
      {"pids", [](Policy& p) { p.profiles[1].resources.pids++; }},
      {"cpus", [](Policy& p) { p.profiles[1].resources.cpus = 1.5000000000000002; }},
      {"max_run_time", [](Policy& p) { p.profiles[1].resources.max_run_time_s++; }},
      {"no_output_timeout", [](Policy& p) { p.profiles[1].resources.no_output_timeout_s++; }},
      {"open_files", [](Policy& p) { p.profiles[1].resources.open_files++; }},
      {"file_size", [](Policy& p) { p.profiles[1].resources.file_size_bytes++; }},
      {"seccomp.allow", [](Policy& p) { p.profiles[1].seccomp.allow.clear(); }},
      {"seccomp.deny", [](Policy& p) { p.profiles[1].seccomp.deny.push_back("io_destroy"); }},
      {"env.set value", [](Policy& p) { p.profiles[1].environment.set[1].second += " "; }},
      {"env.set name", [](Policy& p) { p.profiles[1].environment.set[0].first = "LC_ALL"; }},
      {"env.pass", [](Policy& p) { p.profiles[1].environment.pass.clear(); }},
      {"env.deny", [](Policy& p) { p.profiles[1].environment.deny.push_back("X"); }},
      {"secret name", [](Policy& p) { p.profiles[1].secrets[0].name = "npm_token2"; }},
      {"secret as", [](Policy& p) { p.profiles[1].secrets[0].as = SecretExposure::As::File; }},
      {"secret target", [](Policy& p) { p.profiles[1].secrets[1].target = "other.key"; }},
      {"machine.images", [](Policy& p) { p.profiles[1].machine.images.pop_back(); }},
      {"machine.resource_classes", [](Policy& p) { p.profiles[1].machine.resource_classes.push_back("xlarge"); }},
      {"rule match", [](Policy& p) { p.rules[0].match.branch = {"main", "dev"}; }},
      {"rule profile", [](Policy& p) { p.rules[0].profile = "default"; }},
      {"rule order", [](Policy& p) { std::swap(p.rules[0], p.rules[1]); }},
  };
  std::set<std::string> seen{d};
  for (const auto& [what, edit] : edits) {
    Policy p = everything();
    edit(p);
    CAPTURE(what);
    const std::string e = policy_digest(p);
    CHECK(e != d);
    CHECK(seen.insert(e).second);  // no two edits collide either
  }
}

TEST_CASE("digest: what the canonical form leaves out carries no meaning") {
  // Defaults are written out, so writing them or not is the same policy.
  Policy a = clean();
  Policy b = clean();
  b.rules_written = false;
  b.profiles[0].extends = "trusted";
  b.profiles[0].mark = {99, 1};
  b.rules[0].mark = {1, 1};
  b.profiles[0].filesystem.overlay_bytes = 1;  // root: host: no overlay
  b.profiles[0].network.allow = {"x:1"};       // mode none: no allow list
  b.profiles[0].docker.socket = "/x.sock";     // docker denied: no socket
  b.profiles[0].docker.proxy.buildkit = true;  // not a proxy
  CHECK(policy_digest(a) == policy_digest(b));
}

TEST_CASE("lint: a clean policy has no warnings") {
  auto w = warnings(clean());
  for (const auto* d : w) INFO(d->message);
  CHECK(w.empty());
}

TEST_CASE("lint: each dangerous grant is warned at its profile") {
  using Edit = std::function<void(Profile&)>;
  const std::vector<std::pair<std::string, Edit>> cases = {
      {"root on the host", [](Profile& p) { p.docker.mode = DockerMode::Direct; }},
      {"network: host", [](Profile& p) { p.network.mode = NetworkMode::Host; }},
      {"`*:*` reaches every address",
       [](Profile& p) {
         p.network.mode = NetworkMode::Egress;
         p.network.allow = {"example.com:443", "*:*"};
       }},
      {"`0.0.0.0/0:443` reaches every address",
       [](Profile& p) {
         p.network.mode = NetworkMode::Egress;
         p.network.allow = {"0.0.0.0/0:443"};
       }},
      {"read_write `/srv/cache`", [](Profile& p) { p.filesystem.read_write = {"/srv/cache"}; }},
      {"read_write `/srv/b`", [](Profile& p) { p.filesystem.read_write = {"/srv/a", "/srv/b"}; }},
      {"seccomp.allow `ptrace`", [](Profile& p) { p.seccomp.allow = {"ptrace"}; }},
      {"seccomp.allow `bpf`", [](Profile& p) { p.seccomp.allow = {"io_setup", "bpf"}; }},
      {"memory: unlimited", [](Profile& p) { p.resources.memory_bytes = 0; }},
      {"cannot check their base images",
       [](Profile& p) {
         p.docker.mode = DockerMode::Proxy;
         p.docker.proxy.buildkit = true;
       }},
      {"root_in_namespace with network: host",
       [](Profile& p) {
         p.user.root_in_namespace = true;
         p.network.mode = NetworkMode::Host;
       }},
  };
  for (const auto& [what, edit] : cases) {
    Policy p = clean();
    edit(p.profiles[1]);
    CAPTURE(what);
    CHECK(warned(p, what, 10));
    CHECK(warned(p, "profile `trusted`", 10));
  }
  // Harmless neighbours of the dangerous ones stay quiet.
  Policy p = clean();
  p.profiles[1].network.mode = NetworkMode::Egress;
  p.profiles[1].network.allow = {"*.debian.org:*", "10.0.0.0/8:*"};
  p.profiles[1].seccomp.allow = {"io_setup"};
  p.profiles[1].user.root_in_namespace = true;
  p.profiles[1].docker.mode = DockerMode::Proxy;
  CHECK(warnings(p).empty());
}

TEST_CASE("lint: secrets reachable by fork pull requests") {
  Policy p = clean();
  p.profiles[1].secrets = {{"npm_token", SecretExposure::As::Env, "NPM_TOKEN", {12, 9}}};
  // Rule 1 needs trigger push: no fork PR reaches `trusted`.
  CHECK_FALSE(warned(p, "fork pull requests"));

  // No trigger condition: a fork PR of acme/* on main gets the secret.
  p.rules[0].match.trigger.clear();
  CHECK(warned(p, "rule 1 can select profile `trusted` for fork pull requests, which exposes secret `npm_token`", 20));

  // Listing fork_pull_request among others warns too.
  p.rules[0].match.trigger = {"push", "fork_pull_request"};
  CHECK(warned(p, "exposes secret `npm_token`", 20));

  // An earlier rule that catches every fork PR protects later rules...
  RuleMatch forks;
  forks.trigger = {"fork_pull_request"};
  p.rules[0].match.trigger.clear();
  p.rules.insert(p.rules.begin(), rule("default", 15, forks));
  CHECK_FALSE(warned(p, "fork pull requests"));
  // ...but not when it is narrowed by another condition.
  p.rules[0].match.project = {"acme/public"};
  CHECK(warned(p, "rule 2 can select profile `trusted`", 20));

  // The default rule with secrets: warned at the default rule.
  Policy q = clean();
  q.profiles[0].secrets = {{"k", SecretExposure::As::File, "k", {6, 9}}};
  CHECK(warned(q, "rule 2 can select profile `default`", 25));
}

TEST_CASE("lint: a profile no rule selects is unused (unless it is a base)") {
  Policy p = clean();
  p.profiles.push_back(named("spare", 40));
  CHECK(warned(p, "profile `spare` is unused", 40));
  p.profiles[1].extends = "spare";
  CHECK_FALSE(warned(p, "unused"));
}

TEST_CASE("diff: each kind of field moves in its direction") {
  const Policy base = everything();
  auto with = [&](const std::function<void(Profile&)>& edit, int index = 1) {
    Policy p = everything();
    edit(p.profiles[static_cast<size_t>(index)]);
    return p;
  };
  // Identical: everything unchanged, nothing else.
  for (const auto& l : diff(base, base)) CHECK(l.kind == Kind::Unchanged);
  CHECK(render_diff(diff(base, base)).find("0 widened, 0 narrowed, ") != std::string::npos);

  const auto W = Kind::Widened, N = Kind::Narrowed;
  struct Case {
    std::function<void(Profile&)> edit;
    std::string needle;
    Kind widened_way;
  };
  const std::vector<Case> cases = {
      {[](Profile& p) { p.user.root_in_namespace = true; }, "user.root_in_namespace: false -> true", W},
      {[](Profile& p) { p.user.name = "other"; }, "user.name: builder -> other (direction unknown", W},
      {[](Profile& p) { p.user.home = "/home/o"; }, "user.home", W},
      {[](Profile& p) { p.uid_pool.count = 256; }, "uid_pool.count: 128 -> 256", W},
      {[](Profile& p) { p.uid_pool.first = 3000000; }, "uid_pool.first", W},
      {[](Profile& p) { p.filesystem.overlay_bytes = 16ull << 30; }, "filesystem.overlay_size: 8 GiB -> 16 GiB", W},
      {[](Profile& p) { p.filesystem.tmp_bytes = 4ull << 30; }, "filesystem.tmp_size", W},
      {[](Profile& p) { p.filesystem.read_only.push_back("/opt/x"); }, "filesystem.read_only: added /opt/x", W},
      {[](Profile& p) { p.filesystem.read_write.push_back("/srv/x"); }, "filesystem.read_write: added /srv/x", W},
      {[](Profile& p) { p.filesystem.hidden.push_back("/srv/x"); }, "filesystem.hidden: added /srv/x", N},
      {[](Profile& p) { p.network.allow.push_back("a.com:1"); }, "network.allow: added a.com:1", W},
      {[](Profile& p) { p.network.mode = NetworkMode::Host; }, "network.mode: egress -> host", W},
      {[](Profile& p) { p.docker.mode = DockerMode::Direct; }, "docker.mode: proxy -> direct", W},
      {[](Profile& p) { p.docker.proxy.images.push_back("x/*"); }, "docker.proxy.images: added x/*", W},
      {[](Profile& p) { p.docker.proxy.ports.push_back("1"); }, "docker.proxy.ports: added 1", W},
      {[](Profile& p) { p.docker.proxy.buildkit = false; }, "docker.proxy.buildkit: true -> false", N},
      {[](Profile& p) { p.docker.socket = "/x.sock"; }, "docker.socket", W},
      {[](Profile& p) { p.docker.proxy.memory_bytes.reset(); }, "docker.proxy.memory: 2 GiB -> 16 GiB", W},
      {[](Profile& p) { p.resources.memory_bytes = 0; }, "resources.memory: 16 GiB -> unlimited", W},
      {[](Profile& p) { p.resources.cpus = 1.25; }, "resources.cpus: 1.5 -> 1.25", N},
      {[](Profile& p) { p.resources.max_run_time_s = 3600; }, "resources.max_run_time: 2h -> 1h", N},
      {[](Profile& p) { p.resources.pids = 4096; }, "resources.pids", W},
      {[](Profile& p) { p.seccomp.allow.push_back("bpf"); }, "seccomp.allow: added bpf", W},
      {[](Profile& p) { p.seccomp.deny.push_back("io_destroy"); }, "seccomp.deny: added io_destroy", N},
      {[](Profile& p) { p.environment.pass.push_back("X"); }, "environment.pass: added X", W},
      {[](Profile& p) { p.environment.deny.push_back("X"); }, "environment.deny: added X", N},
      {[](Profile& p) { p.environment.set[0].second = "C"; }, "environment.set: LANG: \"C.UTF-8\" -> \"C\"", W},
      {[](Profile& p) { p.environment.set.pop_back(); }, "environment.set: ODD removed", W},
      {[](Profile& p) { p.environment.set.push_back({"NEW", "1"}); }, "environment.set: NEW added", W},
      {[](Profile& p) { p.secrets.push_back({"s", SecretExposure::As::Env, "S", {}}); }, "secrets: s added", W},
      {[](Profile& p) { p.secrets[1].target = "x.key"; }, "secrets: release_key: as file release.key -> as file x.key", W},
  };
  for (const auto& c : cases) {
    const Policy changed = with(c.edit);
    expect_diff(base, changed, "profile `trusted`: " + c.needle, c.widened_way);
  }
  // The inverse edits go the other way (where a direction is known).
  auto reverse = [](Kind k) { return k == Kind::Widened ? Kind::Narrowed : Kind::Widened; };
  for (const auto& c : cases) {
    if (c.needle.find("direction unknown") != std::string::npos) continue;
    const Policy changed = with(c.edit);
    bool any_widened = false, any_narrowed = false;
    for (const auto& l : diff(changed, base)) {
      any_widened |= l.kind == Kind::Widened;
      any_narrowed |= l.kind == Kind::Narrowed;
    }
    CAPTURE(c.needle);
    const bool conservative = c.needle.find("environment.set") != std::string::npos ||
                              c.needle.find("user.") == 0 || c.needle.find("uid_pool.first") != std::string::npos ||
                              c.needle.find("docker.socket") != std::string::npos ||
                              c.needle.find("secrets: release_key") != std::string::npos;
    if (conservative) continue;
    if (reverse(c.widened_way) == Kind::Widened) CHECK(any_widened);
    else CHECK((any_narrowed && !any_widened));
  }

  // Profiles added and removed; root and docker mode orders.
  Policy fewer = everything();
  fewer.profiles.pop_back();
  fewer.rules.erase(fewer.rules.begin() + 1);
  expect_diff(base, fewer, "profile `rooty` removed", N);
  expect_diff(fewer, base, "profile `rooty` added", W);
  expect_diff(base, with([](Profile& p) { p.filesystem.root = RootFs::Overlay; }, 0), "filesystem.root: host -> overlay", W);
  expect_diff(base, with([](Profile& p) { p.docker.mode = DockerMode::Deny; }, 2), "docker.mode: direct -> deny", N);
  expect_diff(base, with([](Profile& p) { p.network.mode = NetworkMode::Egress; p.network.allow = {"a:1"}; }, 0),
              "network.mode: none -> egress", W);

  // Rules: any change widens, and says which rule.
  Policy r = everything();
  r.rules[0].match.branch = {"main", "dev"};
  expect_diff(base, r, "rule 1 changed", W);
  r = everything();
  std::swap(r.rules[0], r.rules[1]);
  expect_diff(base, r, "rule 2 changed", W);
  r = everything();
  r.rules.erase(r.rules.begin());
  expect_diff(base, r, "rule 3 removed", W);
  expect_diff(r, base, "rule 3 added", W);
  expect_diff(base, base, "rule 2: jobs with tag v* named deploy or release signed by key release-key run with profile `rooty`",
              Kind::Unchanged);
  // Top-level paths.
  r = everything();
  r.secrets_dir = "/srv/s2";
  expect_diff(base, r, "secrets_dir: /srv/secrets -> /srv/s2", W);
  r = everything();
  r.audit.log = "/srv/a2";
  expect_diff(base, r, "audit.log", W);
}

TEST_CASE("render_diff: widened first, then narrowed, then unchanged, then the counts") {
  const std::vector<DiffLine> lines = {{Kind::Unchanged, "u1"}, {Kind::Narrowed, "n1"}, {Kind::Widened, "w1"},
                                       {Kind::Unchanged, "u2"}, {Kind::Widened, "w2"}};
  CHECK(render_diff(lines) ==
        "+ WIDENED  w1\n+ WIDENED  w2\n- narrowed  n1\n  unchanged u1\n  unchanged u2\n2 widened, 1 narrowed, 2 unchanged\n");
}

TEST_CASE("explain: rules and every section, defaults spelled out") {
  const Policy p = clean();
  const std::string e = explain(p);
  CHECK(e.find("Rule 1 (line 20): jobs of project acme/* on branch main triggered by push run with profile `trusted`\n") !=
        std::string::npos);
  CHECK(e.find("Rule 2 (line 25): all other jobs run with profile `default`\n") != std::string::npos);
  for (const char* s : {"Profile `default` (line 4):\n", "  Runs as: user circleci (uid 3434, gid 3434)",
                        "one unprivileged uid from 1900000-1900063 (a pool of 64 uids)",
                        "  Files: root: host", "extra host paths read-only: none", "host paths read-write: none",
                        "  Network: none — only its own loopback\n", "  Docker: deny — no Docker socket of any kind\n",
                        "  Secrets: none\n", "set (win over the job's): none",
                        "  System calls: the built-in seccomp allowlist, unchanged\n",
                        "  Limits: memory 4 GiB, 1024 processes, 2 CPUs, 4096 open files, files up to 16 GiB\n",
                        "the job runs at most 3h; a step is stopped after 10m without output\n",
                        "  Limits: memory 8 GiB"})
    CHECK_MESSAGE(e.find(s) != std::string::npos, s);

  const Policy q = everything();
  const std::string t = explain_profile(q.profiles[1], q);
  for (const char* s : {"Network: egress — only to registry.npmjs.org:443, *.debian.org:80",
                        "Docker: proxy", "images: docker.io/library/*", "BuildKit: yes",
                        "per container: memory 2 GiB, pids 256", "npm_token as environment variable NPM_TOKEN",
                        "release_key as file /run/secrets/release.key", "plus: ptrace", "minus: io_setup",
                        "ODD=\"a \\\"quoted\\\" \\\\back\\\\slash\\nnew line\\ttab \\x1b[0m",
                        "1.5 CPUs", "root: overlay", "host paths read-write: /srv/cache (changes stay"})
    CHECK_MESSAGE(t.find(s) != std::string::npos, s);
  const std::string r = explain_profile(q.profiles[2], q);
  CHECK(r.find("Runs as: root (uid 0, gid 0) inside the job's own user namespace") != std::string::npos);
  CHECK(r.find("Docker: direct — the host's Docker socket /var/run/docker.sock: root on the host") != std::string::npos);
  CHECK(r.find("memory unlimited") != std::string::npos);
  CHECK(r.find("0.1 CPUs") != std::string::npos);
  // Output has no raw control characters whatever the policy holds.
  for (char ch : t) CHECK((static_cast<unsigned char>(ch) >= 0x20 || ch == '\n'));
  // Deterministic, and --profile gives that profile only.
  CHECK(explain(q) == explain(everything()));
  const std::string only = "rooty";
  CHECK(explain(q, &only) == r);
  Policy implicit = clean();
  implicit.rules = {rule("default", 0)};
  implicit.rules_written = false;
  CHECK(explain(implicit).find("Rule 1 (implicit: the file has no `rules:`): all jobs run with profile `default`") !=
        std::string::npos);
}

// The policy parser and the size/duration units it uses. An operator reads
// policy.yaml to know what jobs may do: every dangerous or malformed value is
// an error at its line:col, and what the file leaves out is the built-in
// profile, exactly.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "policy/profile.hpp"

using gh::policy::parse_duration_seconds;
using gh::policy::parse_policy_text;
using gh::policy::parse_size;
using gh::policy::PolicyOutcome;

namespace {

PolicyOutcome parse(const std::string& text, const std::string& profile = "default") {
  return parse_policy_text("policy.yaml", text, profile);
}

bool has_error(const PolicyOutcome& o, int line, int col, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.mark.line == line && d.mark.column == col &&
        d.message.find(what) != std::string::npos)
      return true;
  return false;
}

bool has_error(const PolicyOutcome& o, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.message.find(what) != std::string::npos) return true;
  return false;
}

// `body` is indented under `profiles: default:` (4 spaces), starting on line 4.
std::string profile(const std::string& body) { return "version: 1\nprofiles:\n  default:\n" + body; }

void refused_at(const std::string& text, int line, int col, const std::string& what) {
  auto o = parse(text);
  CAPTURE(text);
  INFO(o.diagnostics.render());
  CHECK_FALSE(o.profile);
  CHECK(has_error(o, line, col, what));
}

}  // namespace

TEST_CASE("parse_size: digits with K/M/G/T (powers of 1024), overflow refused") {
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("1024") == 1024u);
  CHECK(parse_size("64K") == 64u << 10);
  CHECK(parse_size("64k") == 64u << 10);
  CHECK(parse_size("512M") == 512ull << 20);
  CHECK(parse_size("2G") == 2ull << 30);
  CHECK(parse_size("2g") == 2ull << 30);
  CHECK(parse_size("3T") == 3ull << 40);
  CHECK(parse_size("4Gi") == 4ull << 30);
  CHECK(parse_size("16777215T") == 16777215ull << 40);
  CHECK(parse_size("18446744073709551615") == 18446744073709551615ull);
  for (const char* bad : {"", "G", "1.5G", "-1", "+1", " 1", "1 ", "1GB", "1MB", "1B", "1P", "1Gii", "0x10",
                          "16777216T", "18446744073709551616", "99999999999999999999999", "1e9"}) {
    const std::string shown = bad;
    CAPTURE(shown);
    CHECK_FALSE(parse_size(bad).has_value());
  }
}

TEST_CASE("parse_duration_seconds: digits are seconds; d, h, m, s in order") {
  CHECK(parse_duration_seconds("0") == 0u);
  CHECK(parse_duration_seconds("45") == 45u);
  CHECK(parse_duration_seconds("30s") == 30u);
  CHECK(parse_duration_seconds("10m") == 600u);
  CHECK(parse_duration_seconds("1h") == 3600u);
  CHECK(parse_duration_seconds("1h30m") == 5400u);
  CHECK(parse_duration_seconds("1H30M") == 5400u);
  CHECK(parse_duration_seconds("2d") == 172800u);
  CHECK(parse_duration_seconds("1d2h3m4s") == 93784u);
  CHECK(parse_duration_seconds("90m") == 5400u);
  for (const char* bad : {"", "m", "1.5h", "30m1h", "1h1h", "1x", "-1s", "1 h", "1h ", "h1", "1hm",
                          "18446744073709551616", "213503982334602d", "99999999999999999999s"}) {
    const std::string shown = bad;
    CAPTURE(shown);
    CHECK_FALSE(parse_duration_seconds(bad).has_value());
  }
}

TEST_CASE("the built-in profile is the restrictive default") {
  auto p = gh::policy::builtin_profile();
  CHECK(p.name == "builtin");
  CHECK(p.user.name == "circleci");
  CHECK(p.user.home == "/home/circleci");
  CHECK(p.filesystem.read_write.empty());
  CHECK(p.environment.pass.empty());
  CHECK(p.resources.no_output_timeout_s == 600);
}

TEST_CASE("a full policy parses; left-out fields come from the built-in profile") {
  const std::string text = R"(version: 1
profiles:
  default:
    user: {name: builder, uid: 2000, gid: 2001, home: /home/builder}
    uid_pool: {first: 2000000, count: 128}
    filesystem:
      read_only: [/opt/toolchains, /srv/mirror]
      read_write: [/srv/cache]
      hidden: [/home/secrets]
      tmp_size: 2G
      home_size: 512M
    resources:
      memory: 8G
      pids: 2048
      cpus: 1.5
      max_run_time: 2h
      no_output_timeout: 15m
      open_files: 8192
      file_size: 1T
    environment:
      set: {LANG: C.UTF-8, CI: true}
      pass: [HTTP_PROXY]
    network: none
    docker: deny
  small:
    resources: {memory: 512M}
  empty:
)";
  auto o = parse(text);
  INFO(o.diagnostics.render());
  REQUIRE(o.profile);
  CHECK(o.profiles == std::vector<std::string>{"default", "small", "empty"});
  const auto& p = *o.profile;
  CHECK(p.name == "default");
  CHECK(p.user.name == "builder");
  CHECK(p.user.uid == 2000);
  CHECK(p.user.gid == 2001);
  CHECK(p.user.home == "/home/builder");
  CHECK(p.uid_pool.first == 2000000);
  CHECK(p.uid_pool.count == 128);
  CHECK(p.filesystem.read_only == std::vector<std::string>{"/opt/toolchains", "/srv/mirror"});
  CHECK(p.filesystem.read_write == std::vector<std::string>{"/srv/cache"});
  CHECK(p.filesystem.hidden == std::vector<std::string>{"/home/secrets"});
  CHECK(p.filesystem.tmp_bytes == 2ull << 30);
  CHECK(p.filesystem.home_bytes == 512ull << 20);
  CHECK(p.resources.memory_bytes == 8ull << 30);
  CHECK(p.resources.pids == 2048);
  CHECK(p.resources.cpus == doctest::Approx(1.5));
  CHECK(p.resources.max_run_time_s == 7200);
  CHECK(p.resources.no_output_timeout_s == 900);
  CHECK(p.resources.open_files == 8192);
  CHECK(p.resources.file_size_bytes == 1ull << 40);
  const std::vector<std::pair<std::string, std::string>> set{{"LANG", "C.UTF-8"}, {"CI", "true"}};
  CHECK(p.environment.set == set);
  CHECK(p.environment.pass == std::vector<std::string>{"HTTP_PROXY"});

  auto small = parse(text, "small");
  REQUIRE(small.profile);
  const auto b = gh::policy::builtin_profile();
  CHECK(small.profile->name == "small");
  CHECK(small.profile->resources.memory_bytes == 512ull << 20);
  CHECK(small.profile->resources.pids == b.resources.pids);
  CHECK(small.profile->user.name == b.user.name);
  CHECK(small.profile->uid_pool.first == b.uid_pool.first);
  auto empty = parse(text, "empty");
  REQUIRE(empty.profile);
  CHECK(empty.profile->resources.memory_bytes == b.resources.memory_bytes);
  // The caller's "" means the default profile.
  CHECK(parse(text, "").profile->name == "default");
}

TEST_CASE("the chosen profile must exist; the error names those defined") {
  auto o = parse("version: 1\nprofiles:\n  ci: {}\n  release: {}\n", "default");
  CHECK_FALSE(o.profile);
  CHECK(o.profiles == std::vector<std::string>{"ci", "release"});
  CHECK(has_error(o, 2, 1, "there is no profile `default`"));
  CHECK(o.diagnostics.render().find("one of: ci, release") != std::string::npos);
  CHECK(parse("version: 1\nprofiles:\n  ci: {}\n  release: {}\n", "release").profile);
  refused_at("version: 1\n", 1, 1, "no `profiles:`");
  refused_at("version: 1\nprofiles: {}\n", 2, 1, "there is no profile `default`");
  refused_at("version: 1\nprofiles:\n  bad name: {}\n  default: {}\n", 3, 3, "profile name `bad name` is not valid");
  // An error in a profile not chosen still fails the file: `policy check` must see it.
  refused_at("version: 1\nprofiles:\n  default: {}\n  other:\n    resources: {pids: lots}\n", 5, 23, "must be a whole number");
}

TEST_CASE("version and top-level keys") {
  refused_at("profiles: {default: {}}\n", 1, 1, "no `version:`");
  refused_at("version: 2\nprofiles: {default: {}}\n", 1, 10, "policy version `2` is not supported");
  refused_at("version: 1\nprofiles: {default: {}}\nrules: []\n", 3, 1, "`rules` is not in this build yet");
  refused_at("version: 1\nprofiles: {default: {}}\nsecrets: {}\n", 3, 1, "`secrets` is not in this build yet");
  refused_at("version: 1\nprofiles: {default: {}}\nprofile: {}\n", 3, 1, "unknown key `profile` at the top level");
  refused_at("- 1\n", 1, 1, "the top level of a policy file must be a mapping");
}

TEST_CASE("unknown keys in a profile are errors with the allowed keys") {
  auto o = parse(profile("    resources:\n      memroy: 1G\n"));
  CHECK_FALSE(o.profile);
  CHECK(has_error(o, 5, 7, "unknown key `memroy` in `resources`"));
  CHECK(o.diagnostics.render().find(
            "policy.yaml:5:7: error: unknown key `memroy` in `resources`\n        memroy: 1G\n        ^\n  allowed here: "
            "memory, pids, cpus, max_run_time, no_output_timeout, open_files, file_size\n") != std::string::npos);
  refused_at(profile("    colour: red\n"), 4, 5, "unknown key `colour` in profile `default`");
  refused_at(profile("    user: {nmae: x}\n"), 4, 12, "unknown key `nmae` in `user`");
  refused_at(profile("    uid_pool: {start: 5000}\n"), 4, 16, "unknown key `start` in `uid_pool`");
  refused_at(profile("    filesystem: {writable: []}\n"), 4, 18, "unknown key `writable` in `filesystem`");
  refused_at(profile("    environment: {add: {}}\n"), 4, 19, "unknown key `add` in `environment`");
  refused_at(profile("    secrets: []\n"), 4, 5, "`secrets` in a profile is not in this build yet");
  refused_at(profile("    seccomp: {}\n"), 4, 5, "`seccomp` in a profile is not in this build yet");
}

TEST_CASE("network and docker: only the secure defaults this build enforces") {
  CHECK(parse(profile("    network: none\n    docker: deny\n")).profile);
  refused_at(profile("    network: host\n"), 4, 14, "needs network enforcement that this build does not have");
  refused_at(profile("    network: allowlist\n"), 4, 14, "needs network enforcement that this build does not have");
  refused_at(profile("    docker: direct\n"), 4, 13, "needs the docker proxy and network enforcement");
  refused_at(profile("    network: [a]\n"), 4, 14, "`network` must be a string");
}

TEST_CASE("the job user") {
  refused_at(profile("    user: {name: Builder}\n"), 4, 18, "user name `Builder` is not allowed");
  refused_at(profile("    user: {name: root}\n"), 4, 18, "is not allowed");
  refused_at(profile("    user: {name: " + std::string(33, 'a') + "}\n"), 4, 18, "is not allowed");
  refused_at(profile("    user: {name: 1abc}\n"), 4, 18, "is not allowed");
  CHECK(parse(profile("    user: {name: _ci-runner9}\n")).profile);
  refused_at(profile("    user: {uid: 0}\n"), 4, 17, "from 1 to 65533");
  refused_at(profile("    user: {gid: 65534}\n"), 4, 17, "from 1 to 65533");
  refused_at(profile("    user: {uid: -5}\n"), 4, 17, "must be a whole number");
  refused_at(profile("    user: {home: home/ci}\n"), 4, 18, "is not an absolute path");
  refused_at(profile("    user: {home: /home/../etc}\n"), 4, 18, "has a `..` component");
  refused_at(profile("    user: {home: /etc/ci}\n"), 4, 18, "would be mounted over /etc");
  refused_at(profile("    user: [circleci]\n"), 4, 11, "`user` must be a mapping");
}

TEST_CASE("the uid pool stays clear of root and the host's system users") {
  refused_at(profile("    uid_pool: {first: 0, count: 10}\n"), 4, 23, "includes uid 0");
  refused_at(profile("    uid_pool: {first: 999, count: 10}\n"), 4, 23, "among the host's system users");
  refused_at(profile("    uid_pool: {first: 4294967290, count: 10}\n"), 4, 23, "runs past uid 4294967294");
  refused_at(profile("    uid_pool: {first: 4294967296}\n"), 4, 23, "from 0 to 4294967295");
  refused_at(profile("    uid_pool: {first: 100000, count: 0}\n"), 4, 38, "from 1 to 65536");
  refused_at(profile("    uid_pool: {first: 100000, count: 65537}\n"), 4, 38, "from 1 to 65536");
  auto ok = parse(profile("    uid_pool: {first: 4294901759, count: 65536}\n"));
  INFO(ok.diagnostics.render());
  REQUIRE(ok.profile);
  CHECK(ok.profile->uid_pool.count == 65536);
  auto keep = parse(profile("    uid_pool: {count: 8}\n"));
  REQUIRE(keep.profile);
  CHECK(keep.profile->uid_pool.first == gh::policy::UidPool{}.first);
}

TEST_CASE("filesystem paths: absolute, normal, and never a writable system directory") {
  refused_at(profile("    filesystem: {read_only: [opt/x]}\n"), 4, 30, "is not an absolute path");
  refused_at(profile("    filesystem: {read_only: [/opt//x]}\n"), 4, 30, "empty component");
  refused_at(profile("    filesystem: {read_only: [/opt/./x]}\n"), 4, 30, "`.` component");
  refused_at(profile("    filesystem: {read_only: [/opt/x/]}\n"), 4, 30, "ends in `/`");
  refused_at(profile("    filesystem: {read_only: [/opt/x, /opt/x]}\n"), 4, 38, "listed twice");
  refused_at(profile("    filesystem: {read_only: /opt/x}\n"), 4, 29, "`read_only` must be a list");
  CHECK(parse(profile("    filesystem: {read_only: [/, /etc]}\n")).profile);
  for (const char* p : {"/", "/etc", "/etc/ssh", "/usr", "/usr/local", "/bin", "/lib", "/boot", "/proc", "/sys",
                        "/dev", "/root", "/var", "/var/lib", "/var/lib/gatehouse", "/var/lib/gatehouse/x",
                        "/etc/gatehouse", "/run", "/var/run"}) {
    const std::string shown = p;
    CAPTURE(shown);
    auto o = parse(profile("    filesystem: {read_write: [" + std::string(p) + "]}\n"));
    CHECK_FALSE(o.profile);
    CHECK(has_error(o, 4, 31, "`read_write` of " + std::string(p)));
  }
  CHECK(parse(profile("    filesystem: {read_write: [/srv/cache, /var/cache/ci, /home/shared]}\n")).profile);
  refused_at(profile("    filesystem: {hidden: [/]}\n"), 4, 27, "cannot hide the whole file system");
  refused_at(profile("    filesystem: {tmp_size: 2GB}\n"), 4, 28, "`tmp_size` `2GB` is not a size");
  refused_at(profile("    filesystem: {home_size: 100K}\n"), 4, 29, "`home_size` 100K is out of range");
  std::string many = "    filesystem:\n      read_only:\n";
  for (int i = 0; i < 257; ++i) many += "        - /opt/p" + std::to_string(i) + "\n";
  refused_at(profile(many), 5, 7, "more than 256 paths");
}

TEST_CASE("resources have sane bounds") {
  refused_at(profile("    resources: {memory: 1M}\n"), 4, 25, "`memory` 1M is out of range");
  refused_at(profile("    resources: {memory: lots}\n"), 4, 25, "is not a size");
  refused_at(profile("    resources: {memory: [1G]}\n"), 4, 25, "`memory` must be a string");
  refused_at(profile("    resources: {pids: 1}\n"), 4, 23, "from 16 to 4194304");
  refused_at(profile("    resources: {cpus: 0}\n"), 4, 23, "must be from 0.01 to 1024");
  refused_at(profile("    resources: {cpus: -1}\n"), 4, 23, "must be a number");
  refused_at(profile("    resources: {cpus: 1e3}\n"), 4, 23, "must be a number");
  refused_at(profile("    resources: {cpus: .5}\n"), 4, 23, "must be a number");
  refused_at(profile("    resources: {cpus: nan}\n"), 4, 23, "must be a number");
  CHECK(parse(profile("    resources: {cpus: 0.25}\n")).profile->resources.cpus == doctest::Approx(0.25));
  refused_at(profile("    resources: {max_run_time: 0s}\n"), 4, 31, "out of range");
  refused_at(profile("    resources: {max_run_time: 8d}\n"), 4, 31, "out of range");
  refused_at(profile("    resources: {no_output_timeout: forever}\n"), 4, 36, "is not a duration");
  refused_at(profile("    resources: {open_files: 10}\n"), 4, 29, "from 64 to 1048576");
  refused_at(profile("    resources: {file_size: 0}\n"), 4, 28, "out of range");
  CHECK(parse(profile("    resources: {memory: 1073741824, max_run_time: 3600}\n")).profile->resources.memory_bytes ==
        1ull << 30);
}

TEST_CASE("environment: set and pass") {
  refused_at(profile("    environment: {set: {BAD-NAME: x}}\n"), 4, 25, "environment variable name `BAD-NAME` is not valid");
  refused_at(profile("    environment: {set: {A: }}\n"), 4, 25, "environment variable `A` must be a string");
  refused_at(profile("    environment: {set: [A]}\n"), 4, 24, "`set` must be a mapping");
  refused_at(profile("    environment: {pass: [GATEHOUSE_TOKEN]}\n"), 4, 26, "hand the agent's own settings");
  refused_at(profile("    environment: {pass: [\"A B\"]}\n"), 4, 26, "is not valid");
  refused_at(profile("    environment: {pass: HOME}\n"), 4, 25, "`pass` must be a list");
  refused_at(profile("    environment: {set: {A: \"x\\0y\"}}\n"), 4, 28, "NUL");
}

TEST_CASE("the policy file gets the same YAML guard as job files") {
  refused_at("version: 1\nprofiles:\n\tdefault: {}\n", 3, 1, "tab character used for indentation");
  refused_at(profile("    resources: {pids: 64}\n    resources: {pids: 4194304}\n"), 5, 5, "duplicate key `resources`");
  refused_at("version: 1\nprofiles: {default: {}}\nversion: 1\n", 3, 1, "duplicate key `version`");
  std::string bomb = "version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 8; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  bomb += "profiles: {default: {}}\n";
  auto o = parse(bomb);
  CHECK_FALSE(o.profile);
  CHECK(has_error(o, "alias bomb"));
  std::string nul = profile("    network: none\n");
  nul[nul.find("none")] = '\0';
  refused_at(nul, 4, 14, "NUL byte");
  auto big = parse(profile("    network: none\n") + "#" + std::string(gh::policy::kMaxPolicyFileBytes, ' ') + "\n");
  CHECK_FALSE(big.profile);
  CHECK(has_error(big, 0, 0, "more than the limit"));
  auto broken = parse("version: 1\nprofiles: {default: {resources: {pids: 64}\n");
  CHECK_FALSE(broken.profile);
  REQUIRE(broken.diagnostics.has_errors());
  CHECK(broken.diagnostics.all().front().message.find("YAML syntax error") == 0);
  CHECK(broken.diagnostics.all().front().mark.line > 0);
  // Merge keys work in policies too.
  auto merged = parse("version: 1\nbase: &base {resources: {pids: 64}}\nprofiles:\n  default:\n    <<: *base\n");
  CHECK_FALSE(merged.profile);  // `base` is not a policy key: no anchor holders here
  CHECK(has_error(merged, 2, 1, "unknown key `base`"));
  auto inline_merge = parse("version: 1\nprofiles:\n  ci: &ci {resources: {pids: 64}}\n  default:\n    <<: *ci\n    user: {uid: 42}\n");
  INFO(inline_merge.diagnostics.render());
  REQUIRE(inline_merge.profile);
  CHECK(inline_merge.profile->resources.pids == 64);
  CHECK(inline_merge.profile->user.uid == 42);
}

TEST_CASE("reading a policy file from disk") {
  auto missing = gh::policy::parse_policy_file("/nonexistent/policy.yaml", "default");
  CHECK_FALSE(missing.profile);
  CHECK(has_error(missing, "cannot open the policy file /nonexistent/policy.yaml"));
  char tmpl[] = "/tmp/gh-test-policy-XXXXXX";
  const int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream f(tmpl);
    f << "version: 1\nprofiles:\n  default:\n    resources: {pids: 100}\n";
  }
  auto ok = gh::policy::parse_policy_file(tmpl, "default");
  INFO(ok.diagnostics.render());
  REQUIRE(ok.profile);
  CHECK(ok.profile->resources.pids == 100);
  CHECK(ok.diagnostics.file() == tmpl);
  std::remove(tmpl);
}

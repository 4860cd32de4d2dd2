// The policy parser, rule selection and the size/duration units. An
// operator reads policy.yaml to know what jobs may do: every dangerous or
// malformed value is an error at its line:col, every error of a file is
// reported in one run, and what the file leaves out is the built-in
// profile, exactly.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/unit/policy_test_util.hpp"

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

TEST_CASE("the built-in profile and policy are the restrictive default") {
  auto p = gh::policy::builtin_profile();
  CHECK(p.name == "builtin");
  CHECK(p.user.name == "circleci");
  CHECK(p.user.home == "/home/circleci");
  CHECK_FALSE(p.user.root_in_namespace);
  CHECK(p.filesystem.root == RootFs::Host);
  CHECK(p.filesystem.read_write.empty());
  CHECK(p.network.mode == NetworkMode::None);
  CHECK(p.docker.mode == DockerMode::Deny);
  CHECK(p.environment.pass.empty());
  CHECK(p.secrets.empty());
  CHECK(p.resources.no_output_timeout_s == 600);
  auto pol = gh::policy::builtin_policy();
  REQUIRE(pol.profiles.size() == 1);
  CHECK(pol.profiles[0].name == "default");
  same_settings(pol.profiles[0], p);
  REQUIRE(pol.rules.size() == 1);
  CHECK(pol.rules[0].match.empty());
  CHECK(pol.rules[0].profile == "default");
  CHECK_FALSE(pol.rules_written);
  CHECK(pol.secrets_dir == gh::policy::kDefaultSecretsDir);
  CHECK(pol.audit.log == gh::policy::kDefaultAuditLog);
  CHECK(gh::policy::select_profile(pol, JobMeta{}).profile == &pol.profiles[0]);
}

TEST_CASE("a profile that writes nothing is the built-in profile, field by field") {
  auto pol = accepted("version: 1\nprofiles:\n  default:\n  other: {}\n");
  same_settings(named(pol, "default"), gh::policy::builtin_profile());
  same_settings(named(pol, "other"), gh::policy::builtin_profile());
  CHECK(named(pol, "other").name == "other");
  CHECK(named(pol, "other").extends.empty());
  CHECK(named(pol, "other").mark.line == 4);
  CHECK_FALSE(pol.rules_written);
  REQUIRE(pol.rules.size() == 1);
  CHECK(pol.rules[0].profile == "default");
}

TEST_CASE("every field parses") {
  const std::string text = R"(version: 1
secrets_dir: /srv/gatehouse/secrets
audit: {log: /srv/audit/gatehouse.jsonl}
profiles:
  default:
    user: {name: builder, uid: 2000, gid: 2001, home: /home/builder}
    uid_pool: {first: 2000000, count: 128}
    filesystem:
      root: overlay
      overlay_size: 8G
      read_only: [/opt/toolchains, /srv/mirror]
      read_write: [/srv/cache]
      hidden: [/home/secrets]
      tmp_size: 2G
      home_size: 512M
    network:
      mode: egress
      allow: ["registry.npmjs.org:443", "*.debian.org:80", "10.0.0.0/8:*", "[::1]:8080", "[fd00::]/8:8000-8100", "192.168.1.2:22"]
    docker:
      mode: proxy
      socket: /srv/docker.sock
      proxy:
        images: ["docker.io/library/*", "registry.local/**"]
        push: ["registry.local/team/**"]
        bind_paths: [/home/builder/project]
        ports: ["8080", 9000-9010]
        buildkit: true
        memory: 2G
        pids: 256
    resources:
      memory: 8G
      pids: 2048
      cpus: 1.5
      max_run_time: 2h
      no_output_timeout: 15m
      open_files: 8192
      file_size: 1T
    seccomp: {allow: [ptrace, perf_event_open], deny: [io_setup]}
    environment:
      set: {LANG: C.UTF-8, CI: true}
      pass: [HTTP_PROXY]
      deny: [AWS_SECRET_ACCESS_KEY]
    secrets:
      - {name: npm_token, env: NPM_TOKEN}
      - {name: release.key, file: release.key}
  root:
    user: {root_in_namespace: true, home: /home/root}
    network: host
    docker: {mode: direct, acknowledge: root-equivalent}
    resources: {memory: unlimited}
)";
  auto pol = accepted(text);
  CHECK(pol.secrets_dir == "/srv/gatehouse/secrets");
  CHECK(pol.audit.log == "/srv/audit/gatehouse.jsonl");
  const auto& p = named(pol, "default");
  CHECK(p.user.name == "builder");
  CHECK(p.user.uid == 2000);
  CHECK(p.user.gid == 2001);
  CHECK(p.user.home == "/home/builder");
  CHECK_FALSE(p.user.root_in_namespace);
  CHECK(p.uid_pool.first == 2000000);
  CHECK(p.uid_pool.count == 128);
  CHECK(p.filesystem.root == RootFs::Overlay);
  CHECK(p.filesystem.overlay_bytes == 8ull << 30);
  CHECK(p.filesystem.read_only == Strings{"/opt/toolchains", "/srv/mirror"});
  CHECK(p.filesystem.read_write == Strings{"/srv/cache"});
  CHECK(p.filesystem.hidden == Strings{"/home/secrets"});
  CHECK(p.filesystem.tmp_bytes == 2ull << 30);
  CHECK(p.filesystem.home_bytes == 512ull << 20);
  CHECK(p.network.mode == NetworkMode::Egress);
  CHECK(p.network.allow == Strings{"registry.npmjs.org:443", "*.debian.org:80", "10.0.0.0/8:*", "[::1]:8080",
                                   "[fd00::]/8:8000-8100", "192.168.1.2:22"});
  CHECK(p.docker.mode == DockerMode::Proxy);
  CHECK_FALSE(p.docker.acknowledged_root_equivalent);
  CHECK(p.docker.socket == "/srv/docker.sock");
  CHECK(p.docker.proxy.images == Strings{"docker.io/library/*", "registry.local/**"});
  CHECK(p.docker.proxy.push == Strings{"registry.local/team/**"});
  CHECK(p.docker.proxy.bind_paths == Strings{"/home/builder/project"});
  CHECK(p.docker.proxy.ports == Strings{"8080", "9000-9010"});
  CHECK(p.docker.proxy.buildkit);
  CHECK(p.docker.proxy.memory_bytes == 2ull << 30);
  CHECK(p.docker.proxy.pids == 256u);
  CHECK(p.resources.memory_bytes == 8ull << 30);
  CHECK(p.resources.pids == 2048);
  CHECK(p.resources.cpus == doctest::Approx(1.5));
  CHECK(p.resources.max_run_time_s == 7200);
  CHECK(p.resources.no_output_timeout_s == 900);
  CHECK(p.resources.open_files == 8192);
  CHECK(p.resources.file_size_bytes == 1ull << 40);
  CHECK(p.seccomp.allow == Strings{"ptrace", "perf_event_open"});
  CHECK(p.seccomp.deny == Strings{"io_setup"});
  const std::vector<std::pair<std::string, std::string>> set{{"LANG", "C.UTF-8"}, {"CI", "true"}};
  CHECK(p.environment.set == set);
  CHECK(p.environment.pass == Strings{"HTTP_PROXY"});
  CHECK(p.environment.deny == Strings{"AWS_SECRET_ACCESS_KEY"});
  REQUIRE(p.secrets.size() == 2);
  CHECK(p.secrets[0].name == "npm_token");
  CHECK(p.secrets[0].as == SecretExposure::As::Env);
  CHECK(p.secrets[0].target == "NPM_TOKEN");
  CHECK(p.secrets[0].mark.line == 44);
  CHECK(p.secrets[1].name == "release.key");
  CHECK(p.secrets[1].as == SecretExposure::As::File);
  CHECK(p.secrets[1].target == "release.key");
  const auto& r = named(pol, "root");
  CHECK(r.user.root_in_namespace);
  CHECK(r.user.uid == 0);
  CHECK(r.user.gid == 0);
  CHECK(r.user.name == "root");
  CHECK(r.user.home == "/home/root");
  CHECK(r.network.mode == NetworkMode::Host);
  CHECK(r.network.allow.empty());
  CHECK(r.docker.mode == DockerMode::Direct);
  CHECK(r.docker.acknowledged_root_equivalent);
  CHECK(r.docker.socket == "/var/run/docker.sock");
  CHECK(r.resources.memory_bytes == 0);
  CHECK(accepted(profile("    network: {mode: none}\n    docker: {mode: deny}\n")).profiles[0].network.mode ==
        NetworkMode::None);
}

TEST_CASE("version and top-level keys") {
  refused_at("profiles: {default: {}}\n", 1, 1, "no `version:`");
  refused_at("version: 2\nprofiles: {default: {}}\n", 1, 10, "policy version `2` is not supported");
  refused_at("version: 1\n", 1, 1, "no `profiles:`");
  refused_at("version: 1\nprofiles: {}\n", 2, 1, "`profiles` defines no profile");
  refused_at("version: 1\nprofiles: {default: {}}\nsecrets: {}\n", 3, 1, "unknown key `secrets` at the top level");
  refused_at("version: 1\nprofiles: {default: {}}\nprofile: {}\n", 3, 1, "unknown key `profile` at the top level");
  refused_at("- 1\n", 1, 1, "the top level of a policy file must be a mapping");
  refused_at("version: 1\nsecrets_dir: etc/secrets\nprofiles: {default: {}}\n", 2, 14, "is not an absolute path");
  refused_at("version: 1\naudit: {log: /var/log/../x}\nprofiles: {default: {}}\n", 2, 14, "has a `..` component");
  refused_at("version: 1\naudit: {file: /x}\nprofiles: {default: {}}\n", 2, 9, "unknown key `file` in `audit`");
  refused_at("version: 1\nprofiles:\n  bad name: {}\n  default: {}\n", 3, 3, "profile name `bad name` is not valid");
  refused_at("version: 1\nprofiles:\n  default: [x]\n", 3, 12, "profile `default` must be a mapping");
}

TEST_CASE("without rules every job gets `default`, which must exist") {
  refused_at("version: 1\nprofiles:\n  ci: {}\n  release: {}\n", 2, 1, "there is no profile `default`");
  auto o = parse("version: 1\nprofiles:\n  ci: {}\n");
  CHECK(o.diagnostics.render().find("no `rules:`") != std::string::npos);
  // An error in a profile no rule picks still fails the file: `policy check` must see it.
  refused_at("version: 1\nprofiles:\n  default: {}\n  other:\n    resources: {pids: lots}\n", 5, 23,
             "must be a whole number");
}

TEST_CASE("unknown keys in a profile are errors with the allowed keys") {
  auto o = parse(profile("    resources:\n      memroy: 1G\n"));
  CHECK_FALSE(o.policy);
  CHECK(has_error(o, 5, 7, "unknown key `memroy` in `resources`"));
  CHECK(o.diagnostics.render().find(
            "policy.yaml:5:7: error: unknown key `memroy` in `resources`\n        memroy: 1G\n        ^\n  allowed here: "
            "memory, pids, cpus, max_run_time, no_output_timeout, open_files, file_size\n") != std::string::npos);
  refused_at(profile("    colour: red\n"), 4, 5, "unknown key `colour` in profile `default`");
  refused_at(profile("    user: {nmae: x}\n"), 4, 12, "unknown key `nmae` in `user`");
  refused_at(profile("    uid_pool: {start: 5000}\n"), 4, 16, "unknown key `start` in `uid_pool`");
  refused_at(profile("    filesystem: {writable: []}\n"), 4, 18, "unknown key `writable` in `filesystem`");
  refused_at(profile("    environment: {add: {}}\n"), 4, 19, "unknown key `add` in `environment`");
  refused_at(profile("    network: {mode: none, ports: [1]}\n"), 4, 27, "unknown key `ports` in `network`");
  refused_at(profile("    docker: {mode: deny, sock: /x}\n"), 4, 26, "unknown key `sock` in `docker`");
  refused_at(profile("    docker: {mode: proxy, proxy: {image: [x]}}\n"), 4, 35, "unknown key `image` in `proxy`");
  refused_at(profile("    seccomp: {permit: [ptrace]}\n"), 4, 15, "unknown key `permit` in `seccomp`");
  refused_at(profile("    secrets: [{name: a, env: A, mode: x}]\n"), 4, 33, "unknown key `mode` in a secret");
}

TEST_CASE("the job user, and root in the namespace") {
  refused_at(profile("    user: {name: Builder}\n"), 4, 18, "user name `Builder` is not allowed");
  refused_at(profile("    user: {name: root}\n"), 4, 18, "is not allowed");
  refused_at(profile("    user: {name: " + std::string(33, 'a') + "}\n"), 4, 18, "is not allowed");
  refused_at(profile("    user: {name: 1abc}\n"), 4, 18, "is not allowed");
  CHECK(only("    user: {name: _ci-runner9}\n").user.name == "_ci-runner9");
  refused_at(profile("    user: {uid: 0}\n"), 4, 17, "from 1 to 65533");
  refused_at(profile("    user: {gid: 65534}\n"), 4, 17, "from 1 to 65533");
  refused_at(profile("    user: {uid: -5}\n"), 4, 17, "`uid` is negative (-5)");
  refused_at(profile("    user: {home: home/ci}\n"), 4, 18, "is not an absolute path");
  refused_at(profile("    user: {home: /home/../etc}\n"), 4, 18, "has a `..` component");
  refused_at(profile("    user: {home: /etc/ci}\n"), 4, 18, "would be mounted over /etc");
  refused_at(profile("    user: [circleci]\n"), 4, 11, "`user` must be a mapping");
  refused_at(profile("    user: {root_in_namespace: maybe}\n"), 4, 31, "must be true or false");
  // root_in_namespace: true is uid 0; naming another user in the same breath is a contradiction.
  refused_at(profile("    user: {root_in_namespace: true, uid: 1000}\n"), 4, 37, "`uid` cannot be set");
  refused_at(profile("    user: {name: ci, root_in_namespace: true}\n"), 4, 12, "`name` cannot be set");
  refused_at(profile("    user: {gid: 5, root_in_namespace: yes}\n"), 4, 12, "`gid` cannot be set");
  auto off = only("    user: {root_in_namespace: false, uid: 1000}\n");
  CHECK_FALSE(off.user.root_in_namespace);
  CHECK(off.user.uid == 1000);
}

TEST_CASE("the uid pool stays clear of root and the host's system users") {
  refused_at(profile("    uid_pool: {first: 0, count: 10}\n"), 4, 23, "includes uid 0");
  refused_at(profile("    uid_pool: {first: 999, count: 10}\n"), 4, 23, "among the host's system users");
  refused_at(profile("    uid_pool: {first: 4294967290, count: 10}\n"), 4, 23, "runs past uid 4294967294");
  refused_at(profile("    uid_pool: {first: 4294967296}\n"), 4, 23, "from 0 to 4294967295");
  refused_at(profile("    uid_pool: {first: 100000, count: 0}\n"), 4, 38, "from 1 to 65536");
  refused_at(profile("    uid_pool: {first: 100000, count: 65537}\n"), 4, 38, "from 1 to 65536");
  CHECK(only("    uid_pool: {first: 4294901759, count: 65536}\n").uid_pool.count == 65536);
  CHECK(only("    uid_pool: {count: 8}\n").uid_pool.first == gh::policy::UidPool{}.first);
}

TEST_CASE("filesystem paths: absolute, normal, and never a writable system directory") {
  refused_at(profile("    filesystem: {read_only: [opt/x]}\n"), 4, 30, "is not an absolute path");
  refused_at(profile("    filesystem: {read_only: [/opt//x]}\n"), 4, 30, "empty component");
  refused_at(profile("    filesystem: {read_only: [/opt/./x]}\n"), 4, 30, "`.` component");
  refused_at(profile("    filesystem: {read_only: [/opt/x/]}\n"), 4, 30, "ends in `/`");
  refused_at(profile("    filesystem: {read_only: [/opt/x, /opt/x]}\n"), 4, 38, "listed twice");
  refused_at(profile("    filesystem: {read_only: /opt/x}\n"), 4, 29, "`read_only` must be a list");
  CHECK(only("    filesystem: {read_only: [/, /etc]}\n").filesystem.read_only == Strings{"/", "/etc"});
  for (const char* p : {"/", "/etc", "/etc/ssh", "/usr", "/usr/local", "/bin", "/lib", "/boot", "/proc", "/sys",
                        "/dev", "/root", "/var", "/var/lib", "/var/lib/gatehouse", "/var/lib/gatehouse/x",
                        "/etc/gatehouse", "/run", "/var/run"}) {
    const std::string shown = p;
    CAPTURE(shown);
    auto o = parse(profile("    filesystem: {read_write: [" + std::string(p) + "]}\n"));
    CHECK_FALSE(o.policy);
    CHECK(has_error(o, 4, 31, "`read_write` of " + std::string(p)));
  }
  CHECK(only("    filesystem: {read_write: [/srv/cache, /var/cache/ci, /home/shared]}\n").filesystem.read_write.size() == 3);
  refused_at(profile("    filesystem: {hidden: [/]}\n"), 4, 27, "cannot hide the whole file system");
  refused_at(profile("    filesystem: {tmp_size: 2GB}\n"), 4, 28, "`tmp_size` `2GB` is not a size");
  refused_at(profile("    filesystem: {home_size: 100K}\n"), 4, 29, "`home_size` 100K is out of range");
  std::string many = "    filesystem:\n      read_only:\n";
  for (int i = 0; i < 257; ++i) many += "        - /opt/p" + std::to_string(i) + "\n";
  refused_at(profile(many), 5, 7, "more than 256 paths");
}

TEST_CASE("filesystem root and overlay_size") {
  refused_at(profile("    filesystem: {root: chroot}\n"), 4, 24, "`root` `chroot` is not known");
  refused_at(profile("    filesystem: {root: overlay, overlay_size: 8M}\n"), 4, 47, "out of range");
  refused_at(profile("    filesystem: {root: overlay, overlay_size: 2T}\n"), 4, 47, "out of range");
  CHECK(only("    filesystem: {root: overlay, overlay_size: 16M}\n").filesystem.overlay_bytes == 16ull << 20);
  // overlay_size with a host root is a setting that would do nothing: refused, not ignored.
  refused_at(profile("    filesystem: {overlay_size: 2G}\n"), 4, 18, "only meaningful with root: overlay");
  refused_at(profile("    filesystem: {root: host, overlay_size: 2G}\n"), 4, 30, "only meaningful with root: overlay");
}

TEST_CASE("network: modes and the egress allow list") {
  CHECK(only("    network: none\n").network.mode == NetworkMode::None);
  CHECK(only("    network: host\n").network.mode == NetworkMode::Host);
  refused_at(profile("    network: allowlist\n"), 4, 14, "network mode `allowlist` is not known");
  refused_at(profile("    network: [a]\n"), 4, 14, "`network` must be a mode or a mapping");
  refused_at(profile("    network: egress\n"), 4, 14, "egress needs a non-empty `allow` list");
  refused_at(profile("    network: {mode: egress}\n"), 4, 15, "egress needs a non-empty `allow` list");
  refused_at(profile("    network: {mode: egress, allow: []}\n"), 4, 29, "egress needs a non-empty `allow` list");
  refused_at(profile("    network: {allow: [\"a.com:443\"]}\n"), 4, 15, "`allow` is only used with network mode egress");
  refused_at(profile("    network: {mode: host, allow: [\"a.com:443\"]}\n"), 4, 27, "only used with network mode egress");
  for (const char* bad : {"a.com", "a.com:0", "a.com:65536", "a.com:x", "a.com:9-1", "a.com:", ":443", "*:443",
                          "a.*.com:443", "**.a.com:443", "-a.com:443", "a..com:443", "a_b.com:443", "10.0.0:443",
                          "10.0.0.0/33:443", "10.0.0.0/:443", "300.1.1.1:443", "[::1:443", "[zz::1]:443",
                          "[::1]/129:443", "::1:443", "a.com:443:443"}) {
    const std::string shown = bad;
    CAPTURE(shown);
    auto o = parse(profile("    network: {mode: egress, allow: [\"" + shown + "\"]}\n"));
    CHECK_FALSE(o.policy);
    CHECK(has_error(o, 4, 37, "in `allow`"));
  }
  std::string many = "    network:\n      mode: egress\n      allow:\n";
  for (int i = 0; i < 257; ++i) many += "        - h" + std::to_string(i) + ".example:443\n";
  refused_at(profile(many), 6, 7, "more than 256 entries");
  refused_at(profile("    network: {mode: egress, allow: [\"a.com:443\", \"a.com:443\"]}\n"), 4, 50, "listed twice");
}

TEST_CASE("docker: modes, the acknowledgement, the proxy rules") {
  CHECK(only("    docker: deny\n").docker.mode == DockerMode::Deny);
  CHECK(only("    docker: proxy\n").docker.mode == DockerMode::Proxy);
  refused_at(profile("    docker: maybe\n"), 4, 13, "docker mode `maybe` is not known");
  refused_at(profile("    docker: direct\n"), 4, 13, "needs `acknowledge: root-equivalent`");
  refused_at(profile("    docker: {mode: direct}\n"), 4, 14, "needs `acknowledge: root-equivalent`");
  refused_at(profile("    docker: {mode: direct, acknowledge: yes}\n"), 4, 41, "is not the acknowledgement");
  refused_at(profile("    docker: {mode: direct, acknowledge: root}\n"), 4, 41, "is not the acknowledgement");
  refused_at(profile("    docker: {mode: proxy, acknowledge: root-equivalent}\n"), 4, 27, "only used with docker mode direct");
  refused_at(profile("    docker: {acknowledge: root-equivalent}\n"), 4, 14, "only used with docker mode direct");
  refused_at(profile("    docker: {socket: /run/docker.sock}\n"), 4, 14, "`socket` is only used with docker mode direct or proxy");
  refused_at(profile("    docker: {mode: direct, acknowledge: root-equivalent, socket: run/d.sock}\n"), 4, 66,
             "is not an absolute path");
  refused_at(profile("    docker: {mode: direct, acknowledge: root-equivalent, proxy: {buildkit: true}}\n"), 4, 58,
             "`proxy` rules are only used with docker mode proxy");
  refused_at(profile("    docker: {proxy: {buildkit: true}}\n"), 4, 14, "only used with docker mode proxy");
  refused_at(profile("    docker: {mode: proxy, proxy: {images: [\"\"]}}\n"), 4, 44, "is empty");
  refused_at(profile("    docker: {mode: proxy, proxy: {ports: [\"0\"]}}\n"), 4, 43, "no valid port");
  refused_at(profile("    docker: {mode: proxy, proxy: {ports: [\"80-\"]}}\n"), 4, 43, "no valid port range");
  refused_at(profile("    docker: {mode: proxy, proxy: {ports: [\"*\"]}}\n"), 4, 43, "no valid port");
  refused_at(profile("    docker: {mode: proxy, proxy: {bind_paths: [rel]}}\n"), 4, 48, "is not an absolute path");
  refused_at(profile("    docker: {mode: proxy, proxy: {memory: 1M}}\n"), 4, 43, "out of range");
  refused_at(profile("    docker: {mode: proxy, proxy: {pids: 1}}\n"), 4, 41, "from 16 to 4194304");
  refused_at(profile("    docker: {mode: proxy, proxy: {buildkit: 1}}\n"), 4, 45, "must be true or false");
  auto p = only("    docker: {mode: proxy, proxy: {images: [x]}}\n");
  CHECK_FALSE(p.docker.proxy.memory_bytes.has_value());
  CHECK_FALSE(p.docker.proxy.pids.has_value());
}

TEST_CASE("resources have sane bounds") {
  refused_at(profile("    resources: {memory: 1M}\n"), 4, 25, "`memory` 1M is out of range");
  refused_at(profile("    resources: {memory: lots}\n"), 4, 25, "is not a size");
  refused_at(profile("    resources: {memory: Unlimited}\n"), 4, 25, "is not a size");
  refused_at(profile("    resources: {memory: [1G]}\n"), 4, 25, "`memory` must be a string");
  refused_at(profile("    resources: {pids: 1}\n"), 4, 23, "from 16 to 4194304");
  refused_at(profile("    resources: {cpus: 0}\n"), 4, 23, "must be from 0.01 to 1024");
  refused_at(profile("    resources: {cpus: -1}\n"), 4, 23, "`cpus` is negative (-1)");
  refused_at(profile("    resources: {cpus: 1e3}\n"), 4, 23, "must be a number");
  refused_at(profile("    resources: {cpus: .5}\n"), 4, 23, "must be a number");
  refused_at(profile("    resources: {cpus: nan}\n"), 4, 23, "must be a number");
  CHECK(only("    resources: {cpus: 0.25}\n").resources.cpus == doctest::Approx(0.25));
  refused_at(profile("    resources: {max_run_time: 0s}\n"), 4, 31, "out of range");
  refused_at(profile("    resources: {max_run_time: 8d}\n"), 4, 31, "out of range");
  refused_at(profile("    resources: {no_output_timeout: forever}\n"), 4, 36, "is not a duration");
  refused_at(profile("    resources: {open_files: 10}\n"), 4, 29, "from 64 to 1048576");
  refused_at(profile("    resources: {file_size: 0}\n"), 4, 28, "out of range");
  CHECK(only("    resources: {memory: 1073741824, max_run_time: 3600}\n").resources.memory_bytes == 1ull << 30);
  CHECK(only("    resources: {memory: unlimited}\n").resources.memory_bytes == 0);
}

TEST_CASE("seccomp: known names only, never the never-allowed list, not both allowed and denied") {
  refused_at(profile("    seccomp: {allow: [no_such_call]}\n"), 4, 23, "is not a system call libseccomp knows");
  refused_at(profile("    seccomp: {deny: [PTRACE]}\n"), 4, 22, "is not a system call libseccomp knows");
  refused_at(profile("    seccomp: {allow: [ptrace, ptrace]}\n"), 4, 31, "listed twice");
  refused_at(profile("    seccomp: {allow: ptrace}\n"), 4, 22, "`allow` must be a list");
  refused_at(profile("    seccomp: {allow: [ptrace], deny: [ptrace]}\n"), 4, 23, "is in both `allow` and `deny`");
  for (const auto& never : gh::policy::kSeccompNeverAllowed) {
    const std::string name(never.name);
    CAPTURE(name);
    CHECK_FALSE(never.why.empty());
    auto o = parse(profile("    seccomp: {allow: [" + name + "]}\n"));
    CHECK_FALSE(o.policy);
    CHECK(has_error(o, 4, 23, "cannot be allowed by policy: " + std::string(never.why)));
    // Denying them is fine (they are denied already, or filtered).
    CHECK(parse(profile("    seccomp: {deny: [" + name + "]}\n")).policy);
  }
  for (const auto& risky : gh::policy::kSeccompDangerous) {
    const std::string name(risky.name);
    CAPTURE(name);
    CHECK_FALSE(gh::policy::seccomp_never_allowed(risky.name));
    CHECK(parse(profile("    seccomp: {allow: [" + name + "]}\n")).policy);  // legal; lint warns
  }
  CHECK(gh::policy::seccomp_never_allowed("mount"));
  CHECK_FALSE(gh::policy::seccomp_never_allowed("read"));
  CHECK(gh::policy::seccomp_dangerous("bpf"));
}

TEST_CASE("environment: set, pass, deny") {
  refused_at(profile("    environment: {set: {BAD-NAME: x}}\n"), 4, 25, "environment variable name `BAD-NAME` is not valid");
  refused_at(profile("    environment: {set: {A: }}\n"), 4, 25, "environment variable `A` must be a string");
  refused_at(profile("    environment: {set: [A]}\n"), 4, 24, "`set` must be a mapping");
  refused_at(profile("    environment: {pass: [GATEHOUSE_TOKEN]}\n"), 4, 26, "hand the agent's own settings");
  refused_at(profile("    environment: {pass: [\"A B\"]}\n"), 4, 26, "is not a valid environment variable name");
  refused_at(profile("    environment: {pass: HOME}\n"), 4, 25, "`pass` must be a list");
  refused_at(profile("    environment: {set: {A: \"x\\0y\"}}\n"), 4, 28, "NUL");
  refused_at(profile("    environment: {deny: [1A]}\n"), 4, 26, "is not a valid environment variable name");
  refused_at(profile("    environment: {deny: [A, A]}\n"), 4, 29, "listed twice");
  // A name denied and also set or passed: which one wins would be a guess.
  refused_at(profile("    environment: {set: {TOKEN: x}, deny: [TOKEN]}\n"), 4, 43, "is both denied and set");
  refused_at(profile("    environment: {pass: [TOKEN], deny: [TOKEN]}\n"), 4, 41, "is both denied and passed");
  CHECK(only("    environment: {deny: [GATEHOUSE_TOKEN]}\n").environment.deny == Strings{"GATEHOUSE_TOKEN"});
}

TEST_CASE("secrets: names, targets, no duplicates, no clashes with the environment") {
  auto p = only("    secrets:\n      - {name: a-b_c.d, env: A}\n      - {name: k, file: k.pem}\n");
  REQUIRE(p.secrets.size() == 2);
  CHECK(p.secrets[0].mark.line == 5);
  CHECK(p.secrets[0].mark.column == 9);
  refused_at(profile("    secrets: {name: a}\n"), 4, 14, "`secrets` must be a list");
  refused_at(profile("    secrets: [a]\n"), 4, 15, "a secret must be a mapping");
  refused_at(profile("    secrets: [{env: A}]\n"), 4, 15, "a secret needs a `name`");
  refused_at(profile("    secrets: [{name: a}]\n"), 4, 15, "a secret needs `env: VARIABLE` or `file: NAME`");
  refused_at(profile("    secrets: [{name: a, env: A, file: a}]\n"), 4, 33, "as `env` or as `file`, not both");
  for (const char* bad : {"../x", ".hidden", "a/b", "a b", "", "é"}) {
    const std::string shown = bad;
    CAPTURE(shown);
    refused_at(profile("    secrets: [{name: \"" + shown + "\", env: A}]\n"), 4, 22, "secret name");
    refused_at(profile("    secrets: [{name: a, file: \"" + shown + "\"}]\n"), 4, 31, "is not a plain file name");
  }
  refused_at(profile("    secrets: [{name: " + std::string(65, 'a') + ", env: A}]\n"), 4, 22, "secret name");
  refused_at(profile("    secrets: [{name: a, env: 1A}]\n"), 4, 30, "is not a valid environment variable name");
  refused_at(profile("    secrets: [{name: a, env: GATEHOUSE_X}]\n"), 4, 30, "reserved for gatehouse");
  refused_at(profile("    secrets: [{name: a, env: A}, {name: a, env: B}]\n"), 4, 41, "secret `a` is exposed twice");
  refused_at(profile("    secrets: [{name: a, env: A}, {name: b, env: A}]\n"), 4, 49, "is the target of two secrets");
  refused_at(profile("    secrets: [{name: a, file: x}, {name: b, file: x}]\n"), 4, 51, "is the target of two secrets");
  CHECK(parse(profile("    secrets: [{name: a, env: X}, {name: b, file: X}]\n")).policy);
  std::string many = "    secrets:\n";
  for (int i = 0; i < 65; ++i) many += "      - {name: s" + std::to_string(i) + ", file: s" + std::to_string(i) + "}\n";
  refused_at(profile(many), 4, 5, "more than 64 secrets");
  refused_at(profile("    environment: {set: {TOKEN: x}}\n    secrets: [{name: a, env: TOKEN}]\n"), 5, 30,
             "is both a secret's `env` and set");
  refused_at(profile("    environment: {pass: [TOKEN]}\n    secrets: [{name: a, env: TOKEN}]\n"), 5, 30,
             "is both a secret's `env` and passed");
  refused_at(profile("    environment: {deny: [TOKEN]}\n    secrets: [{name: a, env: TOKEN}]\n"), 5, 30,
             "is both a secret's `env` and denied");
}

// The policy parser, second part: profiles built on profiles (`extends`),
// the ordered rules that pick a profile from job metadata, glob matching,
// and whole files: every error in one run, the YAML guard, reading from
// disk and reloading, and the shipped example policy.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/unit/policy_test_util.hpp"

TEST_CASE("extends: the parent's settings, overridden key by key; lists replace") {
  const std::string text = R"(version: 1
profiles:
  base:
    user: {name: builder, uid: 2000}
    filesystem: {read_only: [/opt/a, /opt/b], tmp_size: 2G}
    network: {mode: egress, allow: ["a.example:443"]}
    resources: {memory: 8G, pids: 2048}
    environment: {set: {A: "1", B: "2"}, pass: [LANG]}
    secrets: [{name: tok, env: TOK}]
  default:
    extends: base
    user: {uid: 3000}
    filesystem: {read_only: [/opt/c]}
    resources: {pids: 100}
    environment: {set: {C: "3"}}
  grandchild:
    extends: default
    secrets: []
    network: none
)";
  auto pol = accepted(text);
  const auto& c = named(pol, "default");
  CHECK(c.extends == "base");
  CHECK(c.user.name == "builder");
  CHECK(c.user.uid == 3000);
  CHECK(c.filesystem.read_only == Strings{"/opt/c"});
  CHECK(c.filesystem.tmp_bytes == 2ull << 30);
  CHECK(c.network.mode == NetworkMode::Egress);
  CHECK(c.network.allow == Strings{"a.example:443"});
  CHECK(c.resources.memory_bytes == 8ull << 30);
  CHECK(c.resources.pids == 100);
  const std::vector<std::pair<std::string, std::string>> set{{"C", "3"}};
  CHECK(c.environment.set == set);
  CHECK(c.environment.pass == Strings{"LANG"});
  REQUIRE(c.secrets.size() == 1);
  const auto& g = named(pol, "grandchild");
  CHECK(g.extends == "default");
  CHECK(g.user.uid == 3000);
  CHECK(g.resources.pids == 100);
  CHECK(g.secrets.empty());
  // Writing the mode resets what depends on it: none has no allow list.
  CHECK(g.network.mode == NetworkMode::None);
  CHECK(g.network.allow.empty());
  // The parent is untouched by its children.
  CHECK(named(pol, "base").resources.pids == 2048);
  CHECK(named(pol, "base").filesystem.read_only == Strings{"/opt/a", "/opt/b"});
  // Order in the file does not matter: a child may come before its parent.
  auto rev = accepted("version: 1\nprofiles:\n  default: {extends: base}\n  base: {resources: {pids: 64}}\n");
  CHECK(rev.profiles[0].name == "default");
  CHECK(rev.profiles[0].resources.pids == 64);
}

TEST_CASE("extends: mode changes reset dependent fields; combinations are checked on the result") {
  const std::string head = "version: 1\nprofiles:\n"
                           "  base:\n"
                           "    network: {mode: egress, allow: [\"a.example:443\"]}\n"
                           "    docker: {mode: direct, acknowledge: root-equivalent, socket: /srv/d.sock}\n"
                           "    filesystem: {root: overlay, overlay_size: 8G}\n"
                           "    user: {root_in_namespace: true}\n"
                           "  default:\n"
                           "    extends: base\n";  // the child's keys start on line 10
  auto inherit = accepted(head);
  CHECK(named(inherit, "default").docker.acknowledged_root_equivalent);
  CHECK(named(inherit, "default").user.uid == 0);
  CHECK(named(inherit, "default").filesystem.overlay_bytes == 8ull << 30);
  // A child that writes `mode: egress` again must write its allow list again.
  refused_at(head + "    network: {mode: egress}\n", 10, 15, "egress needs a non-empty `allow` list");
  // ... and `mode: direct` its acknowledgement.
  refused_at(head + "    docker: {mode: direct}\n", 10, 14, "needs `acknowledge: root-equivalent`");
  auto deny = accepted(head + "    docker: deny\n    network: {allow: [\"b.example:80\"]}\n");
  CHECK(named(deny, "default").docker.socket == "/var/run/docker.sock");
  CHECK_FALSE(named(deny, "default").docker.acknowledged_root_equivalent);
  CHECK(named(deny, "default").network.allow == Strings{"b.example:80"});
  refused_at(head + "    docker: {mode: proxy, acknowledge: root-equivalent}\n", 10, 27, "only used with docker mode direct");
  // Root in the namespace is inherited: a child cannot also name a uid.
  refused_at(head + "    user: {uid: 1000}\n", 10, 12, "`uid` cannot be set");
  auto back = accepted(head + "    user: {root_in_namespace: false}\n");
  CHECK(named(back, "default").user.uid == gh::policy::JobUser{}.uid);
  CHECK(named(back, "default").user.name == gh::policy::JobUser{}.name);
  auto host = accepted(head + "    filesystem: {root: host}\n");
  CHECK(named(host, "default").filesystem.overlay_bytes == gh::policy::Filesystem{}.overlay_bytes);
  refused_at(head + "    filesystem: {root: host, overlay_size: 2G}\n", 10, 30, "only meaningful with root: overlay");
  // Clashes between inherited and written lists point at the child's key.
  const std::string env = "version: 1\nprofiles:\n  base:\n    environment: {set: {TOKEN: x}}\n"
                          "    seccomp: {allow: [ptrace]}\n  default:\n    extends: base\n";
  refused_at(env + "    environment: {deny: [TOKEN]}\n", 8, 26, "is both denied and set");
  refused_at(env + "    seccomp: {deny: [ptrace]}\n", 8, 22, "is in both `allow` and `deny`");
  refused_at(env + "    secrets: [{name: a, env: TOKEN}]\n", 8, 30, "is both a secret's `env` and set");
  // An error in the parent is reported once, at the parent.
  auto o = parse("version: 1\nprofiles:\n  base: {network: egress}\n  default: {extends: base}\n");
  CHECK(o.diagnostics.all().size() == 1);
  CHECK(has_error(o, 3, 19, "egress needs"));
}

TEST_CASE("extends: unknown parents, self-reference, cycles and depth") {
  refused_at("version: 1\nprofiles:\n  default: {extends: nope}\n", 3, 22,
             "extends `nope`, which is not a profile in this policy");
  refused_at("version: 1\nprofiles:\n  default: {extends: default}\n", 3, 22, "extends itself");
  refused_at("version: 1\nprofiles:\n  default: {extends: [a]}\n  a: {}\n", 3, 22, "`extends` must be a string");
  auto cyc = parse("version: 1\nprofiles:\n  a: {extends: b}\n  b: {extends: c}\n  c: {extends: a}\n  default: {extends: a}\n");
  INFO(cyc.diagnostics.render());
  CHECK_FALSE(cyc.policy);
  CHECK(has_error(cyc, 3, 16, "cycle: `a` -> `b` -> `c` -> `a`"));
  CHECK(has_error(cyc, 4, 16, "cycle"));
  CHECK(has_error(cyc, 5, 16, "cycle"));
  CHECK(cyc.diagnostics.all().size() == 3);  // `default` only sits under the cycle
  // The broken profile's own keys are still checked.
  auto both = parse("version: 1\nprofiles:\n  default: {extends: nope, resources: {pids: 1}}\n");
  CHECK(has_error(both, 3, 22, "not a profile"));
  CHECK(has_error(both, 3, 46, "from 16 to 4194304"));
  // Chains: 16 links are fine, 17 are not.
  auto chain = [](int links) {
    std::string t = "version: 1\nprofiles:\n  p0: {resources: {pids: 99}}\n";
    for (int i = 1; i <= links; ++i)
      t += "  p" + std::to_string(i) + ": {extends: p" + std::to_string(i - 1) + "}\n";
    return t + "  default: {}\n";
  };
  auto ok = accepted(chain(16));
  CHECK(named(ok, "p16").resources.pids == 99);
  auto deep = parse(chain(17));
  CHECK_FALSE(deep.policy);
  CHECK(has_error(deep, 20, 18, "more than 16 `extends` links"));
}

TEST_CASE("rules: parsed, validated, first match wins") {
  const std::string text = R"(version: 1
signatures: {trusted_keys: [{name: release-key, ed25519: ei0SfS8Ltum9Zsh7jT3FiGugoMwqr7hry0V6MOdNbFg=}]}
profiles:
  trusted: {}
  untrusted: {}
  release: {}
rules:
  - match: {trigger: tag, tag: "v*", signed_by: release-key}
    profile: release
  - match:
      project: "acme/*"
      branch: [main, "release/**"]
      trigger: [push, manual]
    profile: trusted
  - profile: untrusted
)";
  auto pol = accepted(text);
  CHECK(pol.rules_written);
  REQUIRE(pol.rules.size() == 3);
  CHECK(pol.rules[0].match.signed_by == Strings{"release-key"});
  CHECK(pol.rules[1].match.branch == Strings{"main", "release/**"});
  CHECK(pol.rules[1].mark.line == 10);
  CHECK(pol.rules[2].match.empty());
  auto pick = [&](JobMeta m) {
    auto s = gh::policy::select_profile(pol, m);
    REQUIRE(s.profile);
    CHECK(s.profile->name == pol.rules[s.rule_index].profile);
    return s.profile->name;
  };
  CHECK(pick({"acme/web", "main", "", "push", "build", ""}) == "trusted");
  CHECK(pick({"acme/web", "release/1.2/rc", "", "manual", "", ""}) == "trusted");
  CHECK(pick({"acme/web", "feature", "", "push", "", ""}) == "untrusted");
  CHECK(pick({"acme/web/x", "main", "", "push", "", ""}) == "untrusted");  // `*` does not cross `/`
  CHECK(pick({"acme/web", "main", "", "fork_pull_request", "", ""}) == "untrusted");
  CHECK(pick({"acme/web", "main", "", "", "", ""}) == "untrusted");  // trigger unknown: a tested field
  CHECK(pick({"acme/web", "main", "v1.0", "tag", "", "release-key"}) == "release");
  CHECK(pick({"acme/web", "main", "v1.0", "tag", "", ""}) == "untrusted");  // unsigned
  CHECK(pick({"acme/web", "main", "v1.0", "tag", "", "other-key"}) == "untrusted");
  // First match wins, whatever comes later.
  auto first = accepted("version: 1\nprofiles: {a: {}, b: {}}\nrules:\n  - {match: {job: [\"*\"]}, profile: a}\n"
                        "  - {match: {job: [deploy]}, profile: b}\n  - profile: b\n");
  CHECK(gh::policy::select_profile(first, {"", "", "", "", "deploy", ""}).rule_index == 0);
  CHECK(gh::policy::select_profile(first, {"", "", "", "", "", ""}).rule_index == 2);
}

TEST_CASE("rules: the default is last, profiles exist, values are known") {
  const std::string head = "version: 1\nprofiles: {a: {}, b: {}}\nrules:\n";
  refused_at(head + "  - {match: {branch: main}, profile: a}\n", 4, 5, "the last rule must be the default");
  refused_at(head + "  - profile: a\n  - {match: {branch: main}, profile: b}\n", 4, 5, "would never be used");
  refused_at(head + "  - profile: a\n  - profile: b\n", 4, 5, "would never be used");
  refused_at(head + "  - profile: nope\n", 4, 14, "there is no profile `nope` in this policy");
  refused_at(head + "  - {match: {branch: main}}\n  - profile: a\n", 4, 5, "a rule needs `profile:`");
  refused_at(head + "  - {match: {trigger: pr}, profile: a}\n  - profile: b\n", 4, 23, "trigger `pr` is not known");
  refused_at(head + "  - {match: {trigger: \"push*\"}, profile: a}\n  - profile: b\n", 4, 23, "is not known");
  refused_at(head + "  - {match: {signed_by: \"key *\"}, profile: a}\n  - profile: b\n", 4, 25, "key name");
  refused_at(head + "  - {match: {branch: \"\"}, profile: a}\n  - profile: b\n", 4, 22, "must be 1 to 256 bytes");
  refused_at(head + "  - {match: {branch: []}, profile: a}\n  - profile: b\n", 4, 22, "lists 0 values");
  refused_at(head + "  - {match: {branch: {x: y}}, profile: a}\n  - profile: b\n", 4, 22, "must be a string");
  refused_at(head + "  - {match: {}, profile: a}\n  - profile: b\n", 4, 6, "`match` is empty");
  refused_at(head + "  - {match: {brnach: main}, profile: a}\n  - profile: b\n", 4, 14, "unknown key `brnach` in `match`");
  refused_at(head + "  - {when: x, profile: a}\n", 4, 6, "unknown key `when` in a rule");
  refused_at(head + "  {a: b}\n", 4, 3, "`rules` must be a list");
  refused_at("version: 1\nprofiles: {a: {}}\nrules: []\n", 3, 1, "`rules` lists no rules");
  for (const char* t : gh::policy::kTriggers)
    CHECK(parse(head + "  - {match: {trigger: " + std::string(t) + "}, profile: a}\n  - profile: b\n").policy);
}

TEST_CASE("glob_match: `*` stays in a path component, `**` crosses, `?` is one character") {
  using gh::policy::glob_match;
  CHECK(glob_match("acme/*", "acme/web"));
  CHECK_FALSE(glob_match("acme/*", "acme/web/x"));
  CHECK(glob_match("acme/**", "acme/web/x"));
  CHECK(glob_match("acme/**", "acme/"));
  CHECK_FALSE(glob_match("acme/**", "acme"));
  CHECK(glob_match("*", "main"));
  CHECK_FALSE(glob_match("*", "release/1"));
  CHECK(glob_match("**", "release/1"));
  CHECK(glob_match("release/**/rc", "release/1/2/rc"));
  CHECK_FALSE(glob_match("release/**/rc", "release/rc"));
  CHECK(glob_match("v?.?", "v1.2"));
  CHECK_FALSE(glob_match("v?.?", "v1.23"));
  CHECK_FALSE(glob_match("a?b", "a/b"));
  CHECK(glob_match("a?b", "aéb"));  // one character, not one byte
  CHECK_FALSE(glob_match("a??b", "aéb"));
  CHECK(glob_match("main", "main"));
  CHECK_FALSE(glob_match("main", "mainline"));
  CHECK_FALSE(glob_match("main", "Main"));
  CHECK(glob_match("", ""));
  CHECK_FALSE(glob_match("", "x"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("a*b*c", "a-b-b-c"));
  CHECK_FALSE(glob_match("a*b*c", "a-b-b-d"));
  CHECK(glob_match("[x]", "[x]"));  // no character classes: brackets are literal
  // Hostile patterns against long texts: linear, not exponential.
  const auto start = std::chrono::steady_clock::now();
  const std::string text(100000, 'a');
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
  CHECK_FALSE(glob_match("**a**a**a**a**a**a**a**a**b", text));
  CHECK(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*", text));
  const std::string slashes = std::string(20000, '/') + "b";
  CHECK_FALSE(glob_match("*/*/*/*/*/*/*/*/*/*/*/*a", slashes));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("every error of a file is reported in one run, each at its line:col") {
  const std::string text = "version: 1\n"                            // 1
                           "profiles:\n"                             // 2
                           "  default:\n"                            // 3
                           "    user: {uid: 0}\n"                    // 4: col 17
                           "    network: egress\n"                   // 5: col 14
                           "    docker: direct\n"                    // 6: col 13
                           "    seccomp: {allow: [mount]}\n"         // 7: col 23
                           "rules:\n"                                // 8
                           "  - profile: nope\n";                    // 9: col 14
  auto o = parse(text);
  INFO(o.diagnostics.render());
  CHECK_FALSE(o.policy);
  CHECK(o.diagnostics.all().size() == 5);
  CHECK(has_error(o, 4, 17, "from 1 to 65533"));
  CHECK(has_error(o, 5, 14, "egress needs a non-empty `allow` list"));
  CHECK(has_error(o, 6, 13, "needs `acknowledge: root-equivalent`"));
  CHECK(has_error(o, 7, 23, "cannot be allowed by policy"));
  CHECK(has_error(o, 9, 14, "there is no profile `nope`"));
  for (const auto& d : o.diagnostics.all()) CHECK(d.file == "policy.yaml");
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
  CHECK_FALSE(o.policy);
  CHECK(has_error(o, "alias bomb"));
  std::string deep = "version: 1\nprofiles: {default: {environment: {set: {A: ";
  for (int i = 0; i < 70; ++i) deep += "[";
  for (int i = 0; i < 70; ++i) deep += "]";
  auto nested = parse(deep + "}}}}\n");
  INFO(nested.diagnostics.render());
  CHECK_FALSE(nested.policy);
  CHECK(has_error(nested, "deep"));
  std::string nul = profile("    network: none\n");
  nul[nul.find("none")] = '\0';
  refused_at(nul, 4, 14, "NUL byte");
  std::string latin1 = profile("    environment: {set: {A: caf\xE9}}\n");
  auto bad_utf8 = parse(latin1);
  CHECK_FALSE(bad_utf8.policy);
  CHECK(has_error(bad_utf8, 4, 31, "UTF-8"));
  auto big = parse(profile("    network: none\n") + "#" + std::string(gh::policy::kMaxPolicyFileBytes, ' ') + "\n");
  CHECK_FALSE(big.policy);
  CHECK(has_error(big, 0, 0, "more than the limit"));
  auto broken = parse("version: 1\nprofiles: {default: {resources: {pids: 64}\n");
  CHECK_FALSE(broken.policy);
  REQUIRE(broken.diagnostics.has_errors());
  CHECK(broken.diagnostics.all().front().message.find("YAML syntax error") == 0);
  CHECK(broken.diagnostics.all().front().mark.line > 0);
  auto merged = parse("version: 1\nbase: &base {resources: {pids: 64}}\nprofiles:\n  default:\n    <<: *base\n");
  CHECK_FALSE(merged.policy);  // `base` is not a policy key: no anchor holders here
  CHECK(has_error(merged, 2, 1, "unknown key `base`"));
  auto inline_merge = accepted("version: 1\nprofiles:\n  ci: &ci {resources: {pids: 64}}\n  default:\n    <<: *ci\n    user: {uid: 42}\n");
  CHECK(named(inline_merge, "default").resources.pids == 64);
  CHECK(named(inline_merge, "default").user.uid == 42);
  refused_at("version: 1\nprofiles:\n  default: {}\n  \"a\\e[2J\": {}\n", 4, 3, "profile name `a?[2J` is not valid");
}

TEST_CASE("reading a policy file from disk, and reloading") {
  auto missing = gh::policy::parse_policy_file("/nonexistent/policy.yaml");
  CHECK_FALSE(missing.policy);
  CHECK(has_error(missing, "cannot open the policy file /nonexistent/policy.yaml"));
  char tmpl[] = "/tmp/gh-test-policy-XXXXXX";
  const int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  auto write = [&](const std::string& text) {
    std::ofstream f(tmpl, std::ios::trunc);
    f << text;
  };
  write("version: 1\nprofiles:\n  default:\n    resources: {pids: 100}\n");
  auto ok = gh::policy::parse_policy_file(tmpl);
  INFO(ok.diagnostics.render());
  REQUIRE(ok.policy);
  CHECK(ok.policy->profiles[0].resources.pids == 100);
  CHECK(ok.diagnostics.file() == tmpl);

  Policy current = *ok.policy;
  const std::string digest = gh::policy::policy_digest(current);
  write("version: 1\nprofiles:\n  default:\n    resources: {pids: 1}\n");
  auto bad = gh::policy::reload_policy(tmpl, current);
  CHECK_FALSE(bad.replaced);
  CHECK(bad.diagnostics.has_errors());
  CHECK(has_error(PolicyOutcome{std::nullopt, bad.diagnostics}, 4, 23, "from 16 to 4194304"));
  CHECK(current.profiles[0].resources.pids == 100);
  CHECK(bad.old_digest == digest);
  CHECK(bad.new_digest.empty());

  write("version: 1\nprofiles:\n  default:\n    resources: {pids: 200}\n");
  auto good = gh::policy::reload_policy(tmpl, current);
  CHECK(good.replaced);
  CHECK_FALSE(good.diagnostics.has_errors());
  CHECK(current.profiles[0].resources.pids == 200);
  CHECK(good.old_digest == digest);
  CHECK(good.new_digest == gh::policy::policy_digest(current));
  CHECK(good.new_digest != good.old_digest);
  std::remove(tmpl);
}

TEST_CASE("examples/policy.yaml parses and picks the profiles it describes") {
  auto o = gh::policy::parse_policy_file(GH_SOURCE_ROOT "/examples/policy.yaml");
  INFO(o.diagnostics.render());
  REQUIRE(o.policy);
  const Policy& p = *o.policy;
  CHECK(p.rules_written);
  auto pick = [&](JobMeta m) {
    auto s = gh::policy::select_profile(p, m);
    REQUIRE(s.profile);
    return s.profile;
  };
  const Profile* fork = pick({"acme/web", "patch-1", "", "fork_pull_request", "build", ""});
  CHECK(fork->secrets.empty());
  CHECK(fork->network.mode == NetworkMode::None);
  CHECK(fork->docker.mode == DockerMode::Deny);
  const Profile* main = pick({"acme/web", "main", "", "push", "build", ""});
  CHECK(main->name != fork->name);
  CHECK(main->resources.memory_bytes > fork->resources.memory_bytes);
  CHECK_FALSE(main->secrets.empty());
  const Profile* release = pick({"acme/web", "main", "v1.2.3", "tag", "release", "release-key"});
  CHECK(release->name != main->name);
  CHECK(release->docker.mode != DockerMode::Direct);
  const Profile* unsigned_tag = pick({"acme/web", "main", "v1.2.3", "tag", "release", ""});
  CHECK(unsigned_tag->name != release->name);
  CHECK(unsigned_tag->secrets.empty());
}

// The parse child's typed answers (ipc/policy_codec, job_codec,
// parse_messages): every policy and job the parsers accept survives
// encode -> decode unchanged, and the decoder refuses what a hostile child
// could send instead, each with its exact error.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ipc/parse_messages.hpp"
#include "policy/job.hpp"
#include "policy/policy.hpp"
#include "tests/unit/policy_fixtures.hpp"
#include "tests/unit/read_file.hpp"

using namespace gh;
namespace fs = std::filesystem;

namespace {

template <class T>
T round_trip(const T& v) {
  const std::string bytes = ipc::encode(v);
  auto back = ipc::decode<T>(bytes);
  INFO((back ? std::string() : back.error().message));
  REQUIRE(back.ok());
  CHECK(ipc::encode(*back) == bytes);  // nothing lost, nothing reordered
  return *back;
}

void same_policy(const policy::Policy& a, const policy::Policy& b) {
  CHECK(policy::canonical_yaml(a) == policy::canonical_yaml(b));
  CHECK(policy::policy_digest(a) == policy::policy_digest(b));
  CHECK(a.version == b.version);
  CHECK(a.rules_written == b.rules_written);
  REQUIRE(a.profiles.size() == b.profiles.size());
  for (size_t i = 0; i < a.profiles.size(); ++i) CHECK(a.profiles[i].extends == b.profiles[i].extends);
}

void same_job(const job::Job& a, const job::Job& b) {
  CHECK(a.name == b.name);
  CHECK(a.source_file == b.source_file);
  CHECK(a.environment == b.environment);
  CHECK(a.working_directory == b.working_directory);
  CHECK(a.shell == b.shell);
  CHECK(a.resource_class == b.resource_class);
  REQUIRE(a.steps.size() == b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    const auto &x = a.steps[i], &y = b.steps[i];
    CHECK(x.kind == y.kind);
    CHECK(x.checkout.path == y.checkout.path);
    CHECK(x.run.name == y.run.name);
    CHECK(x.run.command == y.run.command);
    CHECK(x.run.environment == y.run.environment);
    CHECK(x.run.working_directory == y.run.working_directory);
    CHECK(x.run.no_output_timeout == y.run.no_output_timeout);
    CHECK(x.run.when == y.run.when);
    CHECK(x.run.shell == y.run.shell);
    CHECK(x.run.background == y.run.background);
  }
}

template <class T>
std::string refusal(const std::string& bytes) {
  auto r = ipc::decode<T>(bytes);
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

// The offset of a unique marker string's bytes in an encoding.
size_t at(const std::string& bytes, const std::string& marker) {
  const size_t i = bytes.find(marker);
  REQUIRE(i != std::string::npos);
  REQUIRE(bytes.find(marker, i + 1) == std::string::npos);
  return i;
}

void put_u32(std::string& bytes, size_t offset, uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[offset + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}

job::Job small_job() {
  auto o = job::parse_job_text("job.yml", "steps:\n  - checkout:\n      path: MARKER\n  - run: make\n", std::nullopt);
  REQUIRE(o.job);
  return *o.job;
}

const char* const kJobs[] = {
    "steps: [checkout]\n",
    "version: 2.1\njobs:\n  build:\n    machine: true\n    steps:\n      - run: make\n",
    R"(version: 2.1
jobs:
  build:
    resource_class: large
    working_directory: ~/src
    shell: /bin/bash -eo pipefail
    environment: {GOPATH: /home/circleci/go, COUNT: 3, EMPTY: ""}
    steps:
      - checkout
      - checkout: {path: sub/dir, method: blobless}
      - run:
          name: Test it
          command: |
            make test
            make lint
          environment: [{A: "1"}, {B: "two é ☃"}]
          working_directory: tests
          no_output_timeout: 1h30m
          when: always
          shell: /bin/sh
          background: true
      - run: {command: "\n  ./first.sh\n", when: on_fail}
  other:
    steps: [checkout]
)",
};

}  // namespace

TEST_CASE("policies: every parsed golden and example policy, and the built-in one, round-trip") {
  std::vector<std::string> files = {GH_SOURCE_ROOT "/examples/policy.yaml"};
  for (const auto& e : fs::directory_iterator(GH_SOURCE_ROOT "/tests/golden"))
    if (e.path().extension() == ".yaml") files.push_back(e.path().string());
  int parsed = 0;
  for (const auto& f : files) {
    CAPTURE(f);
    auto o = policy::parse_policy_text(f, read_all(f));
    if (!o.policy) continue;  // errors.yaml: its errors are the point
    ++parsed;
    same_policy(*o.policy, round_trip(*o.policy));
  }
  CHECK(parsed >= 6);
  same_policy(policy::builtin_policy(), round_trip(policy::builtin_policy()));
  // Every field away from its default, hostile strings included.
  const policy::Policy every = policy::fixtures::everything();
  const policy::Policy back = round_trip(every);
  same_policy(every, back);
  CHECK(back.signatures.trusted_keys.at(0).public_key == every.signatures.trusted_keys.at(0).public_key);
  CHECK(back.profiles.at(1).docker.proxy.memory_bytes == every.profiles.at(1).docker.proxy.memory_bytes);
  // Marks are not sent, but for those the broker's machine refusals name.
  CHECK(back.profiles.at(0).mark.line == every.profiles.at(0).mark.line);
  CHECK(back.profiles.at(1).machine.images_mark.line == every.profiles.at(1).machine.images_mark.line);
  CHECK(back.profiles.at(1).secrets.at(0).mark.line == 0);
  CHECK(back.rules.at(0).mark.line == 0);
}

TEST_CASE("jobs: inline examples and every parsed corpus job round-trip") {
  int parsed = 0;
  for (const char* text : kJobs) {
    auto o = job::parse_job_text("config.yml", text, std::string("build"));
    if (!o.job) o = job::parse_job_text("config.yml", text, std::nullopt);
    INFO(text);
    INFO(o.diagnostics.render());
    REQUIRE(o.job);
    same_job(*o.job, round_trip(*o.job));
    ++parsed;
  }
  std::error_code ec;
  REQUIRE_MESSAGE(fs::is_directory(GH_CORPUS_DIR, ec), "the CircleCI corpus is missing: " GH_CORPUS_DIR);
  int from_corpus = 0;
  for (const auto& e : fs::directory_iterator(GH_CORPUS_DIR)) {
    if (e.path().extension() != ".yml") continue;
    const std::string text = read_all(e.path().string());
    auto all = job::parse_job_text(e.path().string(), text, std::nullopt);
    for (const auto& name : all.available_jobs) {
      auto o = job::parse_job_text(e.path().string(), text, name);
      if (!o.job) continue;
      CAPTURE(e.path().string());
      CAPTURE(name);
      same_job(*o.job, round_trip(*o.job));
      ++from_corpus;
    }
  }
  CHECK(parsed == 3);
  CHECK(from_corpus >= 2);  // most of the corpus targets CircleCI's cloud and is refused (test_corpus.cpp)
}

TEST_CASE("results and requests round-trip") {
  ipc::ParseResult r;
  r.job = small_job();
  r.available_jobs = {"job"};
  auto back = round_trip(r);
  REQUIRE(back.job);
  same_job(*r.job, *back.job);

  ipc::ParseResult p;
  p.policy = ipc::ParsedPolicy{policy::builtin_policy(), policy::policy_digest(policy::builtin_policy()),
                               {std::string(16, 'x')}};
  CHECK(round_trip(p).policy->filters == p.policy->filters);

  ipc::ParseResult s;
  s.settings = ipc::BrokerSettings{"runner-1", "/var/lib/gatehouse/work", false, "/run/gatehouse/uids",
                                   "/etc/gatehouse/orbs", "/var/lib/gatehouse/spool", "/etc/gatehouse/policy.yaml", "",
                                   "127.0.0.1:9100", "/var/log/gatehouse/agent.log"};
  CHECK(round_trip(s).settings->metrics_listen == "127.0.0.1:9100");

  ipc::ParseRequest q{ipc::ParseKind::BrokerSettings, "gatehouse.yaml", "runner: {}\n", std::nullopt,
                      {{"GATEHOUSE_RUNNER_NAME", "x"}}, {}};
  auto qf = ipc::frame_request(q);
  auto qb = ipc::decode_request_frame(qf);
  REQUIRE(qb.ok());
  CHECK(qb->env == q.env);
  CHECK(ipc::frame_request(*qb) == qf);
}

TEST_CASE("the decoder refuses truncated input, oversized fields, bad enums and trailing bytes") {
  const std::string good = ipc::encode(small_job());
  CHECK(refusal<job::Job>(good.substr(0, good.size() - 1)) == "the message ends in the middle of a field");
  CHECK(refusal<job::Job>(good.substr(0, 2)) == "the message ends in the middle of a field");
  CHECK(refusal<job::Job>(good.substr(0, at(good, "MARKER") + 3)) == "a string runs past the end of the message");
  CHECK(refusal<job::Job>(good + "x") == "1 bytes left over after the message");
  CHECK(refusal<job::Job>("") == "the message ends in the middle of a field");

  std::string bad_kind = good;  // the checkout step's kind: 4 bytes before its path's length
  put_u32(bad_kind, at(good, "MARKER") - 8, 2);
  CHECK(refusal<job::Job>(bad_kind) == "an unknown value 2 of an enumeration");

  job::Job big = small_job();
  big.steps[1].run.command.assign(job::kMaxCommandBytes + 1, 'x');
  CHECK(refusal<job::Job>(ipc::encode(big)) == "a string of 262145 bytes where at most 262144 may be");
  job::Job many = small_job();
  many.steps.resize(job::kMaxSteps + 1, small_job().steps[1]);
  CHECK(refusal<job::Job>(ipc::encode(many)) == "a list of 1001 items where at most 1000 may be");

  // A count the input cannot hold is refused before anything is allocated
  // (the steps' count is a Job's last field).
  std::string steps_count = ipc::encode(job::Job{});
  put_u32(steps_count, steps_count.size() - 4, 999);
  CHECK(refusal<job::Job>(steps_count) == "a list runs past the end of the message");

  ipc::ParseResult r;
  r.diagnostics = "x";
  std::string flag = ipc::encode(r);
  flag[0] = 2;  // the job's "is present" flag
  CHECK(refusal<ipc::ParseResult>(flag) == "a boolean that is neither 0 nor 1");
}

TEST_CASE("the job decoder refuses what the broker must not be handed") {
  auto problem = [](const job::Job& j) { return refusal<job::Job>(ipc::encode(j)); };
  job::Job j = small_job();
  j.environment = {{std::string("A\0B", 3), "v"}};
  CHECK(problem(j) == "the job's environment variable name `A?B` is not valid");
  j.environment = {{"", "v"}};
  CHECK(problem(j) == "the job's environment variable name `` is not valid");
  j.environment = {{"A=B", "v"}};
  CHECK(problem(j) == "the job's environment variable name `A=B` is not valid");
  j = small_job();
  j.name = std::string("bu\0ild", 6);
  CHECK(problem(j) == "the job's name is empty or holds a NUL byte");
  j = small_job();
  j.steps[1].run.command = std::string("make\0rm -rf /", 13);
  CHECK(problem(j) == "step 2: the command holds a NUL byte");
  j = small_job();
  j.steps[0].checkout.path = std::string("a\0b", 3);
  CHECK(problem(j) == "step 1: the checkout path holds a NUL byte");
  j.steps[0].checkout.path = "../../etc";
  CHECK(problem(j) == "step 1: the checkout path goes up through `..`");
  j = small_job();
  j.working_directory = "~root/x";
  CHECK(problem(j) == "the job's working directory names another user's home");
  j = small_job();
  j.steps.clear();
  CHECK(problem(j) == "the job has no steps");
  j = small_job();
  j.steps[1].run.no_output_timeout = std::chrono::seconds(0);
  CHECK(problem(j) == "step 2: no_output_timeout 0s is outside 1s to 24h");
  j = small_job();
  j.steps[1].run.command.clear();
  CHECK(problem(j) == "step 2: the command is empty");
}

TEST_CASE("the policy decoder refuses what would grant more than the parser allows") {
  auto problem = [](const policy::Policy& p) { return refusal<policy::Policy>(ipc::encode(p)); };
  policy::Policy p = policy::builtin_policy();
  p.profiles[0].uid_pool.first = 0;
  CHECK(problem(p) == "profile `default`: uid_pool.first 0 is below 1000 (root and system users)");
  p = policy::builtin_policy();
  p.profiles[0].secrets = {{"../../etc/shadow", policy::SecretExposure::As::Env, "X", {}}};
  CHECK(problem(p) == "profile `default`: secret name `../../etc/shadow` is not a plain file name");
  p = policy::builtin_policy();
  p.profiles[0].filesystem.read_write = {"/etc"};
  CHECK(problem(p) == "profile `default`: filesystem.read_write entry `/etc` is a protected host path");
  p = policy::builtin_policy();
  p.profiles[0].docker.mode = policy::DockerMode::Direct;
  CHECK(problem(p) == "profile `default`: docker mode direct without `acknowledge: root-equivalent`");
  p = policy::builtin_policy();
  p.profiles[0].seccomp.allow = {"kexec_load"};
  CHECK(problem(p) == "profile `default`: seccomp.allow entry `kexec_load` can never be allowed by policy");
  p = policy::builtin_policy();
  p.profiles[0].user.uid = 0;
  CHECK(problem(p) == "profile `default`: user.uid 0 is outside 1 to 65533");
  p = policy::builtin_policy();
  p.profiles[0].name = std::string("de\0fault", 8);
  CHECK(problem(p) == "profile name `de?fault` is not valid");
  p = policy::builtin_policy();
  p.rules[0].profile = "missing";
  CHECK(problem(p) == "rule 1 names `missing`, which is not a profile of the policy");
  p = policy::builtin_policy();
  p.rules[0].match.branch = {"main"};
  CHECK(problem(p) == "rule 1 is the last but has a match");
  p = policy::builtin_policy();
  p.rules.clear();
  CHECK(problem(p) == "the policy has no rule");
  p = policy::fixtures::everything();
  p.signatures.trusted_keys[0].public_key.fill(0);
  CHECK(problem(p) == "trusted key `release-key` is a point of small order");

  // The key is exactly 32 bytes: 31 is refused by meaning, 33 by bound.
  std::string key31 = ipc::encode(policy::fixtures::everything());
  const size_t name = at(key31, std::string("release-key\x20\0\0\0", 15));  // the key's name, then its length
  put_u32(key31, name + 11, 31);
  CHECK(refusal<policy::Policy>(key31) == "a trusted key of 31 bytes where an Ed25519 public key has 32");
  std::string key33 = ipc::encode(policy::fixtures::everything());
  put_u32(key33, name + 11, 33);
  CHECK(refusal<policy::Policy>(key33) == "a string of 33 bytes where at most 32 may be");
}

TEST_CASE("results: filters per profile, one value or errors, frames") {
  ipc::ParseResult r;
  r.policy = ipc::ParsedPolicy{policy::builtin_policy(), policy::policy_digest(policy::builtin_policy()), {}};
  CHECK(refusal<ipc::ParseResult>(ipc::encode(r)) == "0 seccomp filters for 1 profiles");
  r.policy->filters = {std::string(12, 'x')};
  CHECK(refusal<ipc::ParseResult>(ipc::encode(r)) ==
        "the seccomp filter of profile `default` is 12 bytes, not a whole number of BPF instructions");
  r.policy->filters = {std::string(ipc::kMaxFilterBytes + 8, 'x')};
  CHECK(refusal<ipc::ParseResult>(ipc::encode(r)) == "a string of 32776 bytes where at most 32768 may be");
  r.policy->filters = {std::string(8, 'x')};
  r.policy->digest = "ABC";
  CHECK(refusal<ipc::ParseResult>(ipc::encode(r)) == "the policy's digest is not 64 lower-case hex digits");
  r.policy->digest = policy::policy_digest(policy::builtin_policy());
  r.diagnostics = "error";
  CHECK(refusal<ipc::ParseResult>(ipc::encode(r)) == "a result holding both a value and errors");
  r.job = small_job();
  r.diagnostics.clear();
  CHECK(refusal<ipc::ParseResult>(ipc::encode(r)) == "a result holding more than one of a job, a policy, settings, a workflow plan and orb names");
  CHECK(refusal<ipc::ParseResult>(ipc::encode(ipc::ParseResult{})) == "a result holding neither a value nor errors");

  ipc::ParseResult ok;
  ok.diagnostics = "config.yml:1:1: error: ...\n";
  std::string f = ipc::frame_result(ok);
  CHECK(ipc::decode_result_frame(f).ok());
  const std::string n = std::to_string(f.size() - ipc::kParseFrameHeaderBytes);
  CHECK(ipc::decode_result_frame(f + "x").error().message ==
        "the header declares " + n + " bytes but " + std::to_string(f.size() - 7) + " follow it");
  CHECK(ipc::decode_result_frame(f.substr(0, 5)).error().message == "the message is 5 bytes, shorter than its header");
  std::string magic = f;
  magic[0] ^= 1;
  CHECK(ipc::decode_result_frame(magic).error().message == "the frame does not start with the expected magic number");
  std::string huge = f;
  put_u32(huge, 4, 64u << 20);
  CHECK(ipc::decode_result_frame(huge).error().message == "the frame declares 67108864 bytes, more than the 33554432 allowed");
  CHECK(ipc::decode_request_frame(f).error().message == "the frame does not start with the expected magic number");

  ipc::ParseRequest q{ipc::ParseKind::Job, "job.yml", "steps: []", std::nullopt, {{"GATEHOUSE_X", "1"}}, {}};
  CHECK(ipc::decode_request_frame(ipc::frame_request(q)).error().message ==
        "environment variables in a request that is not for the config");
  ipc::BrokerSettings s{"runner 1", "/w", true, "/u", "/o", "/s", "/p", "", "", ""};
  ipc::ParseResult rs;
  rs.settings = s;
  CHECK(refusal<ipc::ParseResult>(ipc::encode(rs)).find("runner.name `runner 1` ") == 0);
  rs.settings->runner_name = "r1";
  rs.settings->spool_directory = "relative";
  CHECK(refusal<ipc::ParseResult>(ipc::encode(rs)) == "runner.spool_directory `relative` is not an absolute path");
  rs.settings->spool_directory = "/s";
  rs.settings->metrics_listen = "0.0.0.0:9100";
  CHECK(refusal<ipc::ParseResult>(ipc::encode(rs)) ==
        "metrics.listen `0.0.0.0:9100` is not a loopback address or unix socket");
}

// The broker's side of the parse child (broker/parse_client.cpp) against
// the real gatehouse-parse and a stand-in that misbehaves on request
// (parse_fake.cpp). Needs root: the child is dropped to nobody.
#include <doctest/doctest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "agent/config.hpp"
#include "broker/parse_client.hpp"
#include "sandbox/seccomp.hpp"
#include "tests/unit/read_file.hpp"

using namespace gh;
using Clock = std::chrono::steady_clock;

#if defined(GH_SANITIZED)  // meson's b_sanitize (tests/meson.build)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

namespace {

bool root() {
  if (geteuid() == 0) return true;
  MESSAGE("skipped: the parse child is started as nobody, which needs root");
  return false;
}

// A root-only folder for the cache, removed at the end.
struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/gh-parse-cache-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().string());
    return out;
  }
};

broker::ParseClientOptions real(const std::string& cache_dir = "") {
  broker::ParseClientOptions o;
  o.parser = GH_PARSE_BINARY;
  o.cache_dir = cache_dir;
  return o;
}

broker::ParseClientOptions fake(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  broker::ParseClientOptions o;
  o.parser = GH_PARSE_FAKE;
  o.cache_dir = "";
  o.timeout = timeout;
  return o;
}

std::string error_of(const Result<ipc::ParseResult>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

const char* const kJob = "version: 2.1\njobs:\n  build:\n    steps:\n      - checkout\n      - run: make test\n"
                         "  lint:\n    steps: [checkout]\n";

std::string status_field(const std::string& status, const std::string& field) {
  const size_t at = status.find("\n" + field + ":");
  if (at == std::string::npos) return "<missing>";
  const size_t start = status.find_first_not_of(" \t", at + field.size() + 2);
  return status.substr(start, status.find('\n', start) - start);
}

}  // namespace

TEST_CASE("a job parses in the child exactly as in-process, errors included") {
  if (!root()) return;
  auto r = broker::parse_job_confined(kJob, "config.yml", std::string("build"), real());
  INFO((r ? r->diagnostics : r.error().message));
  REQUIRE(r.ok());
  REQUIRE(r->job);
  auto local = job::parse_job_text("config.yml", kJob, std::string("build"));
  REQUIRE(local.job);
  CHECK(ipc::encode(*r->job) == ipc::encode(*local.job));
  CHECK(r->diagnostics.empty());

  // No --job with two jobs: the errors as `gatehouse run` prints them.
  auto refused = broker::parse_job_confined(kJob, "config.yml", std::nullopt, real());
  REQUIRE(refused.ok());
  CHECK_FALSE(refused->job);
  auto expected = job::parse_job_text("config.yml", kJob, std::nullopt);
  CHECK(refused->diagnostics == expected.diagnostics.render() + "available jobs: build lint\n");
  CHECK(refused->available_jobs == std::vector<std::string>{"build", "lint"});

  // A job named right, with an error of its own: no list of jobs after it.
  std::string broken = kJob;
  broken.replace(broken.find("steps:"), 6, "colour: red\n    steps:");
  auto named = broker::parse_job_confined(broken, "config.yml", std::string("build"), real());
  REQUIRE(named.ok());
  CHECK_FALSE(named->job);
  CHECK(named->diagnostics.find("unknown key `colour`") != std::string::npos);
  CHECK(named->diagnostics.find("available jobs") == std::string::npos);

  // Past the size limit: the parser's own words, and no child at all.
  const std::string big(job::kMaxJobFileBytes + 1, '#');
  const auto before = broker::parse_client_stats().children;
  auto over = broker::parse_job_confined(big, "big.yml", std::nullopt, real());
  REQUIRE(over.ok());
  CHECK(over->diagnostics == job::parse_job_text("big.yml", big, std::nullopt).diagnostics.render());
  CHECK(broker::parse_client_stats().children == before);
}

TEST_CASE("a 1 MiB job is written while the answer is read") {
  if (!root()) return;
  std::string text = "steps:\n  - run:\n      command: make\n      environment:\n        BIG: \"";
  text += std::string(job::kMaxJobFileBytes - text.size() - 2, 'x') + "\"\n";
  REQUIRE(text.size() == job::kMaxJobFileBytes);
  const auto start = Clock::now();
  auto r = broker::parse_job_confined(text, "big.yml", std::nullopt, real());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  INFO((r ? r->diagnostics : r.error().message));
  REQUIRE(r.ok());
  REQUIRE(r->job);
  CHECK(r->job->steps.at(0).run.environment.at(0).second.size() > 1000000);
  MESSAGE("a 1 MiB job through the parse child: " << ms << " ms");
}

TEST_CASE("a policy is parsed once, then answered from the cache") {
  if (!root()) return;
  TempDir cache;
  REQUIRE(chmod(cache.path.c_str(), 0700) == 0);
  const std::string text = read_all(GH_SOURCE_ROOT "/examples/policy.yaml");
  const auto s0 = broker::parse_client_stats();
  auto t0 = Clock::now();
  auto first = broker::parse_policy_confined(text, "policy.yaml", real(cache.path));
  const auto cold_ms = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count() / 1000.0;
  INFO((first ? first->diagnostics : first.error().message));
  REQUIRE(first.ok());
  REQUIRE(first->policy);
  const auto s1 = broker::parse_client_stats();
  CHECK(s1.children == s0.children + 1);
  CHECK(s1.cache_stores == s0.cache_stores + 1);
  const auto files = cache.entries();
  REQUIRE(files.size() == 1);
  struct stat st {};
  REQUIRE(stat(files[0].c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // The answer is the in-process parse, its digest, and each profile's filter.
  auto local = policy::parse_policy_text("policy.yaml", text);
  REQUIRE(local.policy);
  CHECK(ipc::encode(first->policy->policy) == ipc::encode(*local.policy));
  CHECK(first->policy->digest == policy::policy_digest(*local.policy));
  REQUIRE(first->policy->filters.size() == local.policy->profiles.size());
  for (size_t i = 0; i < local.policy->profiles.size(); ++i) {
    const auto& p = local.policy->profiles[i];
    auto prog = sandbox::compile_seccomp({p.seccomp.allow, p.seccomp.deny});
    REQUIRE(prog.ok());
    CHECK(first->policy->filters[i] ==
          std::string(reinterpret_cast<const char*>(prog->insns.data()), prog->insns.size() * sizeof(sock_filter)));
  }

  // The second time: no child (the counter does not move), the same answer.
  t0 = Clock::now();
  auto second = broker::parse_policy_confined(text, "policy.yaml", real(cache.path));
  const auto warm_ms = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count() / 1000.0;
  REQUIRE(second.ok());
  const auto s2 = broker::parse_client_stats();
  CHECK(s2.children == s1.children);
  CHECK(s2.cache_hits == s1.cache_hits + 1);
  CHECK(ipc::encode(*second) == ipc::encode(*first));
  MESSAGE("examples/policy.yaml: " << cold_ms << " ms through the child, " << warm_ms << " ms from the cache");

  // A different policy is a different entry.
  auto other = broker::parse_policy_confined(text + "\n# edited\n", "policy.yaml", real(cache.path));
  REQUIRE(other.ok());
  CHECK(broker::parse_client_stats().children == s2.children + 1);
  CHECK(cache.entries().size() == 2);

  // A damaged entry is not used: the child runs again and rewrites it.
  { FILE* f = fopen(files[0].c_str(), "w"); REQUIRE(f); fputs("damaged", f); fclose(f); }
  auto again = broker::parse_policy_confined(text, "policy.yaml", real(cache.path));
  REQUIRE(again.ok());
  CHECK(ipc::encode(*again) == ipc::encode(*first));
  CHECK(broker::parse_client_stats().children == s2.children + 2);
  // An entry others could write is not trusted (nor is such a folder).
  REQUIRE(chmod(files[0].c_str(), 0644) == 0);
  const auto s3 = broker::parse_client_stats();
  REQUIRE(broker::parse_policy_confined(text, "policy.yaml", real(cache.path)).ok());
  CHECK(broker::parse_client_stats().cache_hits == s3.cache_hits);
  REQUIRE(chmod(cache.path.c_str(), 0755) == 0);
  const auto s4 = broker::parse_client_stats();
  REQUIRE(broker::parse_policy_confined(text, "policy.yaml", real(cache.path)).ok());
  CHECK(broker::parse_client_stats().cache_hits == s4.cache_hits);
  CHECK(broker::parse_client_stats().cache_stores == s4.cache_stores);

  // A policy with errors is answered with them, and never cached.
  auto bad = broker::parse_policy_confined("version: 2\n", "bad.yaml", real(cache.path));
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->policy);
  CHECK(bad->diagnostics == policy::parse_policy_text("bad.yaml", "version: 2\n").diagnostics.render());
}

TEST_CASE("the built-in policy comes with its filter") {
  if (!root()) return;
  auto r = broker::builtin_policy_confined(real());
  REQUIRE(r.ok());
  REQUIRE(r->policy);
  CHECK(r->policy->digest == policy::policy_digest(policy::builtin_policy()));
  REQUIRE(r->policy->filters.size() == 1);
  auto prog = sandbox::compile_seccomp({});
  REQUIRE(prog.ok());
  CHECK(r->policy->filters[0].size() == prog->insns.size() * sizeof(sock_filter));
}

TEST_CASE("the broker's settings come from gatehouse.yaml without the token's source") {
  if (!root()) return;
  std::string text = read_all(GH_SOURCE_ROOT "/examples/gatehouse.yaml");
  auto r = broker::parse_settings_confined(text, "gatehouse.yaml", {{"GATEHOUSE_RUNNER_NAME", "from-env"}, {"PATH", "/bin"}},
                                           real());
  INFO((r ? r->diagnostics : r.error().message));
  REQUIRE(r.ok());
  REQUIRE(r->settings);
  CHECK(r->settings->runner_name == "from-env");
  CHECK(r->settings->working_directory == "/var/lib/gatehouse/work");
  CHECK(r->settings->uid_lock_directory == "/run/gatehouse/uids");
  CHECK(r->settings->spool_directory == "/var/lib/gatehouse/spool");
  CHECK(r->settings->policy == "/etc/gatehouse/policy.yaml");
  CHECK(r->settings->auth_token_file == "/etc/gatehouse/token");
  CHECK(r->settings->cleanup_working_directory);

  // No auth_token_file and no CREDENTIALS_DIRECTORY: the agent refuses it,
  // the broker's settings are still there.
  const std::string no_token = text.replace(text.find("  auth_token_file: /etc/gatehouse/token\n"), 40, "");
  CHECK_FALSE(agent::parse_agent_config("gatehouse.yaml", no_token, {}).config);
  auto r2 = broker::parse_settings_confined(no_token, "gatehouse.yaml", {}, real());
  REQUIRE(r2.ok());
  REQUIRE(r2->settings);
  CHECK(r2->settings->auth_token_file.empty());

  auto bad = broker::parse_settings_confined("runner: {slots: 99}\n", "gatehouse.yaml", {}, real());
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->settings);
  CHECK(bad->diagnostics == agent::parse_agent_config("gatehouse.yaml", "runner: {slots: 99}\n", {}, {.token_source = false})
                                .diagnostics.render());
  CHECK(bad->diagnostics.rfind("gatehouse.yaml:1:17: error: `runner.slots`: `99` is out of range\n", 0) == 0);
}

TEST_CASE("the child runs as nobody, with no_new_privs, seccomp, limits and nothing else") {
  if (!root()) return;
  std::string status, limits, environ_text;
  std::vector<std::string> fds;
  uid_t proc_owner = 1;
  auto opts = real();
  opts.on_started = [&](pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    // It waits for the request after confining itself: see it there.
    const auto give_up = Clock::now() + std::chrono::seconds(5);
    while (status_field(status, "Seccomp") != "2" && Clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      status = read_all(dir + "/status");
    }
    limits = read_all(dir + "/limits");
    environ_text = read_all(dir + "/environ");
    for (const auto& e : std::filesystem::directory_iterator(dir + "/fd"))
      fds.push_back(e.path().filename().string() + " " + std::filesystem::read_symlink(e.path()).string());
    struct stat st {};
    if (stat((dir + "/status").c_str(), &st) == 0) proc_owner = st.st_uid;
  };
  auto r = broker::parse_job_confined(kJob, "config.yml", std::string("lint"), opts);
  REQUIRE(r.ok());
  CHECK(r->job);
  CHECK(status_field(status, "Seccomp") == "2");
  CHECK(status_field(status, "NoNewPrivs") == "1");
  CHECK(status_field(status, "Uid") == "65534\t65534\t65534\t65534");
  CHECK(status_field(status, "Gid") == "65534\t65534\t65534\t65534");
  CHECK(status_field(status, "Groups") == "");
  CHECK(status_field(status, "CapEff") == "0000000000000000");
  CHECK(status_field(status, "CapPrm") == "0000000000000000");
  CHECK(status_field(status, "CapAmb") == "0000000000000000");
  CHECK(proc_owner == 0);  // /proc/PID/status belongs to root: the process is not dumpable
  CHECK(environ_text.empty());
  REQUIRE(fds.size() == 3);
  CHECK(fds[0].rfind("0 pipe:", 0) == 0);
  CHECK(fds[1].rfind("1 pipe:", 0) == 0);
  CHECK(fds[2] == "2 /dev/null");
  CHECK(limits.find("Max core file size        0                    0") != std::string::npos);
  CHECK(limits.find("Max file size             0                    0") != std::string::npos);
  CHECK(limits.find("Max open files            8                    8") != std::string::npos);
  CHECK(limits.find("Max cpu time              10                   11") != std::string::npos);
  // (Not under AddressSanitizer: its shadow memory needs terabytes of address space.)
  if (!kSanitized)
    CHECK(limits.find("Max address space         1073741824           1073741824") != std::string::npos);
}

TEST_CASE("a child that crashes, hangs, fails or breaks framing costs the job, with the reason") {
  if (!root()) return;
  CHECK(error_of(broker::parse_job_confined("crash-me", "x.yml", std::nullopt, fake())) ==
        "the job parser crashed (killed by signal 11); the job is refused");
  CHECK(error_of(broker::parse_job_confined("exit-me", "x.yml", std::nullopt, fake())) ==
        "the job parser failed (exit status 3: it could not apply its own seccomp filter); the job is refused");
  CHECK(error_of(broker::parse_job_confined("garbage-me", "x.yml", std::nullopt, fake())) ==
        "the job parser's answer is malformed: the frame does not start with the expected magic number; "
        "the job is refused");
  CHECK(error_of(broker::parse_job_confined("oversize-me", "x.yml", std::nullopt, fake())) ==
        "the job parser's answer is malformed: the frame declares 67108864 bytes, more than the 33554432 "
        "allowed; the job is refused");
  CHECK(error_of(broker::parse_policy_confined("crash-me", "p.yaml", fake())) ==
        "the policy parser crashed (killed by signal 11); no job runs under it");
  // Well-formed answers the broker still refuses: the wrong kind, a digest not the policy's own.
  CHECK(error_of(broker::parse_job_confined("wrong-kind-me", "x.yml", std::nullopt, fake())) ==
        "the job parser's answer is malformed: it answers a different kind of file than was asked for; "
        "the job is refused");
  CHECK(error_of(broker::parse_policy_confined("bad-digest-me", "p.yaml", fake())) ==
        "the policy parser's answer is malformed: its policy digest does not match the policy; no job runs under it");
  CHECK(error_of(broker::parse_job_confined("nothing", "x.yml", std::nullopt, fake())) ==
        "the job parser failed (exit status 9); the job is refused");

  pid_t hung = -1;
  auto opts = fake(std::chrono::milliseconds(1000));
  opts.on_started = [&](pid_t pid) { hung = pid; };
  const auto start = Clock::now();
  CHECK(error_of(broker::parse_job_confined("hang-me", "x.yml", std::nullopt, opts)) ==
        "the job parser did not answer within 1 s; the job is refused");
  const auto took = Clock::now() - start;
  CHECK(took >= std::chrono::milliseconds(1000));
  CHECK(took < std::chrono::milliseconds(3000));
  REQUIRE(hung > 0);
  CHECK(kill(hung, 0) == -1);  // killed and reaped, not left behind
  CHECK(errno == ESRCH);

  broker::ParseClientOptions missing;
  missing.parser = "/nonexistent/gatehouse-parse";
  CHECK(error_of(broker::parse_job_confined("steps: [checkout]", "x.yml", std::nullopt, missing)) ==
        "the job parser could not be started: the parser binary /nonexistent/gatehouse-parse cannot be opened: "
        "No such file or directory; reinstall gatehouse or set GATEHOUSE_PARSE; the job is refused");

  // GATEHOUSE_PARSE names the binary when the options do not.
  setenv("GATEHOUSE_PARSE", GH_PARSE_FAKE, 1);
  broker::ParseClientOptions from_env;
  from_env.cache_dir = "";
  CHECK(error_of(broker::parse_job_confined("crash-me", "x.yml", std::nullopt, from_env)) ==
        "the job parser crashed (killed by signal 11); the job is refused");
  unsetenv("GATEHOUSE_PARSE");
}

namespace {

// The answer the child must give: the in-process parse, as parse/main.cpp words it.
std::string expected_job_answer(const std::string& text, const std::string& display,
                                const std::optional<std::string>& name) {
  auto o = job::parse_job_text(display, text, name);
  if (o.job) return ipc::encode(*o.job);
  if (!o.needed_orbs.empty()) {
    std::string t = "needs orbs:";
    for (const auto& n : o.needed_orbs) t += " " + n;
    return t;
  }
  std::string t = o.diagnostics.render();
  if (o.choice_error && !o.available_jobs.empty()) {
    t += "available jobs:";
    for (const auto& j : o.available_jobs) t += " " + j;
    t += "\n";
  }
  return t;
}

void same_as_in_process(const std::string& text, const std::string& display, const std::optional<std::string>& name) {
  auto r = broker::parse_job_confined(text, display, name, real());
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.ok());
  std::string got = r->job ? ipc::encode(*r->job) : r->diagnostics;
  if (!r->needed_orbs.empty()) {
    got = "needs orbs:";
    for (const auto& n : r->needed_orbs) got += " " + n;
  }
  CHECK(got == expected_job_answer(text, display, name));
}

}  // namespace

TEST_CASE("under its seccomp filter the child answers the whole corpus as the parser does in-process") {
  if (!root()) return;
  std::error_code ec;
  REQUIRE_MESSAGE(std::filesystem::is_directory(GH_CORPUS_DIR, ec), "the CircleCI corpus is missing: " GH_CORPUS_DIR);
  int runs = 0;
  const auto start = Clock::now();
  for (const auto& e : std::filesystem::directory_iterator(GH_CORPUS_DIR)) {
    if (e.path().extension() != ".yml") continue;
    CAPTURE(e.path().string());
    const std::string text = read_all(e.path().string());
    same_as_in_process(text, e.path().string(), std::nullopt);
    ++runs;
    const auto names = job::parse_job_text(e.path().string(), text, std::nullopt).available_jobs;
    if (!names.empty()) {  // the first and the last job: both paths, without a child per job
      same_as_in_process(text, e.path().string(), names.front());
      same_as_in_process(text, e.path().string(), names.back());
      runs += 2;
    }
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  MESSAGE(runs << " corpus parses through the child in " << ms << " ms (" << ms / (runs ? runs : 1) << " ms each)");
  CHECK(runs >= 60);

  // Every error policy, and the hostile shapes the job parser refuses.
  for (const auto& e : std::filesystem::directory_iterator(GH_SOURCE_ROOT "/tests/golden")) {
    if (e.path().extension() != ".yaml") continue;
    const std::string text = read_all(e.path().string());
    auto r = broker::parse_policy_confined(text, "p.yaml", real());
    REQUIRE(r.ok());
    auto local = policy::parse_policy_text("p.yaml", text);
    CHECK((r->policy ? ipc::encode(r->policy->policy) : r->diagnostics) ==
          (local.policy ? ipc::encode(*local.policy) : local.diagnostics.render()));
  }
  std::string laughs = "version: 2.1\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    laughs += std::string(1, c) + ": &" + c + " [";
    for (int k = 0; k < 9; ++k) laughs += (k ? ",*" : "*") + std::string(1, static_cast<char>(c - 1));
    laughs += "]\n";
  }
  laughs += "jobs:\n  j:\n    environment: *i\n    steps: [checkout]\n";
  same_as_in_process(laughs, "bomb.yml", std::nullopt);
  same_as_in_process("version: 2.1\nx: " + std::string(100000, '[') + "\njobs: {}\n", "deep.yml", std::nullopt);
  same_as_in_process(std::string("steps:\n  - run: \"a\\0b\"\n"), "nul.yml", std::nullopt);
  same_as_in_process("steps: [checkout]\n\x01\xff\n", "bytes.yml", std::nullopt);
}

TEST_CASE("errors past 1 MiB are cut, saying how many were left out") {
  if (!root()) return;
  // One long line with an error per key: each error shows the whole line,
  // so the full rendering is about 1500 times the line.
  std::string line = "environment: {";
  for (int i = 0; i < 1500; ++i) line += (i ? ", 9v" : "9v") + std::to_string(i) + ": x";
  line += "}\n";
  const std::string text = "steps: [checkout]\n" + line;
  const auto local = job::parse_job_text("wide.yml", text, std::nullopt);
  const size_t total = local.diagnostics.all().size();
  REQUIRE(total == 1500);
  const std::string full = local.diagnostics.render();
  REQUIRE(full.size() > 10 * ipc::kMaxDiagnosticsBytes);
  auto r = broker::parse_job_confined(text, "wide.yml", std::nullopt, real());
  REQUIRE(r.ok());
  REQUIRE_FALSE(r->job);
  CHECK(r->diagnostics.size() <= ipc::kMaxDiagnosticsBytes);
  const size_t note = r->diagnostics.find("gatehouse-parse: ");
  REQUIRE(note != std::string::npos);
  // What is shown is the start of the full rendering, whole errors first.
  const std::string shown = r->diagnostics.substr(0, note);
  size_t whole = 0, consumed = 0;
  for (; whole < total; ++whole) {
    const std::string one = local.diagnostics.render(local.diagnostics.all()[whole]);
    if (shown.compare(consumed, one.size(), one) != 0) break;
    consumed += one.size();
  }
  CHECK(whole > 10);
  // Then, while they fit, the first line (file:line:col: message) of the next ones.
  size_t headers = 0;
  for (size_t i = consumed; i < shown.size(); ++headers) {
    const std::string one = local.diagnostics.render(local.diagnostics.all()[whole + headers]);
    const std::string first = one.substr(0, one.find('\n') + 1);
    REQUIRE(shown.compare(i, first.size(), first) == 0);
    i += first.size();
  }
  CHECK(headers > 0);
  const size_t partial = headers;
  CHECK(r->diagnostics.substr(note) == "gatehouse-parse: " + std::to_string(total - whole - partial) +
                                           " more errors left out\n");
}

TEST_CASE("a job that aliases make larger than the broker takes is refused where it is named") {
  if (!root()) return;
  // One 900 KiB value, named by 100 variables: 88 MiB once expanded. The
  // processing bound (8 MiB of processed config) refuses it before any typed
  // job is made, in process and in the child alike.
  std::string text = "version: 2.1\nv: &v \"" + std::string(900 * 1024, 'x') +
                     "\"\njobs:\n  big:\n    steps: [checkout]\n    environment:\n";
  for (int i = 0; i < 100; ++i) text += "      V" + std::to_string(i) + ": *v\n";
  REQUIRE(text.size() < job::kMaxJobFileBytes);
  auto local = job::parse_job_text("big.yml", text, std::nullopt);
  CHECK_FALSE(local.job);
  CHECK(local.diagnostics.render().find("big.yml:4:3: error: job `big` expands to more than 8 MiB") != std::string::npos);
  auto r = broker::parse_job_confined(text, "big.yml", std::nullopt, real());
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.ok());
  CHECK_FALSE(r->job);
  CHECK(r->diagnostics.find("big.yml:4:3: error: job `big` expands to more than 8 MiB") == 0);
}

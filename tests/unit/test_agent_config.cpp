// The agent's configuration (broker/agent_config.cpp): every key's value,
// defaults, every key's errors at file:line:col, GATEHOUSE_* overrides, and
// the runner token file's checks. The token tests chown, so they run as root.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "agent/config.hpp"
#include "agent/token.hpp"

using gh::agent::AgentConfig;
using gh::agent::AgentConfigOutcome;
using gh::agent::load_agent_config;
using gh::agent::parse_agent_config;
using gh::agent::RunnerMode;
using Env = std::map<std::string, std::string>;

namespace {

// What the agent does with a token source: open it with every check (the
// broker's part under `gatehouse serve`), then read and check the token.
gh::Result<std::string> load_runner_token(const AgentConfig& c, const char* credentials_directory) {
  auto fd = gh::agent::open_runner_token(c.api.auth_token_file, credentials_directory);
  if (!fd) return fd.error();
  return gh::agent::read_runner_token(fd->get(), c.api.auth_token_file);
}


AgentConfigOutcome parse(const std::string& text, const Env& env = {}) {
  return parse_agent_config("gatehouse.yaml", text, env);
}

bool has_error(const AgentConfigOutcome& o, int line, int col, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.mark.line == line && d.mark.column == col &&
        d.message.find(what) != std::string::npos)
      return true;
  return false;
}

bool has_error(const AgentConfigOutcome& o, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.message.find(what) != std::string::npos) return true;
  return false;
}

const std::string kMinimal =
    "api:\n"
    "  url: https://ci.example.com\n"
    "  auth_token_file: /etc/gatehouse/token\n"
    "runner:\n"
    "  name: host-1\n"
    "  resource_class: acme/linux\n";

// The minimal file with one key set to `value` (replaced if the minimal
// file has it, else added at the end of its section); `line` receives the
// line the key is on.
std::string with_key(const std::string& section, const std::string& key, const std::string& value, int& line) {
  std::vector<std::tuple<std::string, std::string, std::string>> keys = {{"api", "url", "https://ci.example.com"},
                                                                         {"api", "auth_token_file", "/etc/gatehouse/token"},
                                                                         {"runner", "name", "host-1"},
                                                                         {"runner", "resource_class", "acme/linux"}};
  bool replaced = false;
  for (auto& [s, k, v] : keys)
    if (s == section && k == key) v = value, replaced = true;
  if (!replaced) keys.emplace_back(section, key, value);
  std::string text;
  int n = 0;
  for (const std::string sec : {"api", "runner", "logging", "metrics", ""}) {
    bool opened = false;
    for (const auto& [s, k, v] : keys) {
      if (s != sec) continue;
      if (!sec.empty() && !opened) {
        text += sec + ":\n";
        ++n;
        opened = true;
      }
      text += (sec.empty() ? "" : "  ") + k + ": " + v + "\n";
      ++n;
      if (s == section && k == key) line = n;
    }
  }
  return text;
}

}  // namespace

TEST_CASE("a full file sets every key") {
  const std::string text =
      "api:\n"
      "  url: https://ci.example.com:8443/gatehouse/\n"
      "  auth_token_file: /etc/gatehouse/token\n"
      "  ca_file: /etc/gatehouse/ca.pem\n"
      "  client_cert: /etc/gatehouse/client.pem\n"
      "  client_key: /etc/gatehouse/client.key\n"
      "  pinned_public_key: sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;sha256//"
      "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=\n"
      "runner:\n"
      "  name: build-host-1\n"
      "  resource_class: acme/linux-large\n"
      "  working_directory: /srv/gh/work\n"
      "  cleanup_working_directory: false\n"
      "  mode: single-task\n"
      "  max_run_time: 1h30m\n"
      "  idle_timeout: 10m\n"
      "  slots: 8\n"
      "  spool_directory: /srv/gh/spool\n"
      "  spool_limit: 64M\n"
      "  min_free_space: 20G\n"
      "  uid_lock_directory: /run/gh/uids\n"
      "policy: /srv/gh/policy.yaml\n"
      "logging:\n"
      "  level: debug\n"
      "  file: /var/log/gatehouse.log\n"
      "metrics:\n"
      "  listen: '[::1]:9100'\n";
  auto o = parse(text);
  INFO(o.diagnostics.render());
  REQUIRE(o.config);
  const AgentConfig& c = *o.config;
  CHECK(c.api.url == "https://ci.example.com:8443/gatehouse");  // trailing / dropped
  CHECK(c.api.auth_token_file == "/etc/gatehouse/token");
  CHECK(c.api.ca_file == "/etc/gatehouse/ca.pem");
  CHECK(c.api.client_cert == "/etc/gatehouse/client.pem");
  CHECK(c.api.client_key == "/etc/gatehouse/client.key");
  CHECK(c.api.pinned_public_key.find(";sha256//BBBB") != std::string::npos);
  CHECK(c.runner.name == "build-host-1");
  CHECK(c.runner.resource_class == "acme/linux-large");
  CHECK(c.runner.working_directory == "/srv/gh/work");
  CHECK(c.runner.cleanup_working_directory == false);
  CHECK(c.runner.mode == RunnerMode::SingleTask);
  CHECK(c.runner.max_run_time_s == 5400);
  CHECK(c.runner.idle_timeout_s == 600);
  CHECK(c.runner.slots == 8);
  CHECK(c.runner.spool_directory == "/srv/gh/spool");
  CHECK(c.runner.spool_limit == 64ull << 20);
  CHECK(c.runner.min_free_space == 20ull << 30);
  CHECK(c.runner.uid_lock_directory == "/run/gh/uids");
  CHECK(c.policy == "/srv/gh/policy.yaml");
  CHECK(c.logging.level == "debug");
  CHECK(c.logging.file == "/var/log/gatehouse.log");
  CHECK(c.metrics_listen == "[::1]:9100");
  CHECK(gh::agent::api_url_problem("https://[::1]:8443/.well-known/ci").empty());
  CHECK(gh::agent::api_url_problem("HTTPS://ci.example.com/").empty());
}

TEST_CASE("defaults follow the CircleCI runner where it has them") {
  auto o = parse(kMinimal);
  INFO(o.diagnostics.render());
  REQUIRE(o.config);
  const AgentConfig& c = *o.config;
  CHECK(c.runner.working_directory == "/var/lib/gatehouse/work");
  CHECK(c.runner.cleanup_working_directory == true);
  CHECK(c.runner.mode == RunnerMode::Continuous);
  CHECK(c.runner.max_run_time_s == 5 * 3600);
  CHECK(c.runner.idle_timeout_s == 0);
  CHECK(c.runner.slots == 1);
  CHECK(c.runner.spool_directory == "/var/lib/gatehouse/spool");
  CHECK(c.runner.spool_limit == 256ull << 20);
  CHECK(c.runner.min_free_space == 1ull << 30);
  CHECK(c.runner.uid_lock_directory == "/run/gatehouse/uids");
  CHECK(c.policy == "/etc/gatehouse/policy.yaml");
  CHECK(c.logging.level == "info");
  CHECK(c.logging.file.empty());
  CHECK(c.metrics_listen.empty());
  CHECK(c.api.ca_file.empty());
  CHECK(c.api.pinned_public_key.empty());
}

TEST_CASE("every key's bad value is an error at its line:col with what is allowed") {
  struct Case {
    const char* section;
    const char* key;
    const char* value;
    const char* fragment;
  };
  const Case cases[] = {
      {"api", "url", "http://ci.example.com", "uses http://"},
      {"api", "url", "ftp://ci.example.com", "is not an https:// URL"},
      {"api", "url", "https://user:pw@ci.example.com", "holds credentials"},
      {"api", "url", "https://ci.example.com:99999", "port that is not 1 to 65535"},
      {"api", "url", "https://ci.example.com/?x=1", "query or a fragment"},
      {"api", "url", "https://", "has no host"},
      {"api", "url", "https://ci.example.com/a/../b", "`..` path component"},
      {"api", "url", "https://ci.example.com//b", "empty, `.` or `..` path component"},
      {"api", "auth_token_file", "token", "is not an absolute path"},
      {"api", "ca_file", "/etc/../ca.pem", "`..` component"},
      {"api", "client_cert", "client.pem", "is not an absolute path"},
      {"api", "client_key", "/etc//key", "empty component"},
      {"api", "pinned_public_key", "sha1//AAAA", "does not start with sha256//"},
      {"api", "pinned_public_key", "sha256//AAAA", "32-byte SHA-256"},
      {"runner", "name", "build host", "must be 1 to 128 characters"},
      {"runner", "resource_class", "acme:linux", "must be 1 to 128 characters"},
      {"runner", "working_directory", "work", "is not an absolute path"},
      {"runner", "cleanup_working_directory", "maybe", "is not true or false"},
      {"runner", "mode", "forever", "is not a mode"},
      {"runner", "max_run_time", "5 hours", "is not a duration"},
      {"runner", "max_run_time", "0", "is out of range"},
      {"runner", "max_run_time", "31d", "is out of range"},
      {"runner", "idle_timeout", "1w", "is not a duration"},
      {"runner", "slots", "0", "is out of range"},
      {"runner", "slots", "65", "is out of range"},
      {"runner", "slots", "two", "is not a whole number"},
      {"runner", "slots", "-1", "is not a whole number"},
      {"runner", "spool_directory", "spool", "is not an absolute path"},
      {"runner", "spool_limit", "10Q", "is not a size"},
      {"runner", "spool_limit", "512K", "is out of range"},
      {"runner", "min_free_space", "2000T", "is out of range"},
      {"runner", "uid_lock_directory", "/run/uids/", "ends in `/`"},
      {"runner", "drain_grace", "soon", "is not a duration"},
      {"runner", "drain_grace", "25h", "is out of range"},
      {"runner", "lock_directory", "runners", "is not an absolute path"},
      {"", "policy", "policy.yaml", "is not an absolute path"},
      {"logging", "level", "verbose", "is not a log level"},
      {"logging", "file", "agent.log", "is not an absolute path"},
      {"metrics", "listen", "0.0.0.0:9100", "loopback"},
      {"metrics", "listen", "127.0.0.1:0", "port that is not 1 to 65535"},
      {"metrics", "listen", "unix:metrics.sock", "is not an absolute path"},
  };
  for (const auto& c : cases) {
    int line = 0;
    const std::string text = with_key(c.section, c.key, c.value, line);
    const int col = (*c.section ? 3 : 1) + static_cast<int>(std::string(c.key).size()) + 2;
    const std::string dotted = *c.section ? std::string(c.section) + "." + c.key : std::string(c.key);
    auto o = parse(text);
    CAPTURE(text);
    INFO(o.diagnostics.render());
    CHECK_FALSE(o.config);
    CHECK(has_error(o, line, col, "`" + dotted + "`: "));
    CHECK(has_error(o, line, col, c.fragment));
    REQUIRE(o.diagnostics.all().size() == 1);
    CHECK_FALSE(o.diagnostics.all()[0].allowed.empty());
  }
}

TEST_CASE("the rendered error shows file:line:col, the line, a caret and what is allowed") {
  int line = 0;
  auto o = parse(with_key("runner", "slots", "99", line));
  REQUIRE(line == 7);
  CHECK(o.diagnostics.render() ==
        "gatehouse.yaml:7:10: error: `runner.slots`: `99` is out of range\n"
        "    slots: 99\n"
        "           ^\n"
        "  allowed here: a whole number from 1 to 64\n");
}

TEST_CASE("unknown keys, wrong types and several errors in one run") {
  const std::string text =
      "api:\n"                                   // 1
      "  url: http://ci.example.com\n"           // 2
      "  auth_token_file: /etc/gatehouse/token\n"  // 3
      "  token: abc\n"                           // 4
      "runner:\n"                                // 5
      "  name: host-1\n"                         // 6
      "  resource_class: acme/linux\n"           // 7
      "  slots: [1, 2]\n"                        // 8
      "  slot: 2\n"                              // 9
      "storage: {}\n"                            // 10
      "logging: debug\n";                        // 11
  auto o = parse(text);
  INFO(o.diagnostics.render());
  CHECK_FALSE(o.config);
  CHECK(has_error(o, 2, 8, "uses http://"));
  CHECK(has_error(o, 4, 3, "unknown key `token` in `api`"));
  CHECK(has_error(o, 8, 10, "`runner.slots` must be a string"));
  CHECK(has_error(o, 9, 3, "unknown key `slot` in `runner`"));
  CHECK(has_error(o, 10, 1, "unknown key `storage` at the top level"));
  CHECK(has_error(o, 11, 10, "`logging` must be a mapping"));
  CHECK(o.diagnostics.all().size() == 6);
}

TEST_CASE("hostile YAML is stopped by the shared guard") {
  auto dup = parse(kMinimal + "  name: host-2\n");
  CHECK_FALSE(dup.config);
  CHECK(has_error(dup, 7, 3, "duplicate"));
  auto tab = parse("api:\n\turl: https://x\n");
  CHECK_FALSE(tab.config);
  auto big = parse(kMinimal + "# " + std::string(70 * 1024, 'x') + "\n");
  CHECK_FALSE(big.config);
  CHECK(has_error(big, "more than the limit of 64 KiB"));
}

TEST_CASE("required keys and combinations") {
  auto none = parse("runner:\n  name: host-1\n");
  INFO(none.diagnostics.render());
  CHECK(has_error(none, "`api.url` is not set"));
  CHECK(has_error(none, "`runner.resource_class` is not set"));
  CHECK(has_error(none, "no runner token"));
  // The systemd credential stands in for api.auth_token_file.
  auto creds = parse("api: {url: https://x.example}\nrunner: {name: a, resource_class: b}\n",
                     {{"CREDENTIALS_DIRECTORY", "/run/credentials/gatehouse.service"}});
  INFO(creds.diagnostics.render());
  CHECK(creds.config);
  // The broker's reading (the parse child) does not ask for a token source;
  // everything else is still required.
  const std::string no_token = "api: {url: https://x.example}\nrunner: {name: a, resource_class: b}\n";
  CHECK_FALSE(parse(no_token).config);
  CHECK(parse_agent_config("gatehouse.yaml", no_token, {}, {.token_source = false}).config);
  CHECK(has_error(parse_agent_config("gatehouse.yaml", "runner:\n  name: host-1\n", {}, {.token_source = false}),
                  "`api.url` is not set"));
  auto half = parse(kMinimal.substr(0, kMinimal.find("runner:")) + "  client_cert: /etc/c.pem\n" +
                    kMinimal.substr(kMinimal.find("runner:")));
  CHECK(has_error(half, 4, 3, "`api.client_cert` is set without `api.client_key`"));
  int line = 0;
  auto overlap = parse(with_key("runner", "spool_directory", "/var/lib/gatehouse/work/spool", line));
  CHECK(has_error(overlap, line, 3, "overlap"));
  // An empty file is allowed: everything may come from the environment.
  auto empty = parse("# all from the environment\n\n", {{"GATEHOUSE_API_URL", "https://ci.example.com"},
                          {"GATEHOUSE_API_AUTH_TOKEN_FILE", "/etc/gatehouse/token"},
                          {"GATEHOUSE_RUNNER_NAME", "env-host"},
                          {"GATEHOUSE_RUNNER_RESOURCE_CLASS", "acme/env"}});
  INFO(empty.diagnostics.render());
  REQUIRE(empty.config);
  CHECK(empty.config->runner.name == "env-host");
}

TEST_CASE("GATEHOUSE_* variables override the file") {
  int line = 0;
  const std::string text = with_key("runner", "slots", "2", line) + "metrics:\n  listen: 127.0.0.1:9100\n";
  auto o = parse(text, {{"GATEHOUSE_RUNNER_SLOTS", "4"},
                        {"GATEHOUSE_RUNNER_MAX_RUN_TIME", "2h"},
                        {"GATEHOUSE_RUNNER_CLEANUP_WORKING_DIRECTORY", "false"},
                        {"GATEHOUSE_POLICY", "/srv/policy.yaml"},
                        {"GATEHOUSE_METRICS_LISTEN", ""},  // turns the endpoint off
                        {"GATEHOUSE_CONFIG", "/etc/other.yaml"},  // the command line's, not a key
                        {"PATH", "/usr/bin"}});
  INFO(o.diagnostics.render());
  REQUIRE(o.config);
  CHECK(o.config->runner.slots == 4);
  CHECK(o.config->runner.max_run_time_s == 7200);
  CHECK(o.config->runner.cleanup_working_directory == false);
  CHECK(o.config->policy == "/srv/policy.yaml");
  CHECK(o.config->metrics_listen.empty());

  auto bad = parse(kMinimal, {{"GATEHOUSE_RUNNER_SLOTS", "lots"},
                              {"GATEHOUSE_API_URL", "http://ci.example.com"},
                              {"GATEHOUSE_RUNNER_SLOT", "2"},
                              {"GATEHOUSE_RUNNER_NAME", "host\x1b[2J"}});
  INFO(bad.diagnostics.render());
  CHECK_FALSE(bad.config);
  CHECK(has_error(bad, 0, 0, "environment variable GATEHOUSE_RUNNER_SLOTS (`runner.slots`): `lots` is not a whole number"));
  CHECK(has_error(bad, 0, 0, "environment variable GATEHOUSE_API_URL (`api.url`): `http://ci.example.com` uses http://"));
  CHECK(has_error(bad, 0, 0, "environment variable GATEHOUSE_RUNNER_SLOT is not a setting"));
  CHECK(has_error(bad, 0, 0, "GATEHOUSE_RUNNER_NAME (`runner.name`): `host?[2J` holds control characters"));
  CHECK(bad.diagnostics.all().size() == 4);
}

TEST_CASE("load_agent_config reads a file and names it") {
  char tmpl[] = "/tmp/gh-agent-config-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  const std::string path = dir + "/gatehouse.yaml";
  std::ofstream(path) << kMinimal << "  slots: 3\n";
  auto o = load_agent_config(path, {});
  INFO(o.diagnostics.render());
  REQUIRE(o.config);
  CHECK(o.config->runner.slots == 3);
  std::ofstream(path) << kMinimal << "  slots: 300\n";
  auto bad = load_agent_config(path, {});
  CHECK(bad.diagnostics.render().starts_with(path + ":7:10: error:"));
  auto missing = load_agent_config(dir + "/nope.yaml", {});
  CHECK_FALSE(missing.config);
  CHECK(missing.diagnostics.render().find("nope.yaml") != std::string::npos);
  (void)!system(("rm -rf '" + dir + "'").c_str());
}

// ---- the runner token ------------------------------------------------------

namespace {

const std::string kToken = "gh-runner-0123456789abcdefABCDEF";

struct TokenDir {
  std::string dir;
  TokenDir() {
    char tmpl[] = "/tmp/gh-token-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
  }
  ~TokenDir() { (void)!system(("rm -rf '" + dir + "'").c_str()); }
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) const {
    const std::string p = dir + "/" + name;
    std::ofstream(p, std::ios::trunc) << content;
    REQUIRE(chmod(p.c_str(), mode) == 0);
    return p;
  }
};

AgentConfig with_token_file(const std::string& path) {
  AgentConfig c;
  c.api.auth_token_file = path;
  return c;
}

}  // namespace

TEST_CASE("the runner token file must be root's and private") {
  if (geteuid() != 0) {
    MESSAGE("SKIPPED: the token file checks need root (they chown)");
    return;
  }
  TokenDir t;
  const std::string good = t.write("token", kToken + "\n");
  auto ok = load_runner_token(with_token_file(good), nullptr);
  INFO((ok ? std::string() : ok.error().message));
  REQUIRE(ok);
  CHECK(*ok == kToken);  // one trailing newline dropped

  const std::string loose = t.write("loose", kToken, 0644);
  auto r = load_runner_token(with_token_file(loose), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("readable or writable by group or others (mode 0644): run `chmod 600 " + loose + "`") !=
        std::string::npos);

  const std::string theirs = t.write("theirs", kToken);
  REQUIRE(chown(theirs.c_str(), 1000, 1000) == 0);
  r = load_runner_token(with_token_file(theirs), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("owned by uid 1000, not root: run `chown root " + theirs + "`") != std::string::npos);

  const std::string bad = t.write("bad", "not a token: it has spaces\n");
  r = load_runner_token(with_token_file(bad), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("is not valid") != std::string::npos);
  CHECK(r.error().message.find("spaces") == std::string::npos);  // the token is never repeated

  r = load_runner_token(with_token_file(t.dir + "/absent"), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("does not exist") != std::string::npos);

  REQUIRE(mkfifo((t.dir + "/fifo").c_str(), 0600) == 0);
  r = load_runner_token(with_token_file(t.dir + "/fifo"), nullptr);  // must not block
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("is not a regular file") != std::string::npos);
}

TEST_CASE("a directory others can write on the way to the token is refused") {
  if (geteuid() != 0) {
    MESSAGE("SKIPPED: the token file checks need root");
    return;
  }
  TokenDir t;
  REQUIRE(mkdir((t.dir + "/sub").c_str(), 0700) == 0);
  const std::string file = t.write("sub/token", kToken);
  REQUIRE(chmod((t.dir + "/sub").c_str(), 0770) == 0);
  auto r = load_runner_token(with_token_file(file), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("directory " + t.dir + "/sub is writable by group or others (mode 0770): run `chmod go-w") !=
        std::string::npos);
  REQUIRE(chmod((t.dir + "/sub").c_str(), 0700) == 0);
  REQUIRE(chown((t.dir + "/sub").c_str(), 1000, 1000) == 0);
  r = load_runner_token(with_token_file(file), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("directory " + t.dir + "/sub is owned by uid 1000") != std::string::npos);
  // A symlink is followed to the real file, and the real path is checked.
  REQUIRE(symlink(file.c_str(), (t.dir + "/link").c_str()) == 0);
  r = load_runner_token(with_token_file(t.dir + "/link"), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("owned by uid 1000") != std::string::npos);
}

TEST_CASE("systemd's credentials directory is used when it is given") {
  if (geteuid() != 0) {
    MESSAGE("SKIPPED: the token file checks need root");
    return;
  }
  TokenDir creds, other;
  const std::string other_token = "other-token-0123456789";
  creds.write("gatehouse-token", kToken, 0400);
  const std::string file = other.write("token", other_token);
  auto r = load_runner_token(with_token_file(file), creds.dir.c_str());
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r);
  CHECK(*r == kToken);
  CHECK(*load_runner_token(with_token_file(file), nullptr) == other_token);
  CHECK(*load_runner_token(with_token_file(file), "") == other_token);  // set but empty: not systemd's

  TokenDir empty;
  r = load_runner_token(with_token_file(file), empty.dir.c_str());
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("LoadCredential=gatehouse-token") != std::string::npos);
  empty.write("gatehouse-token", "short");
  r = load_runner_token(with_token_file(file), empty.dir.c_str());
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("is not valid") != std::string::npos);
}

TEST_CASE("examples/gatehouse.yaml is valid and shows the defaults") {
  auto o = load_agent_config(std::string(GH_SOURCE_ROOT) + "/examples/gatehouse.yaml", {});
  INFO(o.diagnostics.render());
  REQUIRE(o.config);
  AgentConfig defaults;
  CHECK(o.config->api.url == "https://ci.example.com");
  CHECK(o.config->runner.name == "build-host-1");
  CHECK(o.config->runner.working_directory == defaults.runner.working_directory);
  CHECK(o.config->runner.max_run_time_s == defaults.runner.max_run_time_s);
  CHECK(o.config->runner.spool_limit == defaults.runner.spool_limit);
  CHECK(o.config->runner.min_free_space == defaults.runner.min_free_space);
  CHECK(o.config->runner.uid_lock_directory == defaults.runner.uid_lock_directory);
  CHECK(o.config->runner.drain_grace_s == defaults.runner.drain_grace_s);
  CHECK(o.config->runner.lock_directory == defaults.runner.lock_directory);
  CHECK(o.config->runner.uid_slice_count == 1);
  CHECK(o.config->policy == defaults.policy);
  CHECK_FALSE(o.config->policy_set);  // commented out: the built-in policy until the file exists
  CHECK(o.config->metrics_listen.empty());
  CHECK(gh::agent::pinned_key_problem("sha256//Wn1bBd2Ma4mEuLJu0ufHrY+9XVdqVgFoHbXLr0OwT1w=").empty());
}

TEST_CASE("drain grace, the runner lock folder, the uid slice, and whether the policy was named") {
  auto d = parse(kMinimal);
  REQUIRE(d.config);
  CHECK(d.config->runner.drain_grace_s == 300);
  CHECK(d.config->runner.lock_directory == "/run/gatehouse/runners");
  CHECK(d.config->runner.uid_slice_index == 0);
  CHECK(d.config->runner.uid_slice_count == 1);
  CHECK_FALSE(d.config->policy_set);  // the default path: the broker may run the built-in policy
  auto o = parse(kMinimal + "  drain_grace: 1h30m\n  lock_directory: /run/gh/runners\n"
                            "  uid_slice: {index: 2, count: 3}\npolicy: /etc/gatehouse/policy.yaml\n");
  INFO(o.diagnostics.render());
  REQUIRE(o.config);
  CHECK(o.config->runner.drain_grace_s == 5400);
  CHECK(o.config->runner.lock_directory == "/run/gh/runners");
  CHECK(o.config->runner.uid_slice_index == 2);
  CHECK(o.config->runner.uid_slice_count == 3);
  CHECK(o.config->policy_set);  // named, even as the default path: it must exist
  auto e = parse(kMinimal, {{"GATEHOUSE_RUNNER_DRAIN_GRACE", "0"},
                            {"GATEHOUSE_RUNNER_LOCK_DIRECTORY", "/run/other"},
                            {"GATEHOUSE_RUNNER_UID_SLICE_INDEX", "1"},
                            {"GATEHOUSE_RUNNER_UID_SLICE_COUNT", "2"},
                            {"GATEHOUSE_POLICY", "/etc/gatehouse/policy.yaml"}});
  INFO(e.diagnostics.render());
  REQUIRE(e.config);
  CHECK(e.config->runner.drain_grace_s == 0);
  CHECK(e.config->runner.lock_directory == "/run/other");
  CHECK(e.config->runner.uid_slice_index == 1);
  CHECK(e.config->runner.uid_slice_count == 2);
  CHECK(e.config->policy_set);
  // Half a slice, an index past the count, out of range, unknown keys, a
  // scalar where the map goes.
  auto half = parse(kMinimal + "  uid_slice: {count: 2}\n");
  CHECK(has_error(half, 7, 15, "`runner.uid_slice.count` is set without `runner.uid_slice.index`"));
  auto half_env = parse(kMinimal, {{"GATEHOUSE_RUNNER_UID_SLICE_INDEX", "0"}});
  CHECK(has_error(half_env, "`runner.uid_slice.index` is set without `runner.uid_slice.count`"));
  auto past = parse(kMinimal + "  uid_slice:\n    index: 2\n    count: 2\n");
  CHECK(has_error(past, 8, 5, "`runner.uid_slice.index` is 2, but 2 slices are numbered 0 to 1"));
  auto big = parse(kMinimal + "  uid_slice: {index: 0, count: 65}\n");
  CHECK(has_error(big, 7, 32, "`runner.uid_slice.count`: `65` is out of range"));
  auto unknown = parse(kMinimal + "  uid_slice: {index: 0, count: 2, size: 8}\n");
  CHECK(has_error(unknown, 7, 35, "unknown key `size` in `runner.uid_slice`"));
  CHECK(unknown.diagnostics.all().at(0).allowed == "index, count");
  auto scalar = parse(kMinimal + "  uid_slice: 1/2\n");
  CHECK(has_error(scalar, "`uid_slice` must be a mapping"));
  auto typo = parse(kMinimal + "  uid_slices: {index: 0, count: 2}\n");
  CHECK(has_error(typo, 7, 3, "unknown key `uid_slices` in `runner`"));
  CHECK(typo.diagnostics.all().at(0).allowed.find("uid_slice") != std::string::npos);
}

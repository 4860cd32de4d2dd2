// gatehouse-agent: `gatehouse serve`'s process (docs/agent.md). `gatehouse
// serve` execs it: the agent links libcurl, which Debian ships only as a
// shared library, and `gatehouse run` (started per job) stays static.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdlib>
#include <iostream>

#include "agent/config.hpp"
#include "agent/log.hpp"
#include "agent/serve.hpp"

extern char** environ;

namespace {

// The `gatehouse` binary beside this one (a build tree, or an install
// that keeps both in one folder), else the installed one.
std::string find_gatehouse() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    for (const std::string& c : {dir + "/gatehouse", dir + "/../../bin/gatehouse"})
      if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "/usr/bin/gatehouse";
}

gh::agent::LogLevel level_of(const std::string& s) {
  if (s == "debug") return gh::agent::LogLevel::Debug;
  if (s == "warn") return gh::agent::LogLevel::Warn;
  if (s == "error") return gh::agent::LogLevel::Error;
  return gh::agent::LogLevel::Info;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gatehouse serve: claim jobs from a control plane and run them in the sandbox"};
  gh::agent::ServeOptions opts;
  std::string config = "/etc/gatehouse/gatehouse.yaml";
  long grace = 300;
  app.add_option("--config", config, "the agent's configuration")->envname("GATEHOUSE_CONFIG")->capture_default_str();
  app.add_option("--gatehouse", opts.gatehouse_path, "the gatehouse binary that runs each task");
  app.add_option("--runner-lock-dir", opts.runner_lock_dir, "where agents on this host hold their locks")
      ->capture_default_str();
  app.add_option("--drain-grace", grace, "seconds running jobs get after the first SIGTERM")
      ->check(CLI::Range(0L, 86400L))
      ->capture_default_str();
  app.add_option("--audit-log", opts.audit_log, "the audit log (default: the policy's audit.log)")
      ->envname("GATEHOUSE_AUDIT_LOG");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (geteuid() != 0) {
    std::cerr << "gatehouse serve: run as root (the agent builds sandboxes and holds the runner token)\n";
    return 2;
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (auto eq = kv.find('='); eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto loaded = gh::agent::load_agent_config(config, env);
  if (!loaded.config) {
    std::cerr << loaded.diagnostics.render();
    return 2;
  }
  opts.config = std::move(*loaded.config);
  opts.config_path = config;
  opts.drain_grace = std::chrono::seconds(grace);
  if (opts.gatehouse_path.empty()) opts.gatehouse_path = find_gatehouse();
  gh::agent::init_agent_log(level_of(opts.config.logging.level), opts.config.logging.file);
  auto token = gh::agent::load_runner_token(opts.config, getenv("CREDENTIALS_DIRECTORY"));
  if (!token) {
    gh::agent::agent_log(gh::agent::LogLevel::Error, token.error().message);
    return 2;
  }
  opts.runner_token = std::move(*token);
  return gh::agent::serve(opts);
}

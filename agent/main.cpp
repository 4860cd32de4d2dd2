// gatehouse-agent: the unprivileged half of `gatehouse serve`
// (docs/architecture.md, docs/agent.md). It runs as the system user
// `gatehouse`, holds the runner token, and talks to the control plane and
// to the broker, which runs the tasks. It refuses to run as root.
//
// Started by `gatehouse serve` (the broker passes the link and the token as
// open files: --broker-fd, --token-fd) or by gatehouse-agent.service
// (--broker-socket, and the token as a systemd credential).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "agent/broker_link.hpp"
#include "agent/config.hpp"
#include "agent/confine.hpp"
#include "agent/log.hpp"
#include "agent/serve.hpp"
#include "agent/token.hpp"

extern char** environ;

namespace {

gh::agent::LogLevel level_of(const std::string& s) {
  if (s == "debug") return gh::agent::LogLevel::Debug;
  if (s == "warn") return gh::agent::LogLevel::Warn;
  if (s == "error") return gh::agent::LogLevel::Error;
  return gh::agent::LogLevel::Info;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gatehouse-agent: the unprivileged half of gatehouse serve (start it with `gatehouse serve`)"};
  gh::agent::ServeOptions opts;
  std::string config = "/etc/gatehouse/gatehouse.yaml";
  std::string broker_socket = "/run/gatehouse/broker.sock";
  int broker_fd = -1, token_fd = -1;
  long grace = 0;
  app.add_option("--config", config, "the agent's configuration")->envname("GATEHOUSE_CONFIG")->capture_default_str();
  app.add_option("--broker-fd", broker_fd, "the link to the broker that started this agent");
  app.add_option("--broker-socket", broker_socket, "the broker's socket (systemd)")->capture_default_str();
  app.add_option("--token-fd", token_fd, "the runner token, opened by the broker");
  auto* grace_flag = app.add_option("--drain-grace", grace, "seconds running jobs get after the first SIGTERM "
                                                          "(default: runner.drain_grace, 5m)")
                         ->check(CLI::Range(0L, 86400L));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (geteuid() == 0 || getuid() == 0) {
    std::cerr << "gatehouse-agent: refusing to run as root: the agent parses the control plane's answers and must "
                 "hold no privilege. Start it with `gatehouse serve` (which runs it as the user `gatehouse`), or as "
                 "gatehouse-agent.service (User=gatehouse)\n";
    return 2;
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (auto eq = kv.find('='); eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto loaded = gh::agent::load_agent_config(config, env, {.token_source = token_fd < 0});
  if (!loaded.config) {
    std::cerr << loaded.diagnostics.render();
    return 2;
  }
  opts.config = std::move(*loaded.config);
  opts.config_path = config;
  opts.drain_grace = std::chrono::seconds(grace_flag->count() > 0 ? grace : opts.config.runner.drain_grace_s);
  gh::agent::init_agent_log(level_of(opts.config.logging.level), opts.config.logging.file);

  // The token: from the broker (it opened the root-only file for us) or
  // from systemd's credential.
  gh::Result<std::string> token = gh::err("no runner token");
  if (token_fd >= 0) {
    token = gh::agent::read_runner_token(token_fd, "the token file the broker opened (" +
                                                       (opts.config.api.auth_token_file.empty()
                                                            ? std::string("$CREDENTIALS_DIRECTORY/") + gh::agent::kCredentialName
                                                            : opts.config.api.auth_token_file) + ")");
    close(token_fd);
  } else {
    const char* creds = getenv("CREDENTIALS_DIRECTORY");
    auto fd = gh::agent::open_runner_token(opts.config.api.auth_token_file, creds);
    token = fd ? gh::agent::read_runner_token(fd->get(), creds ? std::string(creds) + "/" + gh::agent::kCredentialName
                                                                : opts.config.api.auth_token_file)
               : gh::Result<std::string>(fd.error());
  }
  if (!token) {
    gh::agent::agent_log(gh::agent::LogLevel::Error, token.error().message);
    return 2;
  }
  opts.runner_token = std::move(*token);

  // Everything the agent will ever open is known now: confine it before
  // the first byte from the network or the broker is read.
  if (auto s = gh::agent::confine_agent(opts.config, config); !s) {
    gh::agent::agent_log(gh::agent::LogLevel::Error, "cannot confine the agent: " + s.error().message);
    return 4;
  }
  auto link = broker_fd >= 0 ? gh::agent::BrokerLink::from_fd(broker_fd, opts.config.runner.name)
                             : gh::agent::BrokerLink::connect(broker_socket, opts.config.runner.name);
  if (!link) {
    gh::agent::agent_log(gh::agent::LogLevel::Error, "cannot reach the broker: " + link.error().message);
    return 4;
  }
  return gh::agent::serve(opts, **link);
}

// `gatehouse-broker serve`: the root half of `gatehouse serve`
// (docs/architecture.md). It holds the policy, the runner lock and the
// tasks' event buffers, runs each task of the agent's as a
// `gatehouse-broker run` process, and talks to the agent over one socket in
// the messages of ipc/broker_messages.hpp.
//
// Two ways to meet the agent:
//   * `gatehouse serve` (by hand): the daemon starts gatehouse-agent itself
//     as the system user `gatehouse` on a socketpair, hands it the runner
//     token as an open file, and starts it again if it crashes;
//   * systemd (packaging/): `--socket PATH`, and gatehouse-agent.service
//     connects to it; only the agent user's uid (SO_PEERCRED) is accepted.
// Either way the daemon outlives the agent: tasks keep running while it is
// gone, and what they printed is sent again when it is back.
//
// Before the agent starts, the daemon checks what every job would need:
// the work root reachable by the jobs' uids and only root's to change
// (workdir.cpp), the policy (the built-in one when the default path has
// no file; a path the operator named must exist), and the runner lock
// (runner_lock.hpp: no other agent on this host with the same name or
// overlapping uids or folders).
//
// Signals: SIGHUP reloads the policy (the old one stays on any error,
// including uid pools that would overlap another agent's);
// SIGTERM/SIGINT drains (the agent stops claiming; running tasks finish);
// a second one cancels the running tasks.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace gh::broker {

struct DaemonOptions {
  std::string config = "/etc/gatehouse/gatehouse.yaml";
  std::string socket;             // listen here for the agent; "" = start the agent ourselves
  std::string agent_user = "gatehouse";
  std::string runner_lock_dir;     // "" = runner.lock_directory (default /run/gatehouse/runners)
  std::string state_dir = "/run/gatehouse/broker";
  long drain_grace = -1;          // passed to an agent we start; -1 = none (it reads runner.drain_grace)
  std::string audit_log;          // "" = the policy's
};

void add_daemon_options(CLI::App* cmd, DaemonOptions& o);

// The process exit status: 0 after a drain or when the agent ended by
// itself (single-task, idle timeout); 2 on configuration errors; 4 when
// the daemon cannot start.
int run_daemon(const DaemonOptions& o);

}  // namespace gh::broker

// The daemon's end of the agent link (ipc/broker_messages.hpp: Hello,
// RunTask, CancelTask, Ack from the agent; Welcome, TaskEvent,
// TaskRejected, Drain to it). The agent is hostile input here: framing
// first, then the phase (nothing before Hello), then the payload's bounds,
// then meaning; a violation closes the link (the agent reconnects, the
// tasks go on). Nothing the agent sends names a file, a uid or a privilege:
// a RunTask's fields become a runner's arguments, checked again there.
//
// By hand (`gatehouse serve`) the link also owns the agent's process: it
// starts gatehouse-agent as the agent user, with the runner token as an
// open file, and starts it again (with backoff) when it crashes.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/daemon.hpp"
#include "broker/loaders.hpp"
#include "broker/tasks.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace gh::broker {

class AgentLink {
 public:
  static Result<std::unique_ptr<AgentLink>> create(const DaemonOptions& o, const ServeSettings& s,
                                                   const std::map<std::string, std::string>& env);
  ~AgentLink();

  // By hand: starts the agent. Under systemd: listens on the socket.
  Status start();
  void set_policy_digest(std::string d) { digest_ = std::move(d); }
  // The fds to poll this round, appended to `fds`.
  void add_pollfds(std::vector<pollfd>& fds);
  // Accepts, reads and answers the agent; starts a stopped agent again.
  void service(const std::vector<pollfd>& fds, TaskTable& tasks);
  // Where new task events go: sent once the agent is ready, dropped
  // otherwise (the tasks keep them until acknowledged and replay them).
  std::string& outbox() { return ready_ ? out_ : discard_; }
  void flush();
  size_t pending_bytes() const { return out_.size(); }
  void drain(bool now);
  // True when `pid` was the agent (its end is handled).
  bool child_exited(pid_t pid, int status);
  // By hand: the agent ended by itself; the daemon's exit status.
  std::optional<int> finished() const { return finished_; }
  bool spawns_agent() const { return socket_path_.empty(); }

 private:
  AgentLink() = default;
  Status spawn();
  void accept_one();
  void read_agent(TaskTable& tasks);
  void handle(const ipc::BrokerMessage& m, TaskTable& tasks);
  void disconnect(const std::string& why);
  void send(ipc::BrokerMsg t, const std::string& payload);

  // Settings.
  std::string socket_path_, config_, agent_path_, token_file_, credentials_dir_, runner_;
  uid_t agent_uid_ = 0;
  gid_t agent_gid_ = 0;
  long drain_grace_ = 300;
  std::vector<std::string> agent_env_;
  std::string digest_;
  // The connection.
  UniqueFd listen_;
  int fd_ = -1;
  bool ready_ = false;
  ipc::BrokerStreamReader in_;
  std::string out_, discard_;
  int listen_index_ = -1, fd_index_ = -1;
  // Draining: told to the agent on connect too.
  bool draining_ = false, drain_now_ = false;
  // The agent's process (by hand).
  pid_t agent_pid_ = -1;
  int crashes_ = 0;
  std::chrono::steady_clock::time_point started_at_{}, restart_at_{};
  std::optional<int> finished_;
};

}  // namespace gh::broker

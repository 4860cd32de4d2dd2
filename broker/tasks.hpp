// The daemon's tasks: one `gatehouse-broker run` process per task of the
// agent's, and the job events it produced that the agent has not yet
// acknowledged. Events are numbered per task from 1; the agent acknowledges
// a number once every event up to it is in its spool (on disk), and only
// then does the daemon forget them. So an agent that crashes and comes
// back is sent again exactly what it had not kept, and a job keeps running
// while no agent is there (until its unacknowledged events reach the bound;
// then the daemon stops reading the job, which pauses it).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <functional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "ipc/broker_messages.hpp"

namespace gh::broker {

// What every task's runner is started with (the daemon's own settings,
// never the agent's word).
struct RunnerSettings {
  std::string broker_path;    // this binary
  std::string policy_file;    // the validated policy, a root-only copy; "" = the built-in policy
  std::string work_root;
  std::string lock_dir;
  std::string orb_dir;        // the local orb folder (runner.orb_directory)
  std::string audit_log;      // "" = the policy's
  std::vector<std::string> env;  // the runners' environment
  uint32_t uid_slice_index = 0;  // runner.uid_slice
  uint32_t uid_slice_count = 1;
};

inline constexpr uint64_t kMaxUnackedBytesPerTask = 16u << 20;

struct Task {
  std::string id;
  pid_t runner = -1;  // -1 once reaped
  int fd = -1;        // the runner's client channel; -1 once closed
  ipc::BrokerStreamReader in;
  std::deque<std::pair<uint64_t, std::string>> unacked;  // (seq, framed TaskEvent)
  uint64_t unacked_bytes = 0;
  uint64_t next_seq = 1;
  bool result_seen = false;
  bool cancel_sent = false;
  int exit_status = 0;
  // Polled only while the agent keeps up.
  bool readable() const { return fd >= 0 && unacked_bytes < kMaxUnackedBytesPerTask; }
  bool running() const { return runner > 0 || fd >= 0; }
  bool done() const { return !running() && result_seen && unacked.empty(); }
};

class TaskTable {
 public:
  explicit TaskTable(RunnerSettings settings) : settings_(std::move(settings)) {}
  ~TaskTable();

  // Starts the runner for a task the agent asked for. The request's
  // fields reach the runner as arguments it checks again; its job text on
  // a pipe. Errors say why the task could not start.
  Status start(const ipc::RunTaskRequest& req);
  Task* find(const std::string& id);
  std::map<std::string, Task>& all() { return tasks_; }
  size_t running_count() const;

  // Reads what the runner sent; new events are appended to `out` framed
  // as TaskEvents (for the agent) and kept until acknowledged.
  void read_runner(Task& t, std::string& out);
  // A reaped runner; a runner that ended without a Result gets one here,
  // so the agent can always complete the task.
  void runner_exited(pid_t pid, int status, std::string& out);
  void acknowledge(Task& t, uint64_t seq);
  void cancel(Task& t, ipc::CancelWhy why);
  void forget_done();
  // Every unacknowledged event, in order, for an agent that (re)connected.
  std::string replay() const;

  void set_policy_file(std::string f) { settings_.policy_file = std::move(f); }
  // Called first by start(): the daemon applies a SIGHUP that is pending
  // (sent before the agent's request was read), so no task is admitted
  // under a policy the operator has already replaced.
  void set_before_start(std::function<void()> f) { before_start_ = std::move(f); }

 private:
  std::function<void()> before_start_;
  void add_event(Task& t, ipc::BrokerMsg type, std::string payload, std::string& out);
  RunnerSettings settings_;
  std::map<std::string, Task> tasks_;
};

}  // namespace gh::broker

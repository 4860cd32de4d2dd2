// `gatehouse serve`: the agent. It claims tasks from the control plane
// (docs/protocol.md), admits each through the policy, runs it with
// `gatehouse run --stream-fd` in a child process, spools what the job
// prints and streams it back, and delivers the result until the control
// plane acknowledges it, also across its own restarts.
//
// Threads: the main thread claims; one thread per task runs and delivers
// it; one thread waits for signals. Every task thread has its own HTTPS
// client (libcurl handles are not shared between threads).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "agent/metrics.hpp"
#include "policy/policy.hpp"

namespace gh::agent {

struct ServeOptions {
  AgentConfig config;
  std::string config_path;
  std::string runner_token;        // never logged, never passed to a child
  std::string gatehouse_path;      // the `gatehouse` binary that runs each task
  std::string runner_lock_dir = "/run/gatehouse/runners";
  std::chrono::seconds drain_grace{300};  // after the first SIGTERM
  std::string audit_log;           // "" = the policy's audit.log
};

// The policy the agent admits jobs under. A reload replaces it only when
// the new file is valid; tasks already running keep the one they started
// with. `file` is the canonical form written by the agent (root-only), so
// the `gatehouse run` child reads exactly the validated policy even if the
// operator's file changed since.
struct ActivePolicy {
  policy::Policy policy;
  std::string digest;
  std::string file;
};

// What the claim loop and the task threads share.
class AgentState {
 public:
  std::shared_ptr<const ActivePolicy> policy() const;
  void set_policy(std::shared_ptr<const ActivePolicy> p);

  std::mutex mu;
  std::condition_variable changed;  // a task ended, a signal arrived
  int running = 0;                  // task threads alive (guarded by mu)
  std::atomic<int> jobs_alive{0};   // `gatehouse run` children alive
  std::atomic<bool> draining{false};
  std::atomic<bool> cancel_all{false};
  std::atomic<bool> stop_delivery{false};  // shutting down: leave the rest in the spool
  Metrics metrics;

 private:
  mutable std::mutex policy_mu_;
  std::shared_ptr<const ActivePolicy> policy_;
};

// Loads, validates and writes out the canonical policy; the previous one
// stays in force on any error (the errors are returned for the log).
Result<std::shared_ptr<const ActivePolicy>> load_active_policy(const std::string& path, const std::string& state_dir);

// Returns the process exit status: 0 after a drain, an idle timeout or a
// single task; 2 on configuration errors; 4 when the agent cannot start.
int serve(const ServeOptions& opts);

}  // namespace gh::agent

// `gatehouse serve`'s unprivileged half: the agent. It claims tasks from
// the control plane (docs/protocol.md), asks the broker to run each one
// (the broker admits it: signature, rules, profile), spools what the job
// prints from the broker's events and streams it back, and delivers the
// result until the control plane acknowledges it, also across its own
// restarts (the broker keeps a task's events until the agent has spooled
// them).
//
// Threads: the main thread claims; one thread per task runs and delivers
// it; one thread waits for signals; the broker link has a reader thread.
// Every task thread has its own HTTPS client (libcurl handles are not
// shared between threads).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "agent/broker_link.hpp"
#include "agent/config.hpp"
#include "agent/control_client.hpp"
#include "agent/metrics.hpp"

namespace gh::agent {

struct ServeOptions {
  AgentConfig config;
  std::string config_path;
  std::string runner_token;  // never logged, never sent anywhere but the control plane
  std::chrono::seconds drain_grace{300};  // after the first SIGTERM
};

// What the claim loop and the task threads share.
struct AgentState {
  std::mutex mu;
  std::condition_variable changed;  // a task ended, a signal arrived, the broker spoke
  int running = 0;                  // task threads alive (guarded by mu)
  // Slots in use: a task holds one from its claim until its job has ended
  // and the result is in the spool; delivering the records and the result
  // afterwards does not hold a slot, so the next claim overlaps it.
  std::atomic<int> slots_busy{0};
  std::atomic<int> jobs_alive{0};   // tasks whose job runs in the broker
  std::atomic<bool> draining{false};
  std::atomic<bool> cancel_all{false};
  std::atomic<bool> stop_delivery{false};  // shutting down: leave the rest in the spool
  Metrics metrics;
  BrokerLink* link = nullptr;

  // The claim loop's client, so a signal or the broker's drain can cut
  // its long poll short (ControlClient::interrupt) instead of waiting for
  // the control plane's answer.
  std::mutex claim_mu;
  ControlClient* claimer = nullptr;  // guarded by claim_mu
  void wake_claim() {
    std::lock_guard lk(claim_mu);
    if (claimer) claimer->interrupt();
  }

  // Clients of ended tasks, kept with their open connection for the next
  // task (one TLS handshake per slot, not three per job). A client is used
  // by one thread at a time: taken out, then put back.
  std::mutex clients_mu;
  std::vector<std::unique_ptr<ControlClient>> idle_clients;  // guarded by clients_mu
};

// Free bytes for unprivileged users on the filesystem holding `path`.
Result<uint64_t> free_bytes(const std::string& path);

// Returns the process exit status: 0 after a drain, an idle timeout or a
// single task; 4 when the agent cannot start or loses the broker.
int serve(const ServeOptions& opts, BrokerLink& link);

}  // namespace gh::agent

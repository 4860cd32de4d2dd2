// The agent's main loop, in the order it starts (the broker already holds
// the policy and the runner lock):
//   1. the spool: tasks an earlier agent left get a thread each before
//      anything new is claimed: attached again when the broker still holds
//      them, delivered when only delivery is left (nothing is lost);
//   2. the metrics/health endpoint;
//   3. claim while there are free slots, the disk is above the watermark
//      and no drain was asked for (by SIGTERM or by the broker); each task
//      gets a thread.
// Signals are blocked in every thread and taken by one signal thread, so
// no handler touches the state.
#include "agent/serve.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <fstream>
#include <random>
#include <thread>

#include "agent/log.hpp"
#include "agent/control_client.hpp"
#include "agent/local_http.hpp"
#include "agent/spool.hpp"
#include "agent/task.hpp"

namespace gh::agent {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeliveryWait = std::chrono::seconds(10);
constexpr int kMaxDeliveringBeyondSlots = 4;

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return std::to_string(b >> 30) + " GiB";
  return std::to_string(b >> 20) + " MiB";
}

// Starts a task's thread; the thread counts itself out when it ends.
void start_task(const ServeOptions& opts, AgentState& state, TaskSpool spool, TaskStart how) {
  {
    std::lock_guard lk(state.mu);
    ++state.running;
  }
  if (how != TaskStart::Deliver) ++state.slots_busy;  // the task thread gives it back (task.cpp)
  std::thread([&opts, &state, s = std::move(spool), how]() mutable {
    run_task(opts, state, std::move(s), how);
    std::lock_guard lk(state.mu);
    --state.running;
    state.changed.notify_all();
  }).detach();
}

struct Signals {
  std::atomic<int> terms{0};
  std::atomic<bool> hup{false};
};

void signal_thread(sigset_t set, Signals& sig, AgentState& state) {
  for (;;) {
    int s = 0;
    if (sigwait(&set, &s) != 0) continue;
    if (s == SIGHUP) {
      sig.hup = true;  // the broker holds the policy: the operator reloads it there
    } else {
      int n = ++sig.terms;
      state.draining = true;
      if (n >= 2) state.cancel_all = true;
    }
    // Within a second, whatever the claim's long poll is waiting for.
    state.wake_claim();
    state.changed.notify_all();
  }
}

}  // namespace

Result<uint64_t> free_bytes(const std::string& path) {
  struct statvfs st{};
  if (statvfs(path.c_str(), &st) != 0) return err("statvfs " + path + ": " + strerror(errno));
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

int serve(const ServeOptions& opts, BrokerLink& link) {
  const auto& cfg = opts.config;
  AgentState state;
  state.link = &link;
  link.start([&state] {
    // The broker asked for a drain or went away: no claim may finish.
    if (state.link->drain() >= 1 || state.link->lost()) state.wake_claim();
    std::lock_guard lk(state.mu);
    state.changed.notify_all();
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Signals sig;
  std::thread(signal_thread, set, std::ref(sig), std::ref(state)).detach();

  // 1. What an earlier agent left: attached again when the broker still
  // holds the task, else delivered (or completed as lost).
  std::vector<std::string> problems;
  std::set<std::string> spooled;
  auto left = TaskSpool::recover(cfg.runner.spool_directory, cfg.runner.spool_limit, problems);
  for (const auto& p : problems) agent_log(LogLevel::Error, "spool: " + p);
  std::map<std::string, bool> held;
  for (const auto& t : link.welcome().tasks) held[t.task_id] = true;
  if (left) {
    for (auto& s : *left) {
      const std::string id = s.task().id;
      spooled.insert(id);
      const bool attach = held.count(id) > 0;
      agent_log(LogLevel::Info, "task " + id + (attach ? ": the broker still holds it; attaching again"
                                                       : ": delivering what an earlier agent left in the spool"));
      start_task(opts, state, std::move(s), attach ? TaskStart::Attach : TaskStart::Deliver);
    }
  }
  for (const auto& t : link.welcome().tasks)
    if (!spooled.count(t.task_id)) {
      // Nothing here can deliver it: the broker stops it and lets it go.
      agent_log(LogLevel::Warn, "task " + t.task_id + ": the broker holds it but no spool does; canceling it");
      link.cancel(t.task_id, ipc::CancelWhy::Operator);
      std::thread([&link, id = t.task_id] { discard_task_events(link, id); }).detach();
    }

  // 2. Metrics and health.
  std::unique_ptr<LocalHttpServer> http;
  state.metrics.set_slots(cfg.runner.slots);
  if (!cfg.metrics_listen.empty()) {
    auto h = LocalHttpServer::start(cfg.metrics_listen, state.metrics);
    if (!h) {
      agent_log(LogLevel::Error, "metrics: " + h.error().message);
      return 4;
    }
    http = std::move(*h);
  }

  auto client = ControlClient::create(cfg, opts.runner_token);
  if (!client) {
    agent_log(LogLevel::Error, client.error().message);
    return 2;
  }
  {
    std::lock_guard lk(state.claim_mu);
    state.claimer = &*client;
  }
  // The signal thread outlives this function: it must not reach the client.
  struct Unpublish {
    AgentState& s;
    ~Unpublish() {
      std::lock_guard lk(s.claim_mu);
      s.claimer = nullptr;
    }
  } unpublish{state};
  std::mt19937_64 rng(std::random_device{}());
  int attempt = 0;
  int claimed = 0;
  auto idle_since = Clock::now();
  std::string not_claiming;  // the reason last logged, so it is logged once
  const bool single = cfg.runner.mode == RunnerMode::SingleTask;
  agent_log(LogLevel::Info, "agent `" + cfg.runner.name + "` started: " + std::to_string(cfg.runner.slots) +
                                " slot(s), policy digest " + link.welcome().policy_digest);

  auto drain_started = Clock::time_point::max();
  auto last_job_seen = Clock::now();
  for (;;) {
    if (sig.hup.exchange(false))
      agent_log(LogLevel::Info, "SIGHUP: the policy is the broker's; send SIGHUP to gatehouse serve (or reload gatehouse-broker.service)");
    if (link.lost()) {
      agent_log(LogLevel::Error, "lost the broker (" + link.lost_why() + "): stopping; the spool keeps what is undelivered");
      state.metrics.set_stopping();
      state.stop_delivery = true;
      state.draining = true;
      std::unique_lock lk(state.mu);
      state.changed.wait_for(lk, std::chrono::seconds(1), [&] { return state.running == 0; });
      if (state.running == 0) return 4;
      continue;
    }
    if (link.drain() >= 1 && !state.draining) {
      state.draining = true;
      agent_log(LogLevel::Info, "the broker asked for a drain");
    }
    if (link.drain() >= 2) state.cancel_all = true;
    int running;
    {
      std::lock_guard lk(state.mu);
      running = state.running;
    }
    const int busy = state.slots_busy.load();
    state.metrics.set_slots_free(std::max(0, cfg.runner.slots - busy));
    if (running > 0) idle_since = Clock::now();

    // Ending: a drain, a single task done, or idleness.
    if (state.draining) {
      if (drain_started == Clock::time_point::max()) {
        state.metrics.set_draining();
        drain_started = last_job_seen = Clock::now();
        agent_log(LogLevel::Info, "SIGTERM: draining (no new claims); running tasks have " +
                                      std::to_string(opts.drain_grace.count()) + "s; a second SIGTERM cancels them now");
      }
      if (!state.cancel_all && Clock::now() - drain_started > opts.drain_grace) {
        agent_log(LogLevel::Info, "drain grace over: canceling running tasks");
        state.cancel_all = true;
      }
      // Once no job runs, undelivered records and results are safe in the
      // spool: a control plane that is down does not hold the agent up
      // for more than kDeliveryWait; the next start delivers them.
      if (state.jobs_alive > 0) last_job_seen = Clock::now();
      if (Clock::now() - last_job_seen > kDeliveryWait) state.stop_delivery = true;
      if (running == 0) break;
      std::unique_lock lk(state.mu);
      state.changed.wait_for(lk, std::chrono::milliseconds(500));
      continue;
    }
    if (single && claimed > 0) {
      if (running == 0) break;
      std::unique_lock lk(state.mu);
      state.changed.wait_for(lk, std::chrono::milliseconds(500));
      continue;
    }
    const auto idle_left = cfg.runner.idle_timeout_s > 0
                               ? std::chrono::seconds(cfg.runner.idle_timeout_s) -
                                     std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - idle_since)
                               : std::chrono::seconds(protocol::kMaxClaimWaitSeconds);
    if (cfg.runner.idle_timeout_s > 0 && running == 0 && idle_left.count() <= 0) {
      agent_log(LogLevel::Info, "idle for runner.idle_timeout (" + std::to_string(cfg.runner.idle_timeout_s) + "s): stopping");
      break;
    }

    // Claim only with a free slot and room on the disk.
    std::string why;
    if (busy >= cfg.runner.slots) why = "all " + std::to_string(cfg.runner.slots) + " slots are busy";
    // Results still on their way hold no slot, but a control plane that
    // does not take them must not let them pile up without bound.
    else if (running >= 2 * cfg.runner.slots + kMaxDeliveringBeyondSlots)
      why = std::to_string(running - busy) + " tasks are still delivering their results to the control plane";
    if (why.empty()) {
      auto fb = free_bytes(cfg.runner.working_directory);
      if (!fb) why = fb.error().message;
      else if (*fb < cfg.runner.min_free_space)
        why = "only " + human_bytes(*fb) + " free under " + cfg.runner.working_directory + ", below runner.min_free_space (" +
              human_bytes(cfg.runner.min_free_space) + ")";
    }
    if (!why.empty()) {
      if (why != not_claiming && why.find("slots are busy") == std::string::npos)
        agent_log(LogLevel::Warn, "not claiming: " + why);
      not_claiming = why;
      state.metrics.set_not_claiming(why);
      std::unique_lock lk(state.mu);
      state.changed.wait_for(lk, std::chrono::seconds(1));
      continue;
    }
    if (!not_claiming.empty()) {
      not_claiming.clear();
      state.metrics.set_not_claiming("");
    }

    protocol::ClaimRequest req;
    req.runner = cfg.runner.name;
    req.resource_class = cfg.runner.resource_class;
    req.free_slots = cfg.runner.slots - busy;
    // Short enough that a drain or idle timeout is noticed soon after.
    req.wait = static_cast<int>(std::clamp<long>(std::min<long>(idle_left.count(), 20), 0, protocol::kMaxClaimWaitSeconds));
    if (state.draining || sig.hup.load() || link.lost() || link.drain() >= 1) continue;  // act on it first
    auto r = client->claim(req);
    if (!r.ok() && r.error().interrupted) continue;  // a signal or a drain: the loop's top acts on it
    if (!r.ok()) {
      state.metrics.claim_error();
      agent_log(LogLevel::Warn, "claim: " + r.error().message);
      if (const auto& t = r.error().unreadable_task) {
        // A task we cannot read is not run; the control plane hears why.
        protocol::Completion c{"refused", 2, "the agent could not read the task: " + r.error().message};
        (void)client->complete(t->id, t->token, c);
      }
      auto d = backoff_delay(attempt++, rng);
      if (r.error().retry_after > 0) d = std::chrono::seconds(std::min(r.error().retry_after, 300));
      std::unique_lock lk(state.mu);
      state.changed.wait_for(lk, d);
      continue;
    }
    attempt = 0;
    state.metrics.contact_succeeded();
    if (!r.value()) continue;  // nothing to run
    const protocol::Task& task = *r.value();
    if (state.draining || link.drain() >= 1) {
      // The answer crossed the drain: hand the task back for another runner.
      auto back = client->release(task.id, task.token);
      agent_log(back.ok() ? LogLevel::Info : LogLevel::Error,
                "task " + task.id + ": claimed as the drain began; " +
                    (back.ok() ? std::string("handed back to the control plane")
                               : "the control plane did not take it back (" + back.error().message +
                                     "); completing it as infra_error"));
      if (!back.ok()) {
        protocol::Completion c{"infra_error", 4, "the runner began draining as it claimed the task, and could not hand it back"};
        (void)client->complete(task.id, task.token, c);
      }
      continue;
    }
    auto spool = TaskSpool::create(cfg.runner.spool_directory, task, cfg.runner.spool_limit);
    if (!spool) {
      // Without a spool nothing the job prints could be kept: do not run it.
      agent_log(LogLevel::Error, "task " + task.id + ": cannot spool, refusing it: " + spool.error().message);
      protocol::Completion c{"infra_error", 4, "the agent could not create its spool: " + spool.error().message};
      (void)client->complete(task.id, task.token, c);
      continue;
    }
    ++claimed;
    agent_log(LogLevel::Info, "task " + task.id + ": claimed job `" + task.job_name + "` of " +
                                  (task.meta.project.empty() ? std::string("(no project)") : task.meta.project));
    start_task(opts, state, std::move(*spool), TaskStart::Fresh);
  }
  if (http) http->stop();
  { std::lock_guard lk(state.mu); }  // the last task thread has let go of it
  agent_log(LogLevel::Info, "agent stopped");
  return 0;
}

}  // namespace gh::agent

// The agent's main loop, in the order it starts:
//   1. the policy, validated, written out in canonical form for the
//      children (a SIGHUP repeats this and keeps the old one on errors);
//   2. the runner lock and the clash checks against other agents;
//   3. the spool: tasks an earlier agent left undelivered get a delivery
//      thread each before anything new is claimed (nothing is lost);
//   4. the metrics/health endpoint;
//   5. claim while there are free slots, the disk is above the watermark
//      and no drain was asked for; each task gets a thread.
// Signals are blocked in every thread and taken by one signal thread, so
// a child's fork never runs a handler and no handler touches the state.
#include "agent/serve.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <thread>

#include "broker/runner_lock.hpp"

using gh::broker::free_bytes;
using gh::broker::HostClaim;
using gh::broker::lock_runner;
using gh::broker::policy_uid_pools;
#include "agent/log.hpp"
#include "agent/control_client.hpp"
#include "agent/local_http.hpp"
#include "agent/spool.hpp"
#include "agent/task.hpp"

namespace gh::agent {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeliveryWait = std::chrono::seconds(10);

// The validated policies the children read, by digest: root-only, beside
// the job folders (not in the spool, which holds task folders only).
std::string policy_dir(const AgentConfig& c) { return c.runner.working_directory + "/policies"; }

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return std::to_string(b >> 30) + " GiB";
  return std::to_string(b >> 20) + " MiB";
}

// Starts a task's thread; the thread counts itself out when it ends.
void start_task(const ServeOptions& opts, AgentState& state, TaskSpool spool, bool recovered) {
  {
    std::lock_guard lk(state.mu);
    ++state.running;
  }
  std::thread([&opts, &state, s = std::move(spool), recovered]() mutable {
    run_task(opts, state, std::move(s), recovered);
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
      sig.hup = true;
    } else {
      int n = ++sig.terms;
      state.draining = true;
      if (n >= 2) state.cancel_all = true;
    }
    state.changed.notify_all();
  }
}

void reload(const ServeOptions& opts, AgentState& state) {
  auto p = load_active_policy(opts.config.policy, policy_dir(opts.config));
  if (!p) {
    agent_log(LogLevel::Error, "policy reload refused, the previous policy stays in force: " + p.error().message);
    return;
  }
  auto old = state.policy();
  state.set_policy(*p);
  agent_log(LogLevel::Info, "policy reloaded: " + opts.config.policy + " digest " + (*p)->digest +
                                (old->digest == (*p)->digest ? " (unchanged)" : " (was " + old->digest + ")"));
}

}  // namespace

std::shared_ptr<const ActivePolicy> AgentState::policy() const {
  std::lock_guard lk(policy_mu_);
  return policy_;
}

void AgentState::set_policy(std::shared_ptr<const ActivePolicy> p) {
  std::lock_guard lk(policy_mu_);
  policy_ = std::move(p);
}

Result<std::shared_ptr<const ActivePolicy>> load_active_policy(const std::string& path, const std::string& state_dir) {
  auto out = policy::parse_policy_file(path);
  if (!out.policy) return err(out.diagnostics.render());
  auto a = std::make_shared<ActivePolicy>();
  a->policy = std::move(*out.policy);
  a->digest = policy::policy_digest(a->policy);
  // The children read the canonical form, named by its digest: a task
  // started before a reload keeps reading the file it started with.
  a->file = state_dir + "/policy-" + a->digest + ".yaml";
  struct stat st{};
  if (stat(a->file.c_str(), &st) != 0) {
    const std::string tmp = a->file + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << policy::canonical_yaml(a->policy);
      if (!f.flush()) return err("cannot write " + tmp);
    }
    chmod(tmp.c_str(), 0600);
    if (rename(tmp.c_str(), a->file.c_str()) != 0) return err("cannot write " + a->file);
  }
  return std::shared_ptr<const ActivePolicy>(std::move(a));
}

int serve(const ServeOptions& opts) {
  const auto& cfg = opts.config;
  AgentState state;
  mkdir(cfg.runner.spool_directory.c_str(), 0700);
  mkdir(cfg.runner.working_directory.c_str(), 0755);

  // 1. The policy.
  mkdir(policy_dir(cfg).c_str(), 0700);
  auto pol = load_active_policy(cfg.policy, policy_dir(cfg));
  if (!pol) {
    agent_log(LogLevel::Error, "the policy is not valid; not starting:\n" + pol.error().message);
    return 2;
  }
  state.set_policy(*pol);

  // 2. The lock, before touching the spool: two agents with one name
  // would deliver each other's tasks.
  HostClaim me{cfg.runner.name, policy_uid_pools((*pol)->policy), cfg.runner.working_directory,
               cfg.runner.spool_directory};
  auto lock = lock_runner(opts.runner_lock_dir, me);
  if (!lock) {
    agent_log(LogLevel::Error, lock.error().message);
    return 4;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Signals sig;
  std::thread(signal_thread, set, std::ref(sig), std::ref(state)).detach();

  // 3. What an earlier agent left.
  std::vector<std::string> problems;
  auto left = TaskSpool::recover(cfg.runner.spool_directory, cfg.runner.spool_limit, problems);
  for (const auto& p : problems) agent_log(LogLevel::Error, "spool: " + p);
  if (left) {
    for (auto& s : *left) {
      agent_log(LogLevel::Info, "task " + s.task().id + ": delivering what an earlier agent left in the spool");
      start_task(opts, state, std::move(s), true);
    }
  }

  // 4. Metrics and health.
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
  std::mt19937_64 rng(std::random_device{}());
  int attempt = 0;
  int claimed = 0;
  auto idle_since = Clock::now();
  std::string not_claiming;  // the reason last logged, so it is logged once
  const bool single = cfg.runner.mode == RunnerMode::SingleTask;
  agent_log(LogLevel::Info, "agent `" + cfg.runner.name + "` started: " + std::to_string(cfg.runner.slots) +
                                " slot(s), policy digest " + (*pol)->digest);

  auto drain_started = Clock::time_point::max();
  auto last_job_seen = Clock::now();
  for (;;) {
    if (sig.hup.exchange(false)) reload(opts, state);
    int running;
    {
      std::lock_guard lk(state.mu);
      running = state.running;
    }
    state.metrics.set_slots_free(std::max(0, cfg.runner.slots - running));
    if (running > 0) idle_since = Clock::now();

    // Ending: a drain, a single task done, or idleness.
    if (state.draining) {
      if (drain_started == Clock::time_point::max()) {
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
    if (running >= cfg.runner.slots) why = "all " + std::to_string(cfg.runner.slots) + " slots are busy";
    if (why.empty()) {
      auto fb = free_bytes(cfg.runner.working_directory);
      if (!fb) why = fb.error().message;
      else if (*fb < cfg.runner.min_free_space)
        why = "only " + human_bytes(*fb) + " free under " + cfg.runner.working_directory + ", below runner.min_free_space (" +
              human_bytes(cfg.runner.min_free_space) + ")";
    }
    if (!why.empty()) {
      if (why != not_claiming && why.find("slots") == std::string::npos)
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
    req.free_slots = cfg.runner.slots - running;
    // Short enough that a drain or idle timeout is noticed soon after.
    req.wait = static_cast<int>(std::clamp<long>(std::min<long>(idle_left.count(), 20), 0, protocol::kMaxClaimWaitSeconds));
    auto r = client->claim(req);
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
    start_task(opts, state, std::move(*spool), false);
  }
  if (http) http->stop();
  { std::lock_guard lk(state.mu); }  // the last task thread has let go of it
  agent_log(LogLevel::Info, "agent stopped");
  return 0;
}

}  // namespace gh::agent

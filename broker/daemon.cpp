// The daemon's start-up and its loop; the agent's side of the link is
// agent_link.cpp, the tasks tasks.cpp. Single-threaded: one poll over the
// signals, the agent and every task's runner.
#include "broker/daemon.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include "broker/agent_link.hpp"
#include "broker/broker.hpp"
#include "broker/checkout.hpp"
#include "broker/loaders.hpp"
#include "broker/log.hpp"
#include "broker/runner_lock.hpp"
#include "common/audit_chain.hpp"

extern char** environ;

namespace gh::broker {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeliveryWait = std::chrono::seconds(10);

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// The daemon's own settings come from its environment too (GATEHOUSE_*
// overrides of the config file, systemd's CREDENTIALS_DIRECTORY).
std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (auto eq = kv.find('='); eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

// What a task's runner may see of the daemon's environment: not the
// daemon's credentials, not the agent's settings (a job's
// environment.pass could not name them anyway).
std::vector<std::string> runner_environment() {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (starts(kv, "CREDENTIALS_DIRECTORY=") || starts(kv, "GATEHOUSE_API_") || starts(kv, "GATEHOUSE_RUNNER_") ||
        starts(kv, "GATEHOUSE_LOGGING_") || starts(kv, "GATEHOUSE_METRICS_") || starts(kv, "GATEHOUSE_CONFIG=") ||
        starts(kv, "GATEHOUSE_POLICY="))
      continue;
    out.push_back(kv);
  }
  return out;
}

Status make_root_dir(const std::string& dir, mode_t mode) {
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/')
      if (mkdir(dir.substr(0, i).c_str(), i == dir.size() ? mode : 0755) != 0 && errno != EEXIST)
        return err("cannot make " + dir.substr(0, i) + ": " + strerror(errno));
  struct stat st{};
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0)
    return err(dir + " must be a folder only root can read and write (run `chmod 700 " + dir + "`)");
  return ok_status();
}

// The policy the daemon checked, kept as its exact bytes in a root-only
// file named by their hash: every task's runner reads that file, so a
// task started before a reload keeps the policy it was admitted under,
// and a change to the operator's file takes effect only through SIGHUP.
Result<std::string> snapshot_policy(const std::string& state_dir, const std::string& bytes) {
  const std::string path = state_dir + "/policy-" + audit::sha256_hex(bytes) + ".yaml";
  struct stat st{};
  if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0) return path;
  const std::string tmp = path + ".tmp";
  unlink(tmp.c_str());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return err("cannot write " + tmp + ": " + strerror(errno));
  bool ok = ipc::write_all(fd, bytes) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) return err("cannot write " + path + ": " + strerror(errno));
  return path;
}

struct Policy {
  LoadedPolicy loaded;
  std::string file;  // the snapshot; "" for the built-in policy (runners then get no --policy)
};

// Only the default path may be missing: then jobs run under the built-in
// policy, the one `gatehouse run` uses without --policy, until a file
// there is loaded by SIGHUP. A path the operator named must be there.
Result<Policy, LoadError> load_active_policy(const ServeSettings& s, const std::string& state_dir) {
  struct stat st{};
  if (lstat(s.policy.c_str(), &st) != 0 && errno == ENOENT) {
    if (s.policy_set)
      return LoadError{kBadInput,
                       "the policy file " + s.policy + " (`policy` in the configuration) does not exist. Create it, "
                       "correct `policy`, or remove the key to run jobs under the built-in restrictive profile\n",
                       "the policy file " + s.policy + " does not exist"};
    auto builtin = load_policy(std::nullopt);
    if (!builtin) return builtin.error();
    return Policy{std::move(*builtin), ""};
  }
  auto bytes = read_file_as_owner(s.policy, policy::kMaxPolicyFileBytes + 1);
  if (!bytes) return LoadError{kBadInput, s.policy + ": error: " + bytes.error().message + "\n", "cannot read " + s.policy};
  auto loaded = load_policy_text(*bytes, s.policy);
  if (!loaded) return loaded.error();
  auto file = snapshot_policy(state_dir, *bytes);
  if (!file) return LoadError{kInfra, file.error().message + "\n", file.error().message};
  return Policy{std::move(*loaded), *file};
}

// How the logs name the policy in force.
std::string describe(const Policy& p, const ServeSettings& s) {
  if (!p.file.empty()) return s.policy + " digest " + p.loaded.digest;
  return "(built-in) digest " + p.loaded.digest + ": there is no file at " + s.policy +
         "; write one there and send SIGHUP (e.g. `systemctl reload gatehouse-broker`) to use it";
}

Result<HostClaim> claim_of(const ServeSettings& s, const Policy& p) {
  auto pools = policy_uid_pools(p.loaded.policy, UidSlice{s.uid_slice_index, s.uid_slice_count});
  if (!pools) return pools.error();
  return HostClaim{s.runner_name, std::move(*pools), s.working_directory, s.spool_directory};
}

}  // namespace

void add_daemon_options(CLI::App* cmd, DaemonOptions& o) {
  cmd->add_option("--config", o.config, "the agent's configuration (the broker reads its own settings there)")
      ->envname("GATEHOUSE_CONFIG")
      ->capture_default_str();
  cmd->add_option("--socket", o.socket, "listen here for gatehouse-agent (systemd); without it the broker starts the agent");
  cmd->add_option("--agent-user", o.agent_user, "the system user the agent runs as")->capture_default_str();
  cmd->add_option("--runner-lock-dir", o.runner_lock_dir,
                  "where agents on this host hold their locks (overrides runner.lock_directory)");
  cmd->add_option("--state-dir", o.state_dir, "the broker's root-only state (policy snapshots)")->capture_default_str();
  cmd->add_option("--drain-grace", o.drain_grace,
                  "seconds running jobs get after the first SIGTERM, passed to the agent the broker starts "
                  "(overrides runner.drain_grace)")
      ->check(CLI::Range(0L, 86400L));
  cmd->add_option("--audit-log", o.audit_log, "the audit log (default: the policy's audit.log)")->envname("GATEHOUSE_AUDIT_LOG");
}

int run_daemon(const DaemonOptions& o) {
  const auto env = environment();
  // 1. The broker's settings, from the same file the agent reads.
  auto settings = load_settings(o.config, env);
  if (!settings) {
    broker_log(LogLevel::Error, "the configuration is not valid; not starting:\n" + settings.error().diagnostics);
    return kBadInput;
  }
  const std::string lock_dir = o.runner_lock_dir.empty() ? settings->lock_directory : o.runner_lock_dir;
  if (lock_dir.empty()) {
    broker_log(LogLevel::Error, "no runner lock folder: set runner.lock_directory or --runner-lock-dir");
    return kBadInput;
  }
  if (auto s = make_root_dir(o.state_dir, 0700); !s) {
    broker_log(LogLevel::Error, s.error().message);
    return kInfra;
  }
  // 2. The work root, as every job will need it (reachable by the jobs'
  // uids, only root's to change, nosuid,nodev): refused now, with the fix,
  // rather than by every job.
  if (auto s = check_work_root_mount(settings->working_directory); !s) {
    broker_log(LogLevel::Error, "runner.working_directory: " + s.error().message + "; not starting");
    return kInfra;
  }
  // 3. The policy.
  auto pol = load_active_policy(*settings, o.state_dir);
  if (!pol) {
    broker_log(LogLevel::Error, "the policy is not valid; not starting:\n" + pol.error().diagnostics);
    return pol.error().exit_code == kInfra ? kInfra : kBadInput;
  }
  if (pol->file.empty())
    broker_log(LogLevel::Info, "no policy file at " + settings->policy + " (the default `policy`): jobs run under the "
                               "built-in restrictive profile (docs/policy.md) until a policy is written there and "
                               "loaded with SIGHUP");
  // 4. The runner lock: two agents with one name, or overlapping uid pools
  // or folders, would hand one uid or one spool folder to two jobs.
  auto me = claim_of(*settings, *pol);
  if (!me) {
    broker_log(LogLevel::Error, "runner.uid_slice: " + me.error().message + "; not starting");
    return kBadInput;
  }
  auto lock = lock_runner(lock_dir, *me);
  if (!lock) {
    broker_log(LogLevel::Error, lock.error().message);
    return kInfra;
  }
  // 5. The agent's side: its user, and (by hand) its spool and token.
  auto made = AgentLink::create(o, *settings, env);
  if (!made) {
    broker_log(LogLevel::Error, made.error().message);
    return kInfra;
  }
  std::unique_ptr<AgentLink> link = std::move(*made);
  TaskTable tasks({find_libexec("gatehouse-broker"), pol->file, settings->working_directory,
                   settings->uid_lock_directory, settings->orb_directory, o.audit_log, runner_environment(),
                   settings->uid_slice_index, settings->uid_slice_count});
  link->set_policy_digest(pol->loaded.digest);

  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  const int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) {
    broker_log(LogLevel::Error, std::string("signalfd: ") + strerror(errno));
    return kInfra;
  }
  if (auto s = link->start(); !s) {
    broker_log(LogLevel::Error, s.error().message);
    return kInfra;
  }
  broker_log(LogLevel::Info, "broker for `" + settings->runner_name + "` started: policy " + describe(*pol, *settings));

  int terms = 0;
  auto drained_since = Clock::time_point::max();
  auto reload_policy = [&] {
    auto next = load_active_policy(*settings, o.state_dir);
    if (!next) {
      broker_log(LogLevel::Error, "policy reload refused, the previous policy stays in force: " + next.error().diagnostics);
      return;
    }
    // Its uid pools, sliced, must still clear every other agent's.
    auto claim = claim_of(*settings, *next);
    Status claimed = claim ? lock->update(*claim) : Status(claim.error());
    if (!claimed) {
      broker_log(LogLevel::Error, "policy reload refused, the previous policy stays in force: " + claimed.error().message);
      return;
    }
    const std::string old = pol->loaded.digest;
    pol = std::move(next);
    tasks.set_policy_file(pol->file);
    link->set_policy_digest(pol->loaded.digest);
    broker_log(LogLevel::Info, "policy reloaded: " + describe(*pol, *settings) +
                                   (old == pol->loaded.digest ? " (unchanged)" : " (was " + old + ")"));
  };
  // Before a task starts: a SIGHUP the operator sent before the agent's
  // request was read is applied first, so once `kill -HUP` has returned no
  // task is admitted under the replaced policy. Only SIGHUP is taken here
  // (sigtimedwait on it alone): the other signals change the link and the
  // task table, which the caller is in the middle of using.
  tasks.set_before_start([&] {
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    const timespec now{0, 0};
    while (sigtimedwait(&hup, nullptr, &now) == SIGHUP) reload_policy();
  });
  auto take_signals = [&] {
    signalfd_siginfo si;
    while (read(sigfd, &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGHUP) {
        reload_policy();
      } else if (si.ssi_signo == SIGCHLD) {
        int status = 0;
        for (pid_t p; (p = waitpid(-1, &status, WNOHANG)) > 0;)
          if (!link->child_exited(p, status)) tasks.runner_exited(p, status, link->outbox());
      } else {
        ++terms;
        if (terms == 1) {
          drained_since = Clock::now();
          broker_log(LogLevel::Info, "draining: the agent claims nothing new; a second SIGTERM cancels running tasks");
        } else {
          broker_log(LogLevel::Info, "canceling the running tasks");
          for (auto& [id, t] : tasks.all()) tasks.cancel(t, ipc::CancelWhy::Operator);
        }
        link->drain(terms >= 2);
      }
    }
  };
  for (;;) {
    // Stop reading the jobs while the agent is far behind: they pause
    // (their output waits in the kernel) instead of filling memory.
    const bool agent_keeps_up = link->pending_bytes() < (8u << 20);
    std::vector<pollfd> fds = {{sigfd, POLLIN, 0}};
    link->add_pollfds(fds);
    const size_t first_task = fds.size();
    std::vector<Task*> polled;
    for (auto& [id, t] : tasks.all())
      if (t.readable() && agent_keeps_up) {
        fds.push_back({t.fd, POLLIN, 0});
        polled.push_back(&t);
      }
    if (poll(fds.data(), fds.size(), 500) < 0 && errno != EINTR) break;

    if (fds[0].revents & POLLIN) take_signals();
    link->service(fds, tasks);
    for (size_t i = 0; i < polled.size(); ++i)
      if (fds[first_task + i].revents & (POLLIN | POLLHUP | POLLERR)) tasks.read_runner(*polled[i], link->outbox());
    tasks.forget_done();
    link->flush();

    // Ending. By hand: when the agent we started ended by itself (a drain,
    // single-task, idle timeout, a configuration error) and no task runs.
    // Under systemd: drained, nothing runs, and the agent has kept every
    // event (or no agent came for kDeliveryWait: the rest is lost with us).
    if (tasks.running_count() == 0) {
      if (auto code = link->finished(); code) return *code;
      if (terms > 0 && !link->spawns_agent()) {
        bool delivered = tasks.all().empty();
        if (delivered || Clock::now() - drained_since > kDeliveryWait) return kPassed;
      }
    }
  }
  return kInfra;
}

}  // namespace gh::broker

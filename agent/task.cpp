// One task's life in the agent:
//   1. admission: the job's signature against the policy's trusted keys
//      (a refusal is a completion like any other: spooled, then sent);
//   2. the job file written to a root-only task folder;
//   3. `gatehouse run --stream-fd 3` as a child, its JSON lines turned
//      into records in the spool (durable before they are sent);
//   4. records sent in batches and heartbeats every 15 s while it runs
//      (a heartbeat's answer may cancel the task);
//   5. the completion, spooled, then sent until acknowledged.
// The child is our own binary, but its stream carries the job's output,
// so it is read with the same bounds as anything else.
#include "agent/task.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "agent/log.hpp"
#include "broker/audit.hpp"
#include "agent/control_client.hpp"
#include "protocol/job_signature.hpp"

extern char** environ;

namespace gh::agent {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxStreamLine = 512 * 1024;  // 64 KiB of output as base64, and room
constexpr size_t kBatchBytes = protocol::kMaxRequestBytes - 16 * 1024;  // encoded size; the rest is the envelope
constexpr size_t kEagerBytes = 256 * 1024;
constexpr auto kSendEvery = std::chrono::milliseconds(250);

// Exponential backoff with jitter for one kind of call.
struct Backoff {
  int attempt = 0;
  Clock::time_point next = Clock::time_point::min();
  bool due() const { return Clock::now() >= next; }
  void failed(std::mt19937_64& rng, int retry_after) {
    auto d = backoff_delay(attempt++, rng);
    if (retry_after > 0) d = std::chrono::seconds(std::min(retry_after, 300));
    next = Clock::now() + d;
  }
  void succeeded() {
    attempt = 0;
    next = Clock::time_point::min();
  }
};

// Sent: a batch was acknowledged, so there may be more to send at once.
enum class Fate { Going, Sent, Done, GiveUp };

class Task {
 public:
  Task(const ServeOptions& opts, AgentState& state, TaskSpool spool)
      : opts_(opts), state_(state), spool_(std::move(spool)), rng_(std::random_device{}()) {}

  void run(bool recovered);

 private:
  const protocol::Task& task() const { return spool_.task(); }
  std::string who() const { return "task " + task().id; }
  void spool_output(const std::string& text);
  void finish(protocol::Completion c);
  std::string admit(std::string& signed_by);
  bool spawn(const ActivePolicy& pol, const std::string& signed_by);
  void read_stream();
  void handle_line(const std::string& line);
  void signal_child(int sig);
  Fate send_some();
  Fate heartbeat(const char* state);
  Fate deliver_completion();
  Fate handle_error(const CallError& e, const char* what);
  void audit_refusal(const std::string& reason);

  const ServeOptions& opts_;
  AgentState& state_;
  TaskSpool spool_;
  std::mt19937_64 rng_;
  std::unique_ptr<ControlClient> client_;
  pid_t child_ = -1;
  int stream_ = -1;
  std::string partial_;
  std::optional<protocol::Completion> result_;  // from the child's result line
  bool canceled_ = false, timed_out_ = false, sent_term_ = false, keep_spool_ = false, first_step_seen_ = false;
  Clock::time_point started_ = Clock::now();
  Backoff send_backoff_, beat_backoff_, done_backoff_;
  Clock::time_point next_beat_ = Clock::now();
  Clock::time_point last_send_ = Clock::now() - kSendEvery;  // not time_point::min(): now - min() overflows
  bool progressed_ = false;  // the last round sent a batch
  size_t batch_records_ = protocol::kMaxRecordsPerBatch, batch_bytes_ = kBatchBytes;  // halved on 413
};

void Task::spool_output(const std::string& text) {
  if (auto s = spool_.append_output(text); !s) agent_log(LogLevel::Error, who() + ": spool: " + s.error().message);
}

// The completion is durable before anything tries to send it.
void Task::finish(protocol::Completion c) {
  c.last_seq = spool_.last_seq();
  if (auto s = spool_.sync(); !s) agent_log(LogLevel::Error, who() + ": spool: " + s.error().message);
  if (auto s = spool_.set_completion(c); !s) agent_log(LogLevel::Error, who() + ": spool: " + s.error().message);
  state_.metrics.job_finished(c.outcome);
  agent_log(LogLevel::Info, who() + ": " + c.outcome + (c.reason.empty() ? "" : ": " + c.reason));
}

void Task::audit_refusal(const std::string& reason) {
  auto pol = state_.policy();
  std::string path = opts_.audit_log.empty() ? pol->policy.audit.log : opts_.audit_log;
  auto log = gh::broker::AuditLog::open(path);
  if (!log) {
    agent_log(LogLevel::Error, who() + ": audit log: " + log.error().message);
    return;
  }
  nlohmann::json rec = {{"event", "refused"},
                        {"job_id", "task-" + task().id},
                        {"metadata",
                         {{"project", task().meta.project},
                          {"branch", task().meta.branch},
                          {"tag", task().meta.tag},
                          {"trigger", task().meta.trigger},
                          {"job", task().job_name},
                          {"signed_by", ""}}},
                        {"reason", reason},
                        {"exit_code", 3},
                        {"policy_digest", pol->digest}};
  if (auto s = log->append(rec); !s) agent_log(LogLevel::Error, who() + ": audit log: " + s.error().message);
}

// The signature check happens here, before anything of the job exists on
// this host: a refused job never reaches `gatehouse run`.
std::string Task::admit(std::string& signed_by) {
  auto pol = state_.policy();
  auto v = signature::verify_job(pol->policy.signatures, task().job_name, task().job_config, task().meta,
                                 task().signature);
  if (!v) return v.error().message;
  signed_by = v->key_name;
  return "";
}

bool Task::spawn(const ActivePolicy& pol, const std::string& signed_by) {
  // The job file gets a folder of its own: `checkout` copies the folder
  // the job file is in, and it must hold nothing but the job.
  const std::string dir = opts_.config.runner.working_directory + "/tasks/" + task().id;
  mkdir((opts_.config.runner.working_directory + "/tasks").c_str(), 0700);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    spool_output("gatehouse: cannot make " + dir + ": " + strerror(errno) + "\n");
    return false;
  }
  const std::string file = dir + "/config.yml";
  {
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f << task().job_config;
    if (!f.flush()) {
      spool_output("gatehouse: cannot write " + file + "\n");
      return false;
    }
  }
  std::vector<std::string> args = {opts_.gatehouse_path, "run", file, "--job", task().job_name, "--policy", pol.file,
                                   "--stream-fd", "3", "--task-id", task().id,
                                   "--work-root", opts_.config.runner.working_directory,
                                   "--lock-dir", opts_.config.runner.uid_lock_directory};
  auto add = [&](const char* flag, const std::string& v) {
    if (!v.empty()) {
      args.push_back(flag);
      args.push_back(v);
    }
  };
  add("--project", task().meta.project);
  add("--branch", task().meta.branch);
  add("--tag", task().meta.tag);
  add("--trigger", task().meta.trigger);
  add("--signed-by", signed_by);
  add("--audit-log", opts_.audit_log);

  // The child's environment is the agent's without what only the agent
  // may hold: the credentials folder and the agent's own settings.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("CREDENTIALS_DIRECTORY=") || kv.starts_with("GATEHOUSE_")) continue;
    env.emplace_back(kv);
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return false;
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return false;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (dup2(p[1], 3) < 0) _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(2, 1);  // the child's human output, if any, goes to the agent's log
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(p[1]);
  child_ = pid;
  stream_ = p[0];
  fcntl(stream_, F_SETFL, O_NONBLOCK);
  ++state_.jobs_alive;
  state_.metrics.job_started();
  return true;
}

void Task::handle_line(const std::string& line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    agent_log(LogLevel::Warn, who() + ": unreadable stream line from gatehouse run, ignored");
    return;
  }
  const std::string type = j["type"];
  try {
    if (type == "output") {
      auto bytes = protocol::base64_decode(j.at("data").get<std::string>(), protocol::kMaxOutputRecordBytes);
      if (!bytes) return;
      state_.metrics.add_log_bytes(bytes->size());
      spool_output(*bytes);
    } else if (type == "step") {
      protocol::Record r;
      r.type = protocol::RecordType::Step;
      r.index = j.at("index").get<uint32_t>();
      r.name = j.at("name").get<std::string>();
      r.state = j.at("state").get<std::string>();
      if (r.state == "finished") {
        r.outcome = j.at("outcome").get<std::string>();
        r.code = j.at("code").get<int64_t>();
        r.duration_ms = j.at("duration_ms").get<int64_t>();
      }
      if (r.state == "started" && !first_step_seen_) {
        first_step_seen_ = true;
        agent_log(LogLevel::Info, who() + ": first step started " +
                                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                         Clock::now() - started_).count()) +
                                      " ms after the claim");
      }
      if (auto s = spool_.append_step(r); !s) agent_log(LogLevel::Error, who() + ": spool: " + s.error().message);
    } else if (type == "setup") {
      state_.metrics.observe_setup_seconds(j.at("seconds").get<double>());
    } else if (type == "result") {
      protocol::Completion c;
      c.outcome = j.at("outcome").get<std::string>();
      c.exit_code = j.at("exit_code").get<int>();
      c.reason = j.at("reason").get<std::string>();
      c.peak_memory_bytes = j.value("peak_memory_bytes", uint64_t{0});
      c.cpu_usec = j.value("cpu_usec", uint64_t{0});
      c.duration_ms = j.value("duration_ms", uint64_t{0});
      result_ = c;
    }
  } catch (const nlohmann::json::exception& e) {
    agent_log(LogLevel::Warn, who() + ": stream line from gatehouse run has a bad field: " + e.what());
  }
}

void Task::read_stream() {
  char buf[65536];
  for (;;) {
    ssize_t n = read(stream_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      close(stream_);
      stream_ = -1;
      return;
    }
    partial_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
      handle_line(partial_.substr(start, nl - start));
    partial_.erase(0, start);
    if (partial_.size() > kMaxStreamLine) {
      // Our own child broke framing: stop it rather than guess.
      agent_log(LogLevel::Error, who() + ": a stream line from gatehouse run is over the bound; canceling");
      partial_.clear();
      signal_child(SIGKILL);
    }
  }
}

void Task::signal_child(int sig) {
  if (child_ > 0) kill(child_, sig);
}

Fate Task::handle_error(const CallError& e, const char* what) {
  state_.metrics.control_plane_error();
  const std::string msg = who() + ": " + what + ": " + e.message;
  if (e.status == 401 || e.status == 404 || e.status == 410) {
    agent_log(LogLevel::Error, msg + " (giving the task up)");
    return Fate::GiveUp;
  }
  agent_log(LogLevel::Warn, msg + " (will retry)");
  return Fate::Going;
}

Fate Task::send_some() {
  if (!send_backoff_.due()) return Fate::Going;
  // While the job runs, small amounts wait a little so a chatty job costs
  // a few calls a second, not one per line.
  if (child_ > 0 && spool_.pending_output_bytes() < kEagerBytes && Clock::now() - last_send_ < kSendEvery)
    return Fate::Going;
  last_send_ = Clock::now();
  auto pending = spool_.pending(batch_records_, batch_bytes_);
  if (!pending) {
    // The spool's own file is damaged: what is left cannot be sent
    // faithfully, and retrying will not mend it.
    agent_log(LogLevel::Error, who() + ": spool: " + pending.error().message + "; the folder " + spool_.path() +
                                   " is left for the operator");
    keep_spool_ = true;
    return Fate::GiveUp;
  }
  const auto& batch = *pending;
  if (batch.empty()) return Fate::Done;
  auto r = client_->send_records(task().id, task().token, batch);
  if (r.ok()) {
    state_.metrics.contact_succeeded();
    send_backoff_.succeeded();
    (void)spool_.acknowledge(r.value());
    return Fate::Sent;
  }
  const CallError& e = r.error();
  if (e.code == "out_of_order" || e.code == "missing_records") {
    // The server has fewer records than we thought it had: resend from its
    // acked, which the spool still holds (records are only forgotten once
    // acknowledged).
    agent_log(LogLevel::Warn, who() + ": the control plane has records through " + std::to_string(e.acked) +
                                  "; resending from there");
    return Fate::Going;
  }
  if ((e.status == 413 || e.code == "too_large") && batch.size() > 1) {
    // Split: half the records and half the bytes next time, down to one
    // record a call (which is always within the protocol's bounds).
    batch_records_ = std::max<size_t>(1, batch.size() / 2);
    batch_bytes_ = std::max<size_t>(1, batch_bytes_ / 2);
    agent_log(LogLevel::Warn, who() + ": a batch of " + std::to_string(batch.size()) +
                                  " records was too large (" + e.message + "); sending at most " +
                                  std::to_string(batch_records_) + " a call from now on");
    return Fate::Going;
  }
  auto f = handle_error(e, "sending records");
  send_backoff_.failed(rng_, e.retry_after);
  return f;
}

Fate Task::heartbeat(const char* st) {
  if (Clock::now() < next_beat_ || !beat_backoff_.due()) return Fate::Going;
  auto r = client_->heartbeat(task().id, task().token, st);
  if (!r.ok()) {
    auto f = handle_error(r.error(), "heartbeat");
    beat_backoff_.failed(rng_, r.error().retry_after);
    return f;
  }
  state_.metrics.contact_succeeded();
  beat_backoff_.succeeded();
  next_beat_ = Clock::now() + std::chrono::seconds(protocol::kHeartbeatSeconds);
  if (r.value().acked >= 0) (void)spool_.acknowledge(r.value().acked);
  if (r.value().cancel && child_ > 0 && !canceled_) {
    agent_log(LogLevel::Info, who() + ": canceled by the control plane");
    canceled_ = true;
    signal_child(SIGTERM);
  }
  return Fate::Going;
}

Fate Task::deliver_completion() {
  if (!done_backoff_.due()) return Fate::Going;
  auto c = spool_.completion();
  if (!c) return Fate::Done;
  auto r = client_->complete(task().id, task().token, *c);
  if (r.ok()) {
    state_.metrics.contact_succeeded();
    return Fate::Done;
  }
  const CallError& e = r.error();
  if (e.code == "already_completed") {
    agent_log(LogLevel::Warn, who() + ": the control plane already holds a different result; keeping its");
    return Fate::Done;
  }
  if (e.code == "missing_records") {
    // Records after e.acked are still in the spool (only acknowledged ones
    // are forgotten), so the next round sends them first.
    done_backoff_.succeeded();
    return Fate::Going;
  }
  auto f = handle_error(e, "completing");
  done_backoff_.failed(rng_, e.retry_after);
  return f;
}

void Task::run(bool recovered) {
  auto made = ControlClient::create(opts_.config, opts_.runner_token);
  if (!made) {
    agent_log(LogLevel::Error, who() + ": " + made.error().message);
    return;
  }
  client_ = std::make_unique<ControlClient>(std::move(*made));

  // A fresh claim is itself a sign of life; a recovered task beats at once
  // to learn how much the server already holds.
  if (!recovered) next_beat_ = Clock::now() + std::chrono::seconds(protocol::kHeartbeatSeconds);
  if (!recovered) {
    std::string signed_by;
    std::string refusal = admit(signed_by);
    auto pol = state_.policy();
    if (!refusal.empty()) {
      spool_output("gatehouse: refused: " + refusal + "\n");
      audit_refusal(refusal);
      finish({"refused", 3, refusal});
    } else if (!spawn(*pol, signed_by)) {
      finish({"infra_error", 4, "the agent could not start gatehouse run"});
    }
  }

  bool gave_up = false;
  auto max_run = std::chrono::seconds(opts_.config.runner.max_run_time_s);
  while (!gave_up) {
    const bool job_alive = child_ > 0;
    if (job_alive) {
      pollfd pfd{stream_, POLLIN, 0};
      poll(&pfd, stream_ >= 0 ? 1 : 0, 200);
      if (stream_ >= 0) read_stream();
      if (!sent_term_ && (state_.cancel_all || (max_run.count() > 0 && Clock::now() - started_ > max_run))) {
        sent_term_ = true;
        timed_out_ = !state_.cancel_all;
        canceled_ = state_.cancel_all;
        signal_child(SIGTERM);
      }
      int st = 0;
      if (stream_ < 0 && waitpid(child_, &st, WNOHANG) == child_) {
        child_ = -1;
        --state_.jobs_alive;
        state_.metrics.job_ended();
        protocol::Completion c;
        if (result_) {
          c = *result_;
        } else {
          c = {"infra_error", 4, "gatehouse run ended without a result (" +
                                     std::string(WIFSIGNALED(st) ? "signal " + std::to_string(WTERMSIG(st))
                                                                 : "exit " + std::to_string(WEXITSTATUS(st))) +
                                     ")"};
        }
        if (timed_out_) {
          c.outcome = "timed_out";
          c.reason = "the runner's max_run_time of " + std::to_string(max_run.count()) + "s was reached";
        } else if (canceled_ && c.outcome != "passed") {
          c.outcome = "canceled";
        }
        finish(c);
      }
    } else if (!progressed_) {
      std::unique_lock lk(state_.mu);
      state_.changed.wait_for(lk, std::chrono::milliseconds(200));
    }
    if (state_.stop_delivery && child_ < 0) break;  // shutting down: the spool keeps the rest
    if (heartbeat(child_ > 0 ? "running" : "delivering") == Fate::GiveUp) gave_up = true;
    Fate f = gave_up ? Fate::GiveUp : send_some();
    progressed_ = f == Fate::Sent;
    if (f == Fate::GiveUp) gave_up = true;
    if (f == Fate::Done && child_ < 0 && spool_.completion()) {
      Fate d = deliver_completion();
      if (d == Fate::Done) {
        (void)spool_.remove();
        break;
      }
      if (d == Fate::GiveUp) gave_up = true;
    }
  }
  if (gave_up) {
    if (child_ > 0) {
      signal_child(SIGTERM);
      waitpid(child_, nullptr, 0);
      --state_.jobs_alive;
      state_.metrics.job_ended();
    }
    if (!keep_spool_) (void)spool_.remove();
  }
  if (stream_ >= 0) close(stream_);
  std::string dir = opts_.config.runner.working_directory + "/tasks/" + task().id;
  unlink((dir + "/config.yml").c_str());
  rmdir(dir.c_str());
}

}  // namespace

void run_task(const ServeOptions& opts, AgentState& state, TaskSpool spool, bool recovered) {
  Task t(opts, state, std::move(spool));
  t.run(recovered);
}

}  // namespace gh::agent

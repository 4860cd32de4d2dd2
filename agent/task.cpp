// One task's life in the agent:
//   1. the broker is asked to run it (it checks the signature, the rules
//      and the profile, and may refuse: that is a completion like any other);
//   2. every job event the broker sends is rendered (report/render.cpp)
//      into the spool, made durable, and only then acknowledged, so the
//      broker keeps whatever the agent has not kept;
//   3. records are sent in batches, with heartbeats every 15 s while the
//      job runs (a heartbeat's answer may cancel the task);
//   4. the completion, spooled, then sent until acknowledged.
#include "agent/task.hpp"

#include <cerrno>
#include <cstring>
#include <random>

#include "agent/control_client.hpp"
#include "agent/log.hpp"
#include "report/render.hpp"

namespace gh::agent {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kBatchBytes = protocol::kMaxRequestBytes - 16 * 1024;  // encoded size; the rest is the envelope
constexpr size_t kEagerBytes = 256 * 1024;
constexpr auto kSendEvery = std::chrono::milliseconds(250);
constexpr auto kCancelConfirmWait = std::chrono::seconds(60);

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

class Task;

// The job's events, rendered into this task's spool: the transcript as
// output records, step records, and the result as the completion.
class SpoolRenderer : public report::Renderer {
 public:
  explicit SpoolRenderer(Task& t) : report::Renderer(false), task_(t) {}

 protected:
  void emit_text(std::string_view text) override;
  void emit_diagnostic(const std::string& text) override;
  void emit_step(const report::StepRecord& s) override;
  void emit_setup(double seconds) override;
  void emit_result(const ipc::ResultEvent& r) override;

 private:
  Task& task_;
};

class Task {
 public:
  Task(const ServeOptions& opts, AgentState& state, TaskSpool spool, bool holds_slot)
      : opts_(opts), state_(state), spool_(std::move(spool)), rng_(std::random_device{}()), out_(*this),
        holds_slot_(holds_slot) {}
  ~Task() { release_slot(); }

  void run(TaskStart how);

  // For the renderer.
  void spool_output(std::string_view text);
  void spool_step(const report::StepRecord& s);
  void setup_seconds(double s) { state_.metrics.observe_setup_seconds(s); }
  void got_result(const ipc::ResultEvent& r);
  void log_diagnostic(const std::string& text);

 private:
  const protocol::Task& task() const { return spool_.task(); }
  std::string who() const { return "task " + task().id; }
  void finish(protocol::Completion c);
  void job_started();
  void job_ended(protocol::Completion c);
  void take_events();
  void drop_replayed_events();
  void release_slot() {
    if (!holds_slot_) return;
    holds_slot_ = false;
    --state_.slots_busy;
    std::lock_guard lk(state_.mu);
    state_.changed.notify_all();
  }
  Fate send_some();
  Fate heartbeat(const char* state);
  std::chrono::seconds beat_interval() const {
    return std::chrono::seconds(job_alive_ ? protocol::kRunningHeartbeatSeconds : protocol::kHeartbeatSeconds);
  }
  Fate deliver_completion();
  Fate handle_error(const CallError& e, const char* what);

  const ServeOptions& opts_;
  AgentState& state_;
  TaskSpool spool_;
  std::mt19937_64 rng_;
  std::unique_ptr<ControlClient> client_;
  std::shared_ptr<TaskInbox> inbox_;
  SpoolRenderer out_;
  bool job_alive_ = false;   // the broker runs (or ran) it and its Result has not come
  uint64_t broker_seq_ = 0;  // the last event spooled
  bool canceled_ = false, timed_out_ = false, cancel_sent_ = false, keep_spool_ = false, first_step_seen_ = false;
  Clock::time_point started_ = Clock::now();
  Clock::time_point cancel_sent_at_ = Clock::time_point::max();
  Backoff send_backoff_, beat_backoff_, done_backoff_;
  Clock::time_point next_beat_ = Clock::now();
  Clock::time_point last_send_ = Clock::now() - kSendEvery;  // not time_point::min(): now - min() overflows
  bool progressed_ = false;  // the last round sent a batch
  bool holds_slot_;          // one of AgentState::slots_busy (serve.cpp start_task)
  size_t batch_records_ = protocol::kMaxRecordsPerBatch, batch_bytes_ = kBatchBytes;  // halved on 413
};

void SpoolRenderer::emit_text(std::string_view text) { task_.spool_output(text); }
void SpoolRenderer::emit_diagnostic(const std::string& text) {
  transcript_diagnostic(text);
  task_.log_diagnostic(text);
}
void SpoolRenderer::emit_step(const report::StepRecord& s) { task_.spool_step(s); }
void SpoolRenderer::emit_setup(double seconds) { task_.setup_seconds(seconds); }
void SpoolRenderer::emit_result(const ipc::ResultEvent& r) { task_.got_result(r); }

void Task::spool_output(std::string_view text) {
  state_.metrics.add_log_bytes(text.size());
  if (auto s = spool_.append_output(text); !s) agent_log(LogLevel::Error, who() + ": spool: " + s.error().message);
}

void Task::spool_step(const report::StepRecord& s) {
  protocol::Record r;
  r.type = protocol::RecordType::Step;
  r.index = s.index;
  r.name = s.name;
  r.state = s.state;
  if (s.state == "finished") {
    r.outcome = s.outcome;
    r.code = s.code;
    r.duration_ms = s.duration_ms;
  }
  if (s.state == "started" && !first_step_seen_) {
    first_step_seen_ = true;
    agent_log(LogLevel::Info, who() + ": first step started " +
                                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     Clock::now() - started_).count()) +
                                  " ms after the claim");
  }
  if (auto st = spool_.append_step(r); !st) agent_log(LogLevel::Error, who() + ": spool: " + st.error().message);
}

void Task::log_diagnostic(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (!line.empty()) agent_log(LogLevel::Warn, who() + ": " + line.substr(0, 1024));
}

// The completion is durable before anything tries to send it.
void Task::finish(protocol::Completion c) {
  c.last_seq = spool_.last_seq();
  if (auto s = spool_.sync(); !s) agent_log(LogLevel::Error, who() + ": spool: " + s.error().message);
  if (auto s = spool_.set_completion(c); !s) agent_log(LogLevel::Error, who() + ": spool: " + s.error().message);
  state_.metrics.job_finished(c.outcome);
  agent_log(LogLevel::Info, who() + ": " + c.outcome + (c.reason.empty() ? "" : ": " + c.reason));
}

void Task::job_started() {
  job_alive_ = true;
  ++state_.jobs_alive;
  state_.metrics.job_started();
}

void Task::job_ended(protocol::Completion c) {
  if (!job_alive_) return;
  job_alive_ = false;
  --state_.jobs_alive;
  state_.metrics.job_ended();
  auto max_run = std::chrono::seconds(opts_.config.runner.max_run_time_s);
  if (timed_out_) {
    c.outcome = "timed_out";
    c.reason = "the runner's max_run_time of " + std::to_string(max_run.count()) + "s was reached";
  } else if (canceled_ && c.outcome != "passed") {
    c.outcome = "canceled";
  }
  finish(c);
  release_slot();  // the result is in the spool: the next claim may start
}

void Task::got_result(const ipc::ResultEvent& r) {
  protocol::Completion c;
  c.outcome = r.outcome;
  c.exit_code = r.exit_code;
  c.reason = r.reason;
  c.peak_memory_bytes = r.peak_memory_bytes;
  c.cpu_usec = r.cpu_usec;
  c.duration_ms = r.duration_ms;
  job_ended(c);
}

// Renders what the broker sent into the spool, makes it durable, then
// acknowledges it.
void Task::take_events() {
  std::deque<ipc::TaskEventMsg> events;
  std::optional<std::string> rejected;
  {
    std::unique_lock lk(inbox_->mu);
    if (inbox_->events.empty() && !inbox_->rejected && !state_.link->lost())
      inbox_->cv.wait_for(lk, std::chrono::milliseconds(200));
    events.swap(inbox_->events);
    rejected = inbox_->rejected;
  }
  if (rejected && job_alive_ && !out_.have_result()) {
    spool_output("gatehouse: the broker did not start the task: " + *rejected + "\n");
    job_ended({"infra_error", 4, "the broker did not start the task: " + *rejected});
    return;
  }
  uint64_t last = broker_seq_;
  for (auto& e : events) {
    if (e.seq <= broker_seq_ || out_.have_result()) continue;  // kept already (a replay), or after the end
    if (!out_.event(static_cast<ipc::BrokerMsg>(e.type), e.payload))
      agent_log(LogLevel::Error, who() + ": a malformed " + ipc::broker_msg_name(static_cast<ipc::BrokerMsg>(e.type)) +
                                     " event from the broker, dropped");
    broker_seq_ = e.seq;
  }
  if (broker_seq_ == last) {
    // Only events the spool holds already (a replay after a restart): the
    // broker may forget them, or it would hold the task for ever.
    if (!events.empty() && broker_seq_ > 0) state_.link->ack(task().id, broker_seq_);
    return;
  }
  if (auto s = spool_.sync(); !s) {
    agent_log(LogLevel::Error, who() + ": spool: " + s.error().message + " (not acknowledging to the broker)");
    return;
  }
  // An agent that dies between the sync and this gets those events again
  // and drops them by number.
  if (auto st = spool_.set_broker_seq(broker_seq_); !st)
    agent_log(LogLevel::Error, who() + ": spool: " + st.error().message);
  state_.link->ack(task().id, broker_seq_);
}

// After the job's end is kept: whatever the broker still sends of it (a
// replay after a restart) is acknowledged so the broker can let it go.
void Task::drop_replayed_events() {
  uint64_t last = 0;
  {
    std::lock_guard lk(inbox_->mu);
    for (const auto& e : inbox_->events) last = std::max(last, e.seq);
    inbox_->events.clear();
  }
  if (last > 0) state_.link->ack(task().id, last);
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
  if (job_alive_ && spool_.pending_output_bytes() < kEagerBytes && Clock::now() - last_send_ < kSendEvery)
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
  next_beat_ = Clock::now() + beat_interval();
  if (r.value().acked >= 0) (void)spool_.acknowledge(r.value().acked);
  if (r.value().cancel && job_alive_ && !canceled_) {
    agent_log(LogLevel::Info, who() + ": canceled by the control plane");
    canceled_ = true;
    cancel_sent_ = true;
    cancel_sent_at_ = Clock::now();
    state_.link->cancel(task().id, ipc::CancelWhy::Operator);
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

void Task::run(TaskStart how) {
  {
    std::lock_guard lk(state_.clients_mu);
    if (!state_.idle_clients.empty()) {
      client_ = std::move(state_.idle_clients.back());
      state_.idle_clients.pop_back();
    }
  }
  if (!client_) {
    auto made = ControlClient::create(opts_.config, opts_.runner_token);
    if (!made) {
      agent_log(LogLevel::Error, who() + ": " + made.error().message);
      return;
    }
    client_ = std::make_unique<ControlClient>(std::move(*made));
  }
  // Back to the pool at the end, with its connection, for the next task.
  struct GiveBack {
    AgentState& s;
    std::unique_ptr<ControlClient>& c;
    ~GiveBack() {
      std::lock_guard lk(s.clients_mu);
      s.idle_clients.push_back(std::move(c));
    }
  } give_back{state_, client_};
  inbox_ = state_.link->inbox(task().id);

  if (how == TaskStart::Fresh) {
    // A fresh claim is itself a sign of life.
    next_beat_ = Clock::now() + std::chrono::seconds(protocol::kRunningHeartbeatSeconds);
    ipc::RunTaskRequest r{task().id, task().job_name, task().job_config,
                          {task().meta.project, task().meta.branch, task().meta.tag, task().meta.trigger, task().meta.revision},
                          std::nullopt};
    if (task().signature) r.signature = ipc::TaskSignature{task().signature->key, task().signature->ed25519};
    job_started();
    if (!state_.link->run_task(r)) job_ended({"infra_error", 4, "the agent lost the broker before the task started"});
  } else if (how == TaskStart::Attach) {
    // A recovered task beats at once to learn how much the server holds;
    // the broker sends again what the spool does not have. A spool with a
    // completion already kept the job's end: only delivery is left, and
    // what the broker replays is acknowledged and dropped.
    broker_seq_ = spool_.broker_seq();
    if (!spool_.completion()) {
      // Records made durable just before the last agent died, of events it
      // had not yet marked as kept: the broker sends those events again.
      if (auto cut = spool_.cut_unmarked_records(); !cut)
        agent_log(LogLevel::Error, who() + ": spool: " + cut.error().message);
      else if (*cut > 0)
        agent_log(LogLevel::Info, who() + ": " + std::to_string(*cut) +
                                      " records were spooled but not marked; the broker sends their events again");
      job_started();
    }
  } else if (!spool_.completion()) {
    job_started();
    spool_output("gatehouse: the job ended while the agent was down, and the broker no longer holds it "
                 "(the broker was restarted): its result is lost\n");
    job_ended({"infra_error", 4, "the job's result was lost: the broker was restarted while the agent was down"});
  }

  bool gave_up = false;
  auto max_run = std::chrono::seconds(opts_.config.runner.max_run_time_s);
  while (!gave_up) {
    if (job_alive_) {
      take_events();
      if (job_alive_ && state_.link->lost()) break;  // shutting down: the spool keeps the rest
      if (job_alive_ && !cancel_sent_ &&
          (state_.cancel_all || (max_run.count() > 0 && Clock::now() - started_ > max_run))) {
        cancel_sent_ = true;
        cancel_sent_at_ = Clock::now();
        timed_out_ = !state_.cancel_all;
        canceled_ = state_.cancel_all;
        state_.link->cancel(task().id, ipc::CancelWhy::Operator);
      }
      // The broker ends a canceled job within its grace (SIGTERM, 10 s,
      // then the cgroup is killed) and sends its result. One that does not
      // come (the broker lost the task) must not hold the slot for ever.
      if (job_alive_ && cancel_sent_ && Clock::now() - cancel_sent_at_ > kCancelConfirmWait) {
        spool_output("gatehouse: the broker did not confirm the end of the canceled job within " +
                     std::to_string(kCancelConfirmWait.count()) + "s; the task ends here\n");
        job_ended({"canceled", 4, "canceled; the broker did not confirm the job's end"});
      }
    } else {
      drop_replayed_events();
      if (!progressed_) {
        std::unique_lock lk(state_.mu);
        state_.changed.wait_for(lk, std::chrono::milliseconds(200));
      }
    }
    if (state_.stop_delivery && !job_alive_) break;  // shutting down: the spool keeps the rest
    if (heartbeat(job_alive_ ? "running" : "delivering") == Fate::GiveUp) gave_up = true;
    Fate f = gave_up ? Fate::GiveUp : send_some();
    progressed_ = f == Fate::Sent;
    if (f == Fate::GiveUp) gave_up = true;
    if (f == Fate::Done && !job_alive_ && spool_.completion()) {
      Fate d = deliver_completion();
      if (d == Fate::Done) {
        (void)spool_.remove();
        break;
      }
      if (d == Fate::GiveUp) gave_up = true;
    }
  }
  if (gave_up) {
    if (job_alive_) {
      // The control plane gave the task up: the job must not go on, and
      // what the broker still sends of it is acknowledged and dropped.
      state_.link->cancel(task().id, ipc::CancelWhy::Operator);
      discard_task_events(*state_.link, task().id);
      job_alive_ = false;
      --state_.jobs_alive;
      state_.metrics.job_ended();
    }
    if (!keep_spool_) (void)spool_.remove();
  }
  if (job_alive_) {  // left running for the next agent (link lost)
    --state_.jobs_alive;
    state_.metrics.job_ended();
  }
  state_.link->forget(task().id);
}

}  // namespace

void discard_task_events(BrokerLink& link, const std::string& task_id) {
  auto inbox = link.inbox(task_id);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  bool ended = false;
  while (!ended && !link.lost() && Clock::now() < deadline) {
    std::deque<ipc::TaskEventMsg> events;
    {
      std::unique_lock lk(inbox->mu);
      inbox->cv.wait_for(lk, std::chrono::milliseconds(200));
      events.swap(inbox->events);
      ended = inbox->rejected.has_value();
    }
    for (const auto& e : events) ended = ended || e.type == static_cast<uint32_t>(ipc::BrokerMsg::Result);
    if (!events.empty()) link.ack(task_id, events.back().seq);
  }
  link.forget(task_id);
}

void run_task(const ServeOptions& opts, AgentState& state, TaskSpool spool, TaskStart how) {
  Task t(opts, state, std::move(spool), how != TaskStart::Deliver);
  t.run(how);
}

}  // namespace gh::agent

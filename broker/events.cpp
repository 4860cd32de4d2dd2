#include "broker/events.hpp"

#include <unistd.h>

#include <cerrno>

namespace gh::broker {

namespace {

ipc::StepEnd step_end(const StepView& s, const StepResult& r) {
  return {s.name, r.started, r.finished, static_cast<uint32_t>(r.outcome), r.code,
          static_cast<uint64_t>(r.duration.count())};
}

// A job file's names and reasons are bounded by the parser already; these
// cuts only keep every event within its message bound whatever happens.
std::string cut(const std::string& s, size_t max) { return s.size() <= max ? s : s.substr(0, max); }

}  // namespace

const char* verdict_outcome(const RunVerdict& v) {
  if (v.canceled) return "canceled";
  if (v.timed_out) return "timed_out";
  switch (v.exit_code) {
    case kPassed: return "passed";
    case kStepFailed: return "failed";
    case kBadInput:
    case kRefused: return "refused";
    default: return "infra_error";
  }
}

JobEvents::JobEvents(int fd) : fd_(fd) {}
JobEvents::~JobEvents() = default;

void JobEvents::send(ipc::BrokerMsg type, const std::string& payload) {
  if (fd_ < 0 || sink_lost_) return;
  if (!ipc::write_all(fd_, ipc::frame(type, payload))) sink_lost_ = true;
}

void JobEvents::read_client() {
  char buf[4096];
  ssize_t n = read(fd_, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0 || !in_.feed(std::string_view(buf, static_cast<size_t>(n)))) {
    sink_lost_ = true;
    return;
  }
  while (auto m = in_.next()) {
    // The only message a client may send; anything else means it is not
    // a client we can keep showing the job to.
    auto c = m->type == ipc::BrokerMsg::Cancel ? ipc::decode<ipc::CancelRequest>(m->payload)
                                               : Result<ipc::CancelRequest>(err("not a Cancel"));
    if (!c) {
      sink_lost_ = true;
      return;
    }
    if (c->why == ipc::CancelWhy::SinkLost) sink_lost_ = true;
    if (!cancel_) cancel_ = c->why;
  }
}

void JobEvents::job_header(const std::string& job, const std::string& file, const std::string& profile,
                           const std::string& sandbox, uint32_t node_index, uint32_t node_total) {
  send(ipc::BrokerMsg::JobHeader, ipc::encode(ipc::JobHeaderEvent{cut(job, 1024), cut(file, 4096), cut(profile, 1024),
                                                                  cut(sandbox, 4096), node_index, node_total}));
}

void JobEvents::plan(const job::WorkflowPlan& p) { send(ipc::BrokerMsg::Plan, ipc::encode(ipc::PlanEvent{p})); }

void JobEvents::step_started(size_t index, size_t total, const StepView& s) {
  send(ipc::BrokerMsg::StepStarted,
       ipc::encode(ipc::StepStartedEvent{static_cast<uint32_t>(index), static_cast<uint32_t>(total),
                                         cut(s.name, ipc::kMaxStepName), s.background}));
}

void JobEvents::output(size_t index, std::string_view bytes) {
  while (!bytes.empty()) {
    std::string_view piece = bytes.substr(0, ipc::kMaxOutputEventBytes);
    bytes.remove_prefix(piece.size());
    send(ipc::BrokerMsg::Output, ipc::encode(ipc::OutputEvent{static_cast<uint32_t>(index), std::string(piece)}));
  }
}

void JobEvents::step_finished(size_t index, const StepView& s, const StepResult& r) {
  send(ipc::BrokerMsg::StepFinished,
       ipc::encode(ipc::StepFinishedEvent{static_cast<uint32_t>(index), step_end({cut(s.name, ipc::kMaxStepName),
                                                                                 s.background}, r)}));
}

void JobEvents::note(const std::string& line) {
  send(ipc::BrokerMsg::Note, ipc::encode(ipc::TextEvent{cut(line, ipc::kMaxEventText)}));
}

void JobEvents::diagnostic(const std::string& text) {
  send(ipc::BrokerMsg::Diagnostic, ipc::encode(ipc::TextEvent{cut(text, (1u << 20) - 16)}));
}

void JobEvents::setup_time(std::chrono::duration<double> seconds) {
  send(ipc::BrokerMsg::Setup, ipc::encode(ipc::SetupEvent{static_cast<uint64_t>(seconds.count() * 1e6)}));
}

void JobEvents::summary(const std::vector<StepView>& steps, const std::vector<StepResult>& results, int exit_code,
                        const std::string& reason, uint64_t peak_memory, uint64_t cpu_usec,
                        std::chrono::milliseconds wall, const char* ending) {
  ipc::SummaryEvent e;
  for (size_t i = 0; i < steps.size(); ++i)
    e.steps.push_back(step_end({cut(steps[i].name, ipc::kMaxStepName), steps[i].background},
                               i < results.size() ? results[i] : StepResult{}));
  e.exit_code = exit_code;
  e.reason = cut(reason, ipc::kMaxEventText);
  e.peak_memory_bytes = peak_memory;
  e.cpu_usec = cpu_usec;
  e.wall_ms = static_cast<uint64_t>(wall.count());
  e.ending = ending;
  send(ipc::BrokerMsg::Summary, ipc::encode(e));
}

void JobEvents::result(const RunVerdict& v) {
  send(ipc::BrokerMsg::Result,
       ipc::encode(ipc::ResultEvent{v.exit_code, verdict_outcome(v), cut(v.reason, 4096), v.peak_memory_bytes,
                                    v.cpu_usec, static_cast<uint64_t>(v.duration.count())}));
}

}  // namespace gh::broker

#include "ipc/broker_messages.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace gh::ipc {

namespace {

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * 1024;

// Meta fields and names as the control-plane protocol bounds them.
constexpr size_t kMaxMeta = 1024;
constexpr size_t kMaxName = 1024;

}  // namespace

size_t broker_msg_bound(uint32_t type) {
  switch (static_cast<BrokerMsg>(type)) {
    case BrokerMsg::JobHeader: return 64 * KiB;
    case BrokerMsg::StepStarted:
    case BrokerMsg::StepFinished: return 8 * KiB;
    case BrokerMsg::Output: return kMaxOutputEventBytes + 16;
    case BrokerMsg::Note: return kMaxEventText + 8;
    case BrokerMsg::Diagnostic: return MiB;
    case BrokerMsg::Setup:
    case BrokerMsg::Cancel:
    case BrokerMsg::Drain: return 16;
    case BrokerMsg::Plan: return 6 * MiB;
    case BrokerMsg::Summary: return 2 * MiB;
    case BrokerMsg::Result: return 16 * KiB;
    case BrokerMsg::Hello:
    case BrokerMsg::CancelTask:
    case BrokerMsg::Ack: return KiB;
    case BrokerMsg::RunTask: return MiB + 64 * KiB;
    case BrokerMsg::Welcome: return MiB;
    case BrokerMsg::TaskEvent: return 2 * MiB + KiB;
    case BrokerMsg::TaskRejected: return 8 * KiB;
  }
  return 0;
}

bool is_job_event(BrokerMsg t) { return static_cast<uint32_t>(t) >= 1 && static_cast<uint32_t>(t) <= 9; }

const char* broker_msg_name(BrokerMsg t) {
  switch (t) {
    case BrokerMsg::JobHeader: return "JobHeader";
    case BrokerMsg::StepStarted: return "StepStarted";
    case BrokerMsg::Output: return "Output";
    case BrokerMsg::StepFinished: return "StepFinished";
    case BrokerMsg::Note: return "Note";
    case BrokerMsg::Diagnostic: return "Diagnostic";
    case BrokerMsg::Setup: return "Setup";
    case BrokerMsg::Summary: return "Summary";
    case BrokerMsg::Result: return "Result";
    case BrokerMsg::Cancel: return "Cancel";
    case BrokerMsg::Plan: return "Plan";
    case BrokerMsg::Hello: return "Hello";
    case BrokerMsg::RunTask: return "RunTask";
    case BrokerMsg::CancelTask: return "CancelTask";
    case BrokerMsg::Ack: return "Ack";
    case BrokerMsg::Welcome: return "Welcome";
    case BrokerMsg::TaskEvent: return "TaskEvent";
    case BrokerMsg::TaskRejected: return "TaskRejected";
    case BrokerMsg::Drain: return "Drain";
  }
  return "unknown";
}

// One template per payload serves both directions (ipc/codec.hpp); the
// explicit instantiations below are what the header declares.
namespace {

template <class C>
void step_end(C& c, StepEnd& s) {
  c.str(s.name, kMaxStepName);
  c.boolean(s.started);
  c.boolean(s.finished);
  c.u32(s.outcome);
  c.u32(s.code);
  c.u64(s.duration_ms);
  if constexpr (C::kDecoding) c.require(s.outcome <= 5, "a step outcome that does not exist");
}

template <class C>
void task_id(C& c, std::string& id) {
  c.str(id, kMaxTaskId);
  if constexpr (C::kDecoding) {
    bool good = !id.empty();
    for (char ch : id)
      if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
        good = false;
    c.require(good, "a task id that is not 1 to 64 of [A-Za-z0-9_-]");
  }
}

template <class C>
void cancel_why(C& c, CancelWhy& w) {
  c.enumeration(w, 3);
  if constexpr (C::kDecoding) c.require(w != CancelWhy{0}, "a cancel without a reason");
}

// A name the front end may show and pass on: no control characters (C0,
// DEL, and C1 as UTF-8 encodes it), not empty, bounded.
bool plan_name_ok(const std::string& s) {
  if (s.empty() || s.size() > kMaxPlanName) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f)
      return false;
  }
  return true;
}

template <class C>
void plan_job(C& c, job::WorkflowJob& j) {
  c.str(j.name, kMaxPlanName);
  strings(c, j.needs, job::kMaxWorkflowJobs, kMaxPlanName);
  c.u32(j.parallelism);
  c.boolean(j.approval);
}

}  // namespace

std::string plan_problem(const job::WorkflowPlan& p) {
  if (!plan_name_ok(p.name)) return "the workflow's name is empty, too long or holds control characters";
  if (p.jobs.size() > job::kMaxWorkflowJobs || p.filtered_out.size() > job::kMaxWorkflowJobs)
    return "the workflow has more than " + std::to_string(job::kMaxWorkflowJobs) + " jobs";
  std::vector<std::string> seen;  // in order; the plan is at most 1000 jobs
  size_t needs = 0;
  for (const auto& j : p.jobs) {
    if (!plan_name_ok(j.name)) return "a job's name is empty, too long or holds control characters";
    if (j.parallelism < 1 || j.parallelism > job::kMaxParallelism || (j.approval && j.parallelism != 1))
      return "job `" + j.name + "` has " + std::to_string(j.parallelism) + " nodes";
    needs += j.needs.size();
    if (needs > kMaxPlanNeeds) return "the jobs need each other more than " + std::to_string(kMaxPlanNeeds) + " times";
    for (const auto& n : j.needs)
      if (std::find(seen.begin(), seen.end(), n) == seen.end())
        return "job `" + j.name + "` needs `" + n + "`, which does not run before it";
    if (std::find(seen.begin(), seen.end(), j.name) != seen.end()) return "job `" + j.name + "` is listed twice";
    seen.push_back(j.name);
  }
  for (const auto& f : p.filtered_out)
    if (!plan_name_ok(f)) return "a filtered-out job's name is empty, too long or holds control characters";
  return {};
}

#define GH_BOTH(T, BODY)                      \
  template <class C>                          \
  static void fields_impl(C& c, T& v) BODY   \
  void fields(Encoder& c, T& v) { fields_impl(c, v); } \
  void fields(Decoder& c, T& v) { fields_impl(c, v); }

GH_BOTH(JobHeaderEvent, {
  c.str(v.job, kMaxName);
  c.str(v.file, 4096);
  c.str(v.profile, kMaxName);
  c.str(v.sandbox, 4096);
  c.u32(v.node_index);
  c.u32(v.node_total);
  if constexpr (C::kDecoding)
    c.require(v.node_total >= 1 && v.node_total <= job::kMaxParallelism && v.node_index < v.node_total,
              "a node index out of range");
})
GH_BOTH(StepStartedEvent, {
  c.u32(v.index);
  c.u32(v.total);
  c.str(v.name, kMaxStepName);
  c.boolean(v.background);
  if constexpr (C::kDecoding) c.require(v.index < v.total && v.total <= kMaxEventSteps, "a step index out of range");
})
GH_BOTH(OutputEvent, {
  c.u32(v.index);
  c.str(v.bytes, kMaxOutputEventBytes);
  if constexpr (C::kDecoding) c.require(v.index < kMaxEventSteps, "output of a step that cannot exist");
})
GH_BOTH(StepEnd, { step_end(c, v); })
GH_BOTH(StepFinishedEvent, {
  c.u32(v.index);
  step_end(c, v.step);
  if constexpr (C::kDecoding) c.require(v.index < kMaxEventSteps, "a step index out of range");
})
GH_BOTH(TextEvent, { c.str(v.text, MiB - 8); })
GH_BOTH(SetupEvent, { c.u64(v.micros); })
GH_BOTH(SummaryEvent, {
  c.list(v.steps, kMaxEventSteps, [&](StepEnd& s) { step_end(c, s); });
  c.i32(v.exit_code);
  c.str(v.reason, kMaxEventText);
  c.u64(v.peak_memory_bytes);
  c.u64(v.cpu_usec);
  c.u64(v.wall_ms);
  c.str(v.ending, 32);
})
GH_BOTH(ResultEvent, {
  c.i32(v.exit_code);
  c.str(v.outcome, 32);
  c.str(v.reason, 8 * KiB);
  c.u64(v.peak_memory_bytes);
  c.u64(v.cpu_usec);
  c.u64(v.duration_ms);
})
GH_BOTH(CancelRequest, { cancel_why(c, v.why); })
GH_BOTH(PlanEvent, {
  c.str(v.plan.name, kMaxPlanName);
  c.list(v.plan.jobs, job::kMaxWorkflowJobs, [&](job::WorkflowJob& j) { plan_job(c, j); });
  strings(c, v.plan.filtered_out, job::kMaxWorkflowJobs, kMaxPlanName);
  check(c, [&] { return plan_problem(v.plan); });
})
GH_BOTH(HelloRequest, {
  c.u32(v.version);
  c.str(v.runner, 128);
})
GH_BOTH(TaskMeta, {
  c.str(v.project, kMaxMeta);
  c.str(v.branch, kMaxMeta);
  c.str(v.tag, kMaxMeta);
  c.str(v.trigger, kMaxMeta);
  c.str(v.revision, kMaxMeta);
})
GH_BOTH(TaskSignature, {
  c.str(v.key, 64);
  c.str(v.ed25519, 128);
})
GH_BOTH(RunTaskRequest, {
  task_id(c, v.task_id);
  c.str(v.job_name, kMaxName);
  c.str(v.config, kMaxJobConfigBytes);
  fields(c, v.meta);
  c.optional(v.signature, [&](TaskSignature& s) { fields(c, s); });
})
GH_BOTH(CancelTaskRequest, {
  task_id(c, v.task_id);
  cancel_why(c, v.why);
})
GH_BOTH(AckRequest, {
  task_id(c, v.task_id);
  c.u64(v.seq);
})
GH_BOTH(HeldTask, {
  task_id(c, v.task_id);
  c.boolean(v.running);
  c.u64(v.next_seq);
})
GH_BOTH(WelcomeEvent, {
  c.u32(v.version);
  c.str(v.policy_digest, 64);
  c.list(v.tasks, 1024, [&](HeldTask& t) { fields(c, t); });
})
GH_BOTH(TaskEventMsg, {
  task_id(c, v.task_id);
  c.u64(v.seq);
  c.u32(v.type);
  c.str(v.payload, 2 * MiB);
  if constexpr (C::kDecoding) {
    c.require(is_job_event(static_cast<BrokerMsg>(v.type)), "a task event that is not a job event");
    c.require(v.payload.size() <= broker_msg_bound(v.type), "a task event over its type's bound");
  }
})
GH_BOTH(TaskRejectedEvent, {
  task_id(c, v.task_id);
  c.str(v.why, 4 * KiB);
})
GH_BOTH(DrainEvent, { c.boolean(v.now); })
#undef GH_BOTH

std::string frame(BrokerMsg type, std::string_view payload) {
  std::string out;
  out.reserve(kBrokerHeaderBytes + payload.size());
  Encoder e;
  uint32_t magic = kBrokerMagic, t = static_cast<uint32_t>(type), len = static_cast<uint32_t>(payload.size());
  e.u32(magic);
  e.u32(t);
  e.u32(len);
  out = e.take();
  out.append(payload);
  return out;
}

bool BrokerStreamReader::feed(std::string_view bytes) {
  if (broken()) return false;
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  buf_.append(bytes);
  return check_header();
}

// Framing before meaning: the header is checked as soon as it is complete,
// so an oversized or unknown message is refused before its payload is
// buffered.
bool BrokerStreamReader::check_header() {
  if (buf_.size() - pos_ < kBrokerHeaderBytes) return true;
  Decoder d(std::string_view(buf_).substr(pos_, kBrokerHeaderBytes));
  uint32_t magic = 0, type = 0, len = 0;
  d.u32(magic);
  d.u32(type);
  d.u32(len);
  if (magic != kBrokerMagic) {
    error_ = "the peer does not speak this protocol (bad magic)";
    return false;
  }
  const size_t bound = broker_msg_bound(type);
  if (bound == 0) {
    error_ = "unknown message type " + std::to_string(type);
    return false;
  }
  if (len > bound) {
    error_ = std::string(broker_msg_name(static_cast<BrokerMsg>(type))) + " message of " + std::to_string(len) +
             " bytes is over its bound of " + std::to_string(bound);
    return false;
  }
  return true;
}

std::optional<BrokerMessage> BrokerStreamReader::next() {
  if (broken() || !check_header() || buf_.size() - pos_ < kBrokerHeaderBytes) return std::nullopt;
  Decoder d(std::string_view(buf_).substr(pos_, kBrokerHeaderBytes));
  uint32_t magic = 0, type = 0, len = 0;
  d.u32(magic);
  d.u32(type);
  d.u32(len);
  if (buf_.size() - pos_ - kBrokerHeaderBytes < len) return std::nullopt;
  BrokerMessage m{static_cast<BrokerMsg>(type), buf_.substr(pos_ + kBrokerHeaderBytes, len)};
  pos_ += kBrokerHeaderBytes + len;
  if (pos_ > (1u << 20) && pos_ * 2 > buf_.size()) {  // keep the buffer from growing with consumed bytes
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return m;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 1000);
      continue;
    }
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace gh::ipc

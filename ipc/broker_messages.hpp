// Every message between the broker and its clients, the phase each is
// allowed in and its size bound (OpenSSH monitor style: one list, checked
// in one place). The worker's channel has its own list (ipc/messages.hpp).
//
// Two channels carry these (docs/architecture.md):
//   client channel  `gatehouse-broker run` (one job) and whoever started
//                   it: the `gatehouse run` front end, or the broker daemon
//                   for one task of the agent's;
//   agent link      gatehouse-agent and `gatehouse-broker serve`.
//
// Transport: a SOCK_STREAM unix socket. A message is a 12-byte header
// (magic, type, payload length) then the payload, encoded with
// ipc/codec.hpp. The receiver reads the header, refuses an unknown type or
// a length over that type's bound BEFORE it reads the payload, then checks
// the phase, then decodes (every field bounded), then checks meaning.
//
//  job events, `gatehouse-broker run` -> client (the daemon passes them to
//  the agent inside TaskEvent, unchanged):
//   type          payload                                             bound
//   JobHeader     job, file, profile, sandbox text, node index and    64 KiB
//                 total (CIRCLE_NODE_INDEX, CIRCLE_NODE_TOTAL)
//   StepStarted   index, total, name, background                      8 KiB
//   Output        step index, bytes (already masked)                  64 KiB + 16
//   StepFinished  index, name, outcome, code, duration, started       8 KiB
//   Note          a line of Gatehouse's own                           64 KiB
//   Diagnostic    why the run failed or was refused (may quote the    1 MiB
//                 job file: rendered file:line:col errors)
//   Setup         how long the sandbox took to build                  16
//   Summary       every step's end, exit code, reason, figures        2 MiB
//   Result        the verdict; always the last event of a job         16 KiB
//
//  client -> `gatehouse-broker run`; allowed until the Result was sent:
//   Cancel        why: the operator, or the client can no longer      16
//                 show the job's output
//
//  `gatehouse-broker plan` -> the `gatehouse run --workflow` front end
//  (root: it reads this before any job runs, and nothing else of the
//  broker's but exit statuses; SECURITY.md):
//   Plan          a workflow's jobs in dependency order: names,        6 MiB
//                 needs, nodes, approvals; the filtered-out names.
//                 The plan run's only message when it succeeds;
//                 otherwise Diagnostic then Result, as `run` ends
//
//  agent -> daemon:
//   Hello         protocol version, runner name          AwaitHello   1 KiB
//   RunTask       task id, job name, config, metadata,   Ready        1 MiB + 64 KiB
//                 signature
//   CancelTask    task id, reason                        Ready        1 KiB
//   Ack           task id, last event seq spooled        Ready        1 KiB
//  daemon -> agent:
//   Welcome       version, policy digest, tasks the daemon still holds
//                 (id, state, first unacknowledged seq)                 1 MiB
//   TaskEvent     task id, seq, one job event (type and payload)       2 MiB + 1 KiB
//   TaskRejected  task id, why (draining, a duplicate id...): the task  8 KiB
//                 was not started, nothing of it ran
//   Drain         stop claiming; `now`: running tasks are canceled     16
//
// The daemon treats everything the agent sends as hostile: it re-checks the
// task's signature, the rules and the profile itself (broker/job_runner.cpp)
// and takes nothing the agent says as a path, a uid or a privilege.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "ipc/codec.hpp"
#include "policy/job.hpp"

namespace gh::ipc {

inline constexpr uint32_t kBrokerMagic = 0x47480102;  // "GH", channel 1, framing version 2
inline constexpr uint32_t kBrokerProtocolVersion = 1;
inline constexpr size_t kBrokerHeaderBytes = 12;

enum class BrokerMsg : uint32_t {
  // job events
  JobHeader = 1,
  StepStarted = 2,
  Output = 3,
  StepFinished = 4,
  Note = 5,
  Diagnostic = 6,
  Setup = 7,
  Summary = 8,
  Result = 9,
  // client -> runner
  Cancel = 20,
  // plan runner -> front end
  Plan = 25,
  // agent -> daemon
  Hello = 30,
  RunTask = 31,
  CancelTask = 32,
  Ack = 33,
  // daemon -> agent
  Welcome = 40,
  TaskEvent = 41,
  TaskRejected = 42,
  Drain = 43,
};

// The payload bound of a type, or 0 for a number that is no type.
size_t broker_msg_bound(uint32_t type);
bool is_job_event(BrokerMsg t);
const char* broker_msg_name(BrokerMsg t);

// ---- job events ----

inline constexpr size_t kMaxEventText = 64 * 1024;
inline constexpr size_t kMaxOutputEventBytes = 64 * 1024;
inline constexpr size_t kMaxStepName = 4096;
inline constexpr size_t kMaxEventSteps = 1000;  // job::kMaxSteps

struct JobHeaderEvent {
  std::string job, file, profile, sandbox;
  // Which of the job's nodes this is (`parallelism:`): the front end runs
  // the others when it did not pick one (cli/run_command.cpp).
  uint32_t node_index = 0, node_total = 1;
};
struct StepStartedEvent {
  uint32_t index = 0, total = 0;
  std::string name;
  bool background = false;
};
struct OutputEvent {
  uint32_t index = 0;
  std::string bytes;
};
// outcome: ipc::StepOutcome's numbers (1..5).
struct StepEnd {
  std::string name;
  bool started = false, finished = false;
  uint32_t outcome = 0, code = 0;
  uint64_t duration_ms = 0;
};
struct StepFinishedEvent {
  uint32_t index = 0;
  StepEnd step;
};
struct TextEvent {
  std::string text;
};
struct SetupEvent {
  uint64_t micros = 0;
};
struct SummaryEvent {
  std::vector<StepEnd> steps;
  int32_t exit_code = 0;
  std::string reason;
  uint64_t peak_memory_bytes = 0, cpu_usec = 0, wall_ms = 0;
  std::string ending;  // how unfinished steps ended: "killed", "canceled", "timed_out"
};
struct ResultEvent {
  int32_t exit_code = 0;
  std::string outcome;  // passed failed refused infra_error canceled timed_out
  std::string reason;
  uint64_t peak_memory_bytes = 0, cpu_usec = 0, duration_ms = 0;
};

// ---- client -> runner ----

enum class CancelWhy : uint32_t { Operator = 1, SinkLost = 2 };
struct CancelRequest {
  CancelWhy why = CancelWhy::Operator;
};

// ---- plan runner -> front end ----

// Bounds the front end holds the plan to (the parser's are the same or
// tighter: policy/workflow.hpp).
inline constexpr size_t kMaxPlanName = 255;
inline constexpr size_t kMaxPlanNeeds = 20000;  // `requires` edges in all

// Checks: the workflow's and every job's name 1 to kMaxPlanName bytes
// without control characters (the front end shows them and passes them to
// the broker as --job); names unique; each `needs` names an earlier job
// (running in order is running in dependency order); nodes 1 to
// job::kMaxParallelism, 1 for an approval; at most kMaxPlanNeeds needs.
struct PlanEvent {
  job::WorkflowPlan plan;
};
// "" or what is wrong with the plan (the checks above); the broker runs it
// on what the parse child answered before sending it on.
std::string plan_problem(const job::WorkflowPlan& p);

// ---- agent <-> daemon ----

inline constexpr size_t kMaxTaskId = 64;
inline constexpr size_t kMaxJobConfigBytes = 1 << 20;  // job::kMaxJobFileBytes

struct HelloRequest {
  uint32_t version = kBrokerProtocolVersion;
  std::string runner;
};
struct TaskMeta {
  std::string project, branch, tag, trigger, revision;
};
struct TaskSignature {
  std::string key;        // the trusted key's name
  std::string ed25519;    // the 64-byte signature
};
struct RunTaskRequest {
  std::string task_id;
  std::string job_name;
  std::string config;     // the job's YAML, hostile
  TaskMeta meta;
  std::optional<TaskSignature> signature;
};
struct CancelTaskRequest {
  std::string task_id;
  CancelWhy why = CancelWhy::Operator;
};
struct AckRequest {
  std::string task_id;
  uint64_t seq = 0;  // every event through this one is in the agent's spool
};
struct HeldTask {
  std::string task_id;
  bool running = false;  // false: the job ended, events remain to be acknowledged
  uint64_t next_seq = 0; // the first event not yet acknowledged
};
struct WelcomeEvent {
  uint32_t version = kBrokerProtocolVersion;
  std::string policy_digest;
  std::vector<HeldTask> tasks;
};
struct TaskEventMsg {
  std::string task_id;
  uint64_t seq = 0;
  uint32_t type = 0;  // a job event's BrokerMsg
  std::string payload;
};
struct TaskRejectedEvent {
  std::string task_id;
  std::string why;
};
struct DrainEvent {
  bool now = false;
};

// fields() for every payload above (broker_messages.cpp).
#define GH_FIELDS(T)          \
  void fields(Encoder&, T&);  \
  void fields(Decoder&, T&);
GH_FIELDS(JobHeaderEvent)
GH_FIELDS(StepStartedEvent)
GH_FIELDS(OutputEvent)
GH_FIELDS(StepEnd)
GH_FIELDS(StepFinishedEvent)
GH_FIELDS(TextEvent)
GH_FIELDS(SetupEvent)
GH_FIELDS(SummaryEvent)
GH_FIELDS(ResultEvent)
GH_FIELDS(CancelRequest)
GH_FIELDS(PlanEvent)
GH_FIELDS(HelloRequest)
GH_FIELDS(TaskMeta)
GH_FIELDS(TaskSignature)
GH_FIELDS(RunTaskRequest)
GH_FIELDS(CancelTaskRequest)
GH_FIELDS(AckRequest)
GH_FIELDS(HeldTask)
GH_FIELDS(WelcomeEvent)
GH_FIELDS(TaskEventMsg)
GH_FIELDS(TaskRejectedEvent)
GH_FIELDS(DrainEvent)
#undef GH_FIELDS

// ---- framing ----

struct BrokerMessage {
  BrokerMsg type{};
  std::string payload;
};

// Header + payload, ready to write.
std::string frame(BrokerMsg type, std::string_view payload);
template <class T>
std::string frame_of(BrokerMsg type, const T& value) {
  return frame(type, encode(value));
}

// Reads messages off a stream socket, bounded: feed() what read() returned,
// then take next() until it yields nothing. A framing error (bad magic, an
// unknown type, a length over the bound) is sticky: the peer broke the
// protocol and the connection must be closed.
class BrokerStreamReader {
 public:
  // Appends bytes; false once the stream is broken (see error()).
  bool feed(std::string_view bytes);
  std::optional<BrokerMessage> next();
  bool broken() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  bool check_header();
  std::string buf_;
  size_t pos_ = 0;
  std::string error_;
};

// Writes all of `bytes` to a blocking or non-blocking fd (waiting with poll
// on EAGAIN); false when the peer is gone.
bool write_all(int fd, std::string_view bytes);

}  // namespace gh::ipc

// The broker's side of the client channel (ipc/broker_messages.hpp): the
// job's events go out typed. What a job prints arrives masked already (the
// worker masks it, worker/masker.hpp) and is relayed as it came, cut to
// the event bound. Formatting is the client's (report/render.cpp): the
// broker never renders or scans job output itself.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/exit_status.hpp"
#include "ipc/broker_messages.hpp"
#include "ipc/messages.hpp"

namespace gh::broker {

struct StepView {
  std::string name;
  bool background = false;
};
struct StepResult {
  ipc::StepOutcome outcome = ipc::StepOutcome::NotRun;
  uint32_t code = 0;
  std::chrono::milliseconds duration{0};
  bool started = false, finished = false;
};

// How the job ended, for the Result event and the audit log.
struct RunVerdict {
  int exit_code = 0;
  std::string reason;
  bool canceled = false;   // the operator, or the client gave up
  bool timed_out = false;  // max_run_time reached
  uint64_t peak_memory_bytes = 0, cpu_usec = 0;
  std::chrono::milliseconds duration{0};
};
// "passed", "failed", "refused", "infra_error", "canceled" or "timed_out".
const char* verdict_outcome(const RunVerdict& v);

class JobEvents {
 public:
  // `fd`: the client channel (a stream socket), or -1 to send nothing.
  explicit JobEvents(int fd);
  ~JobEvents();
  JobEvents(const JobEvents&) = delete;
  JobEvents& operator=(const JobEvents&) = delete;

  void job_header(const std::string& job, const std::string& file, const std::string& profile,
                  const std::string& sandbox, uint32_t node_index = 0, uint32_t node_total = 1);
  // `gatehouse-broker plan`'s one message (checked with ipc::plan_problem).
  void plan(const job::WorkflowPlan& p);
  void step_started(size_t index, size_t total, const StepView& s);
  void output(size_t index, std::string_view bytes);
  void step_finished(size_t index, const StepView& s, const StepResult& r);
  void note(const std::string& line);
  void diagnostic(const std::string& text);
  void setup_time(std::chrono::duration<double> seconds);
  void summary(const std::vector<StepView>& steps, const std::vector<StepResult>& results, int exit_code,
               const std::string& reason, uint64_t peak_memory, uint64_t cpu_usec, std::chrono::milliseconds wall,
               const char* ending);
  void result(const RunVerdict& v);

  // The client channel: the fd to poll for Cancel, and what it said. A
  // client that sends anything else, or goes away, counts as gone.
  int fd() const { return fd_; }
  // Reads what the client sent (call when fd() is readable).
  void read_client();
  std::optional<ipc::CancelWhy> cancel_requested() const { return cancel_; }
  // The client can no longer show the job (it went away, or its reader
  // did): the job must not go on unobserved.
  bool sink_lost() const { return sink_lost_; }

 private:
  void send(ipc::BrokerMsg type, const std::string& payload);

  int fd_;
  bool sink_lost_ = false;
  std::optional<ipc::CancelWhy> cancel_;
  ipc::BrokerStreamReader in_;
};

}  // namespace gh::broker

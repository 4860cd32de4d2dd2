// What the operator sees of a job, rendered from the broker's job events
// (ipc/broker_messages.hpp): a header per step, the live output, the
// step's duration and status, and a summary. The broker decides and masks;
// this only formats, in the unprivileged process that shows it: the
// `gatehouse run` front end (a terminal, or JSON lines on --stream-fd) and
// the agent (records for its spool and the control plane).
//
// Job output is relayed as bytes, except that it can never pretend to be
// Gatehouse: our own lines always start on a fresh line, and on a colour
// terminal only colour sequences of the job pass (terminal_safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "ipc/broker_messages.hpp"

namespace gh::report {

// A step record of the stream / control-plane protocol.
struct StepRecord {
  uint32_t index = 0;
  std::string name;   // bounded to 1024 bytes
  std::string state;  // "started" | "finished"
  std::string outcome;  // finished: passed failed killed timed_out not_run canceled
  int64_t code = 0;
  int64_t duration_ms = 0;
};

class Renderer {
 public:
  explicit Renderer(bool colour) : colour_(colour) {}
  virtual ~Renderer() = default;
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  // Feeds one job event; false when its payload does not decode (the
  // caller treats the broker as broken).
  bool event(ipc::BrokerMsg type, std::string_view payload);

  bool have_result() const { return have_result_; }
  // The job's node count from its header (`parallelism:`); 0 before it.
  uint32_t node_total() const { return node_total_; }
  const ipc::ResultEvent& result() const { return result_; }

  // Text of Gatehouse's own about the run (it never started, the broker
  // died...): shown like a Diagnostic event.
  void diagnostic(const std::string& text);
  // Ends a run that never produced a Result event (the broker died).
  void synthetic_result(const ipc::ResultEvent& r);

 protected:
  // The transcript: what a person reads (headers, output, summary).
  virtual void emit_text(std::string_view text) = 0;
  // Messages about the run itself (errors, refusals).
  virtual void emit_diagnostic(const std::string& text) = 0;
  virtual void emit_step(const StepRecord&) {}
  virtual void emit_setup(double /*seconds*/) {}
  virtual void emit_result(const ipc::ResultEvent&) {}

  // For emit_diagnostic overrides that also put the text in the transcript.
  void transcript_diagnostic(const std::string& text);

 private:
  void header(const ipc::JobHeaderEvent& e);
  void step_started(const ipc::StepStartedEvent& e);
  void output(const ipc::OutputEvent& e);
  void step_finished(const ipc::StepFinishedEvent& e);
  void note(const std::string& line);
  void summary(const ipc::SummaryEvent& e);
  void write(std::string_view s) { emit_text(s); }
  std::string paint(const char* code, const std::string& s) const;

  bool colour_;
  bool at_line_start_ = true;
  long last_step_ = -1;
  std::map<size_t, std::chrono::steady_clock::time_point> open_steps_;  // started, not finished
  std::map<size_t, std::string> open_names_;
  bool have_result_ = false;
  ipc::ResultEvent result_;
  uint32_t node_total_ = 0;
};

// The `gatehouse run` terminal: text to `fd` (stdout), diagnostics to stderr.
class TerminalRenderer : public Renderer {
 public:
  TerminalRenderer(int fd, bool colour) : Renderer(colour), fd_(fd) {}

 protected:
  void emit_text(std::string_view text) override;
  void emit_diagnostic(const std::string& text) override;

 private:
  int fd_;
};

// `gatehouse run --stream-fd N` (docs/jobs.md): JSON lines. The transcript
// as `output` records (base64, at most kStreamChunk bytes each), `step`,
// `setup` and one `result` record. Diagnostics also go to stderr.
class StreamRenderer : public Renderer {
 public:
  static constexpr size_t kStreamChunk = 64 * 1024;
  explicit StreamRenderer(int fd) : Renderer(false), fd_(fd) {}
  // The stream's reader went away: nothing more can be written.
  bool sink_lost() const { return sink_lost_; }

 protected:
  void emit_text(std::string_view text) override;
  void emit_diagnostic(const std::string& text) override;
  void emit_step(const StepRecord& s) override;
  void emit_setup(double seconds) override;
  void emit_result(const ipc::ResultEvent& r) override;

 private:
  void line(const std::string& json_line);
  int fd_;
  bool sink_lost_ = false;
};

// Shared formatting, exposed for tests and the agent.
std::string terminal_safe(std::string_view in);
std::string base64(std::string_view in);
// The protocol's step outcome for a finished step ("passed", "failed"...).
const char* step_outcome_name(uint32_t outcome, uint32_t code);

}  // namespace gh::report

#include "report/render.hpp"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/exit_status.hpp"
#include "ipc/broker_messages.hpp"
#include "ipc/messages.hpp"

namespace gh::report {

namespace {

std::string fmt_duration(std::chrono::milliseconds d) {
  char buf[64];
  long long ms = d.count();
  if (ms < 1000) snprintf(buf, sizeof buf, "%lldms", ms);
  else if (ms < 60000) snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ms) / 1000.0);
  else snprintf(buf, sizeof buf, "%lldm%02llds", ms / 60000, (ms / 1000) % 60);
  return buf;
}

std::string fmt_bytes(uint64_t b) {
  char buf[64];
  if (b >= (1ull << 30)) snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / static_cast<double>(1ull << 30));
  else if (b >= (1ull << 20)) snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / static_cast<double>(1ull << 20));
  else snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(b) / 1024.0);
  return buf;
}

const char* kBold = "1";
const char* kGreen = "32";
const char* kRed = "31";
const char* kYellow = "33";
const char* kDim = "2";

// Names and reasons come from the job file; they are bounded so one line
// can never approach the agent's line bound, and invalid UTF-8 is replaced
// (nlohmann would otherwise throw).
std::string bounded(const std::string& s, size_t max) { return s.size() <= max ? s : s.substr(0, max) + "..."; }

std::string json_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// A terminal or log that went away loses the rest; the job goes on.
void write_fd_all(int fd, std::string_view s) { (void)ipc::write_all(fd, s); }

bool is_ok(uint32_t outcome, uint32_t code) {
  return outcome == static_cast<uint32_t>(ipc::StepOutcome::Exited) && code == 0;
}

template <class T>
bool decode_into(std::string_view payload, T& out) {
  auto r = ipc::decode<T>(payload);
  if (!r) return false;
  out = std::move(*r);
  return true;
}

}  // namespace

// On a terminal, job output may colour text (SGR: ESC [ digits ; m) and
// nothing else: other escape and control sequences could retitle the
// window, write the clipboard (OSC 52) or rewrite earlier lines, so they
// are shown as visible ^X text instead.
std::string terminal_safe(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == 0x1b && i + 1 < in.size() && in[i + 1] == '[') {
      size_t j = i + 2;
      while (j < in.size() && (isdigit(static_cast<unsigned char>(in[j])) || in[j] == ';')) ++j;
      if (j < in.size() && in[j] == 'm') {
        out.append(in.substr(i, j - i + 1));
        i = j;
        continue;
      }
    }
    if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r' && c != '\b') || c == 0x7f) {
      out += '^';
      out += static_cast<char>(c == 0x7f ? '?' : c + 0x40);
      continue;
    }
    out += static_cast<char>(c);
  }
  return out;
}

std::string base64(std::string_view in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += abc[v >> 18];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += abc[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += abc[v >> 18];
    out += abc[(v >> 12) & 63];
    out += i + 1 < in.size() ? abc[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

const char* step_outcome_name(uint32_t outcome, uint32_t code) {
  switch (static_cast<ipc::StepOutcome>(outcome)) {
    case ipc::StepOutcome::Exited: return code == 0 ? "passed" : "failed";
    case ipc::StepOutcome::Signaled: return "killed";
    case ipc::StepOutcome::TimedOut: return "timed_out";
    case ipc::StepOutcome::NotRun: return "not_run";
    case ipc::StepOutcome::SpawnFailed: return "failed";
  }
  return "failed";
}

bool Renderer::event(ipc::BrokerMsg type, std::string_view payload) {
  switch (type) {
    case ipc::BrokerMsg::JobHeader: {
      ipc::JobHeaderEvent e;
      if (!decode_into(payload, e)) return false;
      header(e);
      return true;
    }
    case ipc::BrokerMsg::StepStarted: {
      ipc::StepStartedEvent e;
      if (!decode_into(payload, e)) return false;
      step_started(e);
      return true;
    }
    case ipc::BrokerMsg::Output: {
      ipc::OutputEvent e;
      if (!decode_into(payload, e)) return false;
      output(e);
      return true;
    }
    case ipc::BrokerMsg::StepFinished: {
      ipc::StepFinishedEvent e;
      if (!decode_into(payload, e)) return false;
      step_finished(e);
      return true;
    }
    case ipc::BrokerMsg::Note: {
      ipc::TextEvent e;
      if (!decode_into(payload, e)) return false;
      note(e.text);
      return true;
    }
    case ipc::BrokerMsg::Diagnostic: {
      ipc::TextEvent e;
      if (!decode_into(payload, e)) return false;
      diagnostic(e.text);
      return true;
    }
    case ipc::BrokerMsg::Setup: {
      ipc::SetupEvent e;
      if (!decode_into(payload, e)) return false;
      emit_setup(static_cast<double>(e.micros) / 1e6);
      return true;
    }
    case ipc::BrokerMsg::Summary: {
      ipc::SummaryEvent e;
      if (!decode_into(payload, e)) return false;
      summary(e);
      return true;
    }
    case ipc::BrokerMsg::Result: {
      ipc::ResultEvent e;
      if (!decode_into(payload, e) || have_result_) return false;
      synthetic_result(e);
      return true;
    }
    case ipc::BrokerMsg::Cancel:
    case ipc::BrokerMsg::Plan:
    case ipc::BrokerMsg::Hello:
    case ipc::BrokerMsg::RunTask:
    case ipc::BrokerMsg::CancelTask:
    case ipc::BrokerMsg::Ack:
    case ipc::BrokerMsg::Welcome:
    case ipc::BrokerMsg::TaskEvent:
    case ipc::BrokerMsg::TaskRejected:
    case ipc::BrokerMsg::Drain: return false;  // not job events
  }
  return false;
}

void Renderer::synthetic_result(const ipc::ResultEvent& r) {
  have_result_ = true;
  result_ = r;
  result_.reason = bounded(r.reason, 4096);
  emit_result(result_);
}

void Renderer::diagnostic(const std::string& text) { emit_diagnostic(text); }

void Renderer::transcript_diagnostic(const std::string& text) {
  if (text.empty()) return;
  if (!at_line_start_) write("\n");
  write(text);
  at_line_start_ = text.back() == '\n';
}

std::string Renderer::paint(const char* code, const std::string& s) const {
  if (!colour_) return s;
  return std::string("\033[") + code + "m" + s + "\033[0m";
}

void Renderer::note(const std::string& line) {
  if (!at_line_start_) write("\n");
  write(paint(kDim, "gatehouse: " + line) + "\n");
  at_line_start_ = true;
}

void Renderer::header(const ipc::JobHeaderEvent& e) {
  node_total_ = e.node_total;
  // Nodes count from 0, as CIRCLE_NODE_INDEX does.
  const std::string node = e.node_total > 1 ? " (node " + std::to_string(e.node_index) + " of " +
                                                  std::to_string(e.node_total) + ")"
                                            : std::string();
  write(paint(kBold, "Job " + e.job + node) + " from " + e.file + "\n");
  write(paint(kDim, "  profile: " + e.profile + "; sandbox: " + e.sandbox) + "\n");
  at_line_start_ = true;
}

void Renderer::step_started(const ipc::StepStartedEvent& e) {
  if (!at_line_start_) write("\n");
  open_steps_[e.index] = std::chrono::steady_clock::now();
  open_names_[e.index] = e.name;
  emit_step({e.index, bounded(e.name, 1024), "started", "", 0, 0});
  std::string h = "==> [" + std::to_string(e.index + 1) + "/" + std::to_string(e.total) + "] " + e.name;
  if (e.background) h += " (background)";
  write(paint(kBold, h) + "\n");
  at_line_start_ = true;
  last_step_ = static_cast<long>(e.index);
}

void Renderer::output(const ipc::OutputEvent& e) {
  if (e.bytes.empty()) return;
  if (static_cast<long>(e.index) != last_step_) {
    // Output of a background step between other steps' output: label it.
    if (!at_line_start_) write("\n");
    write(paint(kDim, "[step " + std::to_string(e.index + 1) + "]") + "\n");
    last_step_ = static_cast<long>(e.index);
  }
  if (colour_) write(terminal_safe(e.bytes));
  else write(e.bytes);
  at_line_start_ = e.bytes.back() == '\n';
}

void Renderer::step_finished(const ipc::StepFinishedEvent& e) {
  const ipc::StepEnd& r = e.step;
  if (!at_line_start_) write("\n");
  const bool ok = is_ok(r.outcome, r.code);
  std::string line = "<== [" + std::to_string(e.index + 1) + "] " + r.name + ": " + ipc::describe_step(r.outcome, r.code);
  if (r.started) line += " in " + fmt_duration(std::chrono::milliseconds(r.duration_ms));
  const bool not_run = r.outcome == static_cast<uint32_t>(ipc::StepOutcome::NotRun);
  write(paint(ok ? kGreen : (not_run ? kYellow : kRed), line) + "\n");
  at_line_start_ = true;
  last_step_ = -1;
  open_steps_.erase(e.index);
  open_names_.erase(e.index);
  emit_step({e.index, bounded(r.name, 1024), "finished", step_outcome_name(r.outcome, r.code),
             static_cast<int64_t>(r.code), r.started ? static_cast<int64_t>(r.duration_ms) : 0});
}

void Renderer::summary(const ipc::SummaryEvent& e) {
  if (!at_line_start_) write("\n");
  // Every started step is also finished in the records, so a control plane
  // never shows a step as running forever.
  for (const auto& [index, since] : open_steps_) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since);
    emit_step({static_cast<uint32_t>(index), bounded(open_names_[index], 1024), "finished", e.ending, 0, ms.count()});
  }
  open_steps_.clear();
  open_names_.clear();
  write("\n" + paint(kBold, "Summary") + "\n");
  for (size_t i = 0; i < e.steps.size(); ++i) {
    const ipc::StepEnd& r = e.steps[i];
    std::string status = r.finished ? ipc::describe_step(r.outcome, r.code) : (r.started ? "did not finish" : "not run");
    char line[512];
    snprintf(line, sizeof line, "  %2zu. %-50.50s %-28s %s\n", i + 1, r.name.c_str(), status.c_str(),
             r.started ? fmt_duration(std::chrono::milliseconds(r.duration_ms)).c_str() : "");
    write(line);
  }
  const char* verdict = e.exit_code == kPassed ? "PASSED" : e.exit_code == kStepFailed ? "FAILED" : "ERROR";
  std::string v = std::string("  result: ") + verdict + " (exit " + std::to_string(e.exit_code) + ")";
  if (!e.reason.empty()) v += ": " + e.reason;
  write(paint(e.exit_code == kPassed ? kGreen : kRed, v) + "\n");
  write("  wall time " + fmt_duration(std::chrono::milliseconds(e.wall_ms)) + ", CPU time " +
        fmt_duration(std::chrono::milliseconds(e.cpu_usec / 1000)) + ", peak memory " +
        fmt_bytes(e.peak_memory_bytes) + "\n");
  at_line_start_ = true;
}

void TerminalRenderer::emit_text(std::string_view text) { write_fd_all(fd_, text); }

void TerminalRenderer::emit_diagnostic(const std::string& text) { write_fd_all(STDERR_FILENO, text); }

void StreamRenderer::line(const std::string& json_line_text) {
  if (sink_lost_) return;
  // Nobody reads the stream any more: the caller cancels the job.
  if (!ipc::write_all(fd_, json_line_text)) sink_lost_ = true;
}

void StreamRenderer::emit_text(std::string_view s) {
  while (!s.empty()) {
    std::string_view piece = s.substr(0, kStreamChunk);
    s.remove_prefix(piece.size());
    line(json_line({{"type", "output"}, {"data", base64(piece)}}));
  }
}

void StreamRenderer::emit_diagnostic(const std::string& text) {
  write_fd_all(STDERR_FILENO, text);  // stderr too: the caller's log
  transcript_diagnostic(text);
}

void StreamRenderer::emit_step(const StepRecord& s) {
  nlohmann::json j = {{"type", "step"}, {"index", s.index}, {"name", s.name}, {"state", s.state}};
  if (s.state == "finished") {
    j["outcome"] = s.outcome;
    j["code"] = s.code;
    j["duration_ms"] = s.duration_ms;
  }
  line(json_line(j));
}

void StreamRenderer::emit_setup(double seconds) { line(json_line({{"type", "setup"}, {"seconds", seconds}})); }

void StreamRenderer::emit_result(const ipc::ResultEvent& r) {
  line(json_line({{"type", "result"},
                  {"outcome", r.outcome},
                  {"exit_code", r.exit_code},
                  {"reason", r.reason},
                  {"peak_memory_bytes", r.peak_memory_bytes},
                  {"cpu_usec", r.cpu_usec},
                  {"duration_ms", r.duration_ms}}));
}

}  // namespace gh::report

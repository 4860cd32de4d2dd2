// What the operator sees: a header per step, the live output, the step's
// duration and status, and a summary. Colour only on a terminal. Job output
// is relayed as bytes, except that it can never pretend to be Gatehouse:
// our own lines always start on a fresh line.
//
// Stream mode (`gatehouse run --stream-fd N`, for the agent) writes the same
// text, uncoloured, as JSON lines: {"type":"output","data":BASE64} records
// of at most kStreamChunk bytes each, with `step`, `setup` and `result`
// records in between (docs/jobs.md). Step names and reasons are bounded so
// that every line stays well under the agent's line bound.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "broker/broker.hpp"
#include "broker/masker.hpp"

namespace gh::broker {

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

// Names and reasons come from the job file; they are bounded so one line
// can never approach the agent's line bound, and invalid UTF-8 is replaced
// (nlohmann would otherwise throw).
std::string bounded(const std::string& s, size_t max) { return s.size() <= max ? s : s.substr(0, max) + "..."; }

std::string json_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

long long ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::string describe_result(const StepResult& r) {
  switch (r.outcome) {
    case ipc::StepOutcome::Exited: return "exit " + std::to_string(r.code);
    case ipc::StepOutcome::Signaled: return "killed by signal " + std::to_string(r.code);
    case ipc::StepOutcome::TimedOut: return "no output for " + std::to_string(r.code) + "s: killed";
    case ipc::StepOutcome::NotRun: return "not run";
    case ipc::StepOutcome::SpawnFailed: return "could not start";
  }
  return "unknown";
}

const char* step_outcome_name(const StepResult& r) {
  switch (r.outcome) {
    case ipc::StepOutcome::Exited: return r.code == 0 ? "passed" : "failed";
    case ipc::StepOutcome::Signaled: return "killed";
    case ipc::StepOutcome::TimedOut: return "timed_out";
    case ipc::StepOutcome::NotRun: return "not_run";
    case ipc::StepOutcome::SpawnFailed: return "failed";
  }
  return "failed";
}

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

Reporter::Reporter(int fd, bool colour, Mode mode) : fd_(fd), colour_(colour && mode == Mode::Human), mode_(mode) {}
Reporter::~Reporter() = default;

void Reporter::mask_secrets(std::vector<std::pair<std::string, std::string>> secrets) { secrets_ = std::move(secrets); }

void Reporter::write_fd(std::string_view s) {
  while (!s.empty() && !sink_lost_) {
    ssize_t n = ::write(fd_, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {  // a non-blocking pipe: wait for room
      pollfd p{fd_, POLLOUT, 0};
      poll(&p, 1, 1000);
      continue;
    }
    if (n <= 0) {
      if (mode_ == Mode::Human) return;  // as before: a closed terminal does not stop the job
      // Nobody reads the stream: the job must not go on unobserved. While
      // the session runs, SIGTERM is blocked and read from a signalfd, so
      // raising it cancels the job as an operator's cancel would; outside
      // the session run_command checks sink_lost().
      sink_lost_ = true;
      sigset_t cur;
      if (pthread_sigmask(SIG_BLOCK, nullptr, &cur) == 0 && sigismember(&cur, SIGTERM)) raise(SIGTERM);
      return;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

void Reporter::stream_line(const std::string& json_line_text) { write_fd(json_line_text); }

void Reporter::write(std::string_view s) {
  if (mode_ == Mode::Human) return write_fd(s);
  while (!s.empty()) {
    std::string_view piece = s.substr(0, kStreamChunk);
    s.remove_prefix(piece.size());
    stream_line(json_line({{"type", "output"}, {"data", base64(piece)}}));
  }
}

void Reporter::diagnostic(const std::string& text) {
  std::string_view rest = text;
  while (!rest.empty()) {  // stderr too: in stream mode it is the agent's log
    ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (mode_ == Mode::Human || text.empty()) return;
  if (!at_line_start_) write("\n");
  write(text);
  at_line_start_ = text.back() == '\n';
}

void Reporter::setup_time(std::chrono::duration<double> seconds) {
  if (mode_ == Mode::Stream) stream_line(json_line({{"type", "setup"}, {"seconds", seconds.count()}}));
}

void Reporter::result(const RunVerdict& v) {
  if (mode_ != Mode::Stream) return;
  stream_line(json_line({{"type", "result"},
                         {"outcome", verdict_outcome(v)},
                         {"exit_code", v.exit_code},
                         {"reason", bounded(v.reason, 4096)},
                         {"peak_memory_bytes", v.peak_memory_bytes},
                         {"cpu_usec", v.cpu_usec},
                         {"duration_ms", v.duration.count()}}));
}

std::string Reporter::paint(const char* code, const std::string& s) const {
  if (!colour_) return s;
  return std::string("\033[") + code + "m" + s + "\033[0m";
}

void Reporter::note(const std::string& line) {
  if (!at_line_start_) write("\n");
  write(paint(kDim, "gatehouse: " + line) + "\n");
  at_line_start_ = true;
}

void Reporter::job_header(const std::string& job, const std::string& file, const std::string& profile,
                          const std::string& sandbox) {
  write(paint(kBold, "Job " + job) + " from " + file + "\n");
  write(paint(kDim, "  profile: " + profile + "; sandbox: " + sandbox) + "\n");
  at_line_start_ = true;
}

void Reporter::step_started(size_t index, size_t total, const StepView& s) {
  if (!at_line_start_) write("\n");
  open_steps_[index] = std::chrono::steady_clock::now();
  if (mode_ == Mode::Stream)
    stream_line(json_line({{"type", "step"}, {"index", index}, {"name", bounded(s.name, 1024)}, {"state", "started"}}));
  std::string h = "==> [" + std::to_string(index + 1) + "/" + std::to_string(total) + "] " + s.name;
  if (s.background) h += " (background)";
  write(paint(kBold, h) + "\n");
  at_line_start_ = true;
  last_step_ = static_cast<long>(index);
}

// Every byte a job prints goes through its step's masker: a secret split
// across two Output messages is still caught (the masker holds back only a
// tail that could be the start of a secret).
void Reporter::output(size_t index, std::string_view bytes) {
  if (secrets_.empty()) return relay(index, bytes);
  auto& m = maskers_[index];
  if (!m) m = std::make_unique<Masker>(secrets_);
  relay(index, m->feed(bytes));
}

void Reporter::flush_masker(size_t index) {
  auto it = maskers_.find(index);
  if (it == maskers_.end()) return;
  std::string tail = it->second->flush();
  maskers_.erase(it);
  relay(index, tail);
}

void Reporter::relay(size_t index, std::string_view bytes) {
  if (bytes.empty()) return;
  if (static_cast<long>(index) != last_step_) {
    // Output of a background step between other steps' output: label it.
    if (!at_line_start_) write("\n");
    write(paint(kDim, "[step " + std::to_string(index + 1) + "]") + "\n");
    last_step_ = static_cast<long>(index);
  }
  if (colour_) write(terminal_safe(bytes));
  else write(bytes);
  at_line_start_ = bytes.back() == '\n';
}

void Reporter::step_finished(size_t index, const StepView& s, const StepResult& r) {
  // The worker may relay the last bytes a step printed after its result;
  // they must go through the same masker, or a secret split across that
  // point would leave in two clear halves. So a finished step's masker
  // (and the few bytes it holds back) stays until kKeptMaskers later
  // steps have finished, or the summary.
  if (maskers_.count(index)) {
    finished_maskers_.push_back(index);
    while (finished_maskers_.size() > kKeptMaskers) {
      flush_masker(finished_maskers_.front());
      finished_maskers_.pop_front();
    }
  }
  if (!at_line_start_) write("\n");
  bool ok = r.outcome == ipc::StepOutcome::Exited && r.code == 0;
  std::string line = "<== [" + std::to_string(index + 1) + "] " + s.name + ": " + describe_result(r);
  if (r.started) line += " in " + fmt_duration(r.duration);
  write(paint(ok ? kGreen : (r.outcome == ipc::StepOutcome::NotRun ? kYellow : kRed), line) + "\n");
  at_line_start_ = true;
  last_step_ = -1;
  open_steps_.erase(index);
  if (mode_ == Mode::Stream)
    stream_line(json_line({{"type", "step"},
                           {"index", index},
                           {"name", bounded(s.name, 1024)},
                           {"state", "finished"},
                           {"outcome", step_outcome_name(r)},
                           {"code", r.code},
                           {"duration_ms", r.started ? r.duration.count() : 0}}));
}

void Reporter::summary(const std::vector<StepView>& steps, const std::vector<StepResult>& results, int exit_code,
                       const std::string& reason, uint64_t peak_memory, uint64_t cpu_usec,
                       std::chrono::milliseconds wall, const char* ending) {
  while (!maskers_.empty()) flush_masker(maskers_.begin()->first);
  finished_maskers_.clear();
  if (!at_line_start_) write("\n");
  // In the stream every started step is also finished, so a control plane
  // never shows a step as running forever.
  for (const auto& [index, since] : open_steps_)
    if (mode_ == Mode::Stream && index < steps.size())
      stream_line(json_line({{"type", "step"},
                             {"index", index},
                             {"name", bounded(steps[index].name, 1024)},
                             {"state", "finished"},
                             {"outcome", ending},
                             {"code", 0},
                             {"duration_ms", ms_since(since)}}));
  open_steps_.clear();
  write("\n" + paint(kBold, "Summary") + "\n");
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepResult& r = i < results.size() ? results[i] : StepResult{};
    std::string status = r.finished ? describe_result(r) : (r.started ? "did not finish" : "not run");
    char line[512];
    snprintf(line, sizeof line, "  %2zu. %-50.50s %-28s %s\n", i + 1, steps[i].name.c_str(), status.c_str(),
             r.started ? fmt_duration(r.duration).c_str() : "");
    write(line);
  }
  const char* verdict = exit_code == kPassed ? "PASSED" : exit_code == kStepFailed ? "FAILED" : "ERROR";
  std::string v = std::string("  result: ") + verdict + " (exit " + std::to_string(exit_code) + ")";
  if (!reason.empty()) v += ": " + reason;
  write(paint(exit_code == kPassed ? kGreen : kRed, v) + "\n");
  write("  wall time " + fmt_duration(wall) + ", CPU time " +
        fmt_duration(std::chrono::milliseconds(cpu_usec / 1000)) + ", peak memory " + fmt_bytes(peak_memory) + "\n");
  at_line_start_ = true;
}

}  // namespace gh::broker

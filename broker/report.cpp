// What the operator sees: a header per step, the live output, the step's
// duration and status, and a summary. Colour only on a terminal. Job output
// is relayed as bytes, except that it can never pretend to be Gatehouse:
// our own lines always start on a fresh line.
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
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

Reporter::Reporter(int fd, bool colour) : fd_(fd), colour_(colour) {}
Reporter::~Reporter() = default;

void Reporter::mask_secrets(std::vector<std::pair<std::string, std::string>> secrets) { secrets_ = std::move(secrets); }

void Reporter::write(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd_, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
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
  flush_masker(index);
  if (!at_line_start_) write("\n");
  bool ok = r.outcome == ipc::StepOutcome::Exited && r.code == 0;
  std::string line = "<== [" + std::to_string(index + 1) + "] " + s.name + ": " + describe_result(r);
  if (r.started) line += " in " + fmt_duration(r.duration);
  write(paint(ok ? kGreen : (r.outcome == ipc::StepOutcome::NotRun ? kYellow : kRed), line) + "\n");
  at_line_start_ = true;
  last_step_ = -1;
}

void Reporter::summary(const std::vector<StepView>& steps, const std::vector<StepResult>& results, int exit_code,
                       const std::string& reason, uint64_t peak_memory, uint64_t cpu_usec,
                       std::chrono::milliseconds wall) {
  while (!maskers_.empty()) flush_masker(maskers_.begin()->first);  // steps that never finished
  if (!at_line_start_) write("\n");
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

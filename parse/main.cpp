// gatehouse-parse: the parse child (docs/architecture.md).
//
// The broker starts it for each job file, policy file or config it needs
// as typed data: as `nobody`, with no capabilities, no_new_privs, rlimits
// on CPU, memory, file size and fds, an empty environment, stdin and stdout
// as pipes and nothing else open (broker/parse_client.cpp). It then:
//
//   1. makes itself non-dumpable (execve made it dumpable again);
//   2. runs what would open files or probe the kernel on first use
//      (OpenSSL's configuration, libseccomp's API probes);
//   3. applies its own seccomp allowlist (self_seccomp.cpp);
//   4. reads ONE framed request (ipc/parse_messages.hpp) from stdin;
//   5. parses it and writes ONE framed result to stdout, and exits 0.
//
// Only the bytes it was given are at risk here: a job file that takes the
// parser over gets a process with nothing to read, nowhere to write but
// the broker's pipe, and an answer the broker checks field by field.
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cerrno>
#include <map>
#include <new>
#include <string>
#include <utility>

#include "agent/config.hpp"
#include "ipc/parse_messages.hpp"
#include "parse/self_seccomp.hpp"
#include "sandbox/seccomp.hpp"

namespace {

using namespace gh;

// The end, straight to exit_group: no atexit handlers or static
// destructors (nothing needs them), and no sanitizer exit hook (a test
// build's leak check would need ptrace, which the filter forbids).
[[noreturn]] void quit(int status) {
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

bool read_exact(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

bool write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t w = write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  return true;
}

// Errors about the file as a whole, rendered as the parsers render theirs.
std::string file_error(const std::string& display, const std::string& message, const std::string& allowed) {
  Diagnostics d(display);
  d.error({}, message, allowed);
  return d.render();
}

// The errors as the parsers render them, within kMaxDiagnosticsBytes. A
// line is shown once per error on it, so a long line with many errors
// would render to many times the file (and past the memory limit): the
// rendering stops at the bound, keeping the first line of an error that
// does not fit whole, and says how many were left out. `tail` (the
// "available jobs" line) is cut to what room is left.
std::string rendered(const Diagnostics& d, std::string tail = {}) {
  constexpr size_t kRoomForNotes = 4096;
  const size_t budget = ipc::kMaxDiagnosticsBytes - kRoomForNotes;
  std::string out;
  size_t left_out = 0;
  for (const auto& one : d.all()) {
    if (left_out == 0) {
      std::string text = d.render(one);
      if (out.size() + text.size() > budget) text = text.substr(0, text.find('\n') + 1);
      if (out.size() + text.size() <= budget) {
        out += text;
        continue;
      }
    }
    ++left_out;
  }
  if (left_out > 0) out += "gatehouse-parse: " + std::to_string(left_out) + " more errors left out\n";
  if (out.size() + tail.size() > ipc::kMaxDiagnosticsBytes) {
    const size_t room = ipc::kMaxDiagnosticsBytes - out.size() - 64;
    tail = tail.substr(0, tail.rfind(' ', room)) + " (and more)\n";
  }
  return out + tail;
}

ipc::ParseResult parse_job(const ipc::ParseRequest& req) {
  ipc::ParseResult r;
  job::ProcessInput in = req.process;
  in.job_name = req.job_name;
  auto out = job::parse_job_text(req.display_path, req.bytes, in);
  r.available_jobs = std::move(out.available_jobs);
  if (!out.needed_orbs.empty() && !out.diagnostics.has_errors()) {
    r.needed_orbs = std::move(out.needed_orbs);
    return r;
  }
  if (out.plan && !out.diagnostics.has_errors()) {
    r.plan = std::move(*out.plan);
    return r;
  }
  if (out.job) {
    r.job = std::move(*out.job);
    return r;
  }
  // The jobs to choose from, when the mistake is the choice (an error
  // elsewhere in a job that was named right does not need them).
  std::string names;
  if (out.choice_error && !r.available_jobs.empty()) {
    names = "available jobs:";
    for (const auto& j : r.available_jobs) names += " " + j;
    names += "\n";
  }
  r.diagnostics = rendered(out.diagnostics, std::move(names));
  return r;
}

// The policy with its digest and every profile's filter. Profiles with the
// same seccomp changes share one compilation (a few milliseconds each).
ipc::ParseResult typed_policy(policy::Policy p, const std::string& display) {
  ipc::ParseResult r;
  ipc::ParsedPolicy parsed;
  std::map<std::pair<std::vector<std::string>, std::vector<std::string>>, std::string> compiled;
  for (const auto& prof : p.profiles) {
    auto key = std::make_pair(prof.seccomp.allow, prof.seccomp.deny);
    auto it = compiled.find(key);
    if (it == compiled.end()) {
      auto prog = sandbox::compile_seccomp({prof.seccomp.allow, prof.seccomp.deny});
      if (!prog) {
        r.diagnostics = file_error(display, "profile `" + prof.name + "`: its seccomp filter cannot be compiled: " +
                                                prog.error().message,
                                   "system call names this build's libseccomp knows");
        return r;
      }
      std::string bytes(reinterpret_cast<const char*>(prog->insns.data()), prog->insns.size() * sizeof(sock_filter));
      it = compiled.emplace(std::move(key), std::move(bytes)).first;
    }
    parsed.filters.push_back(it->second);
  }
  parsed.digest = policy::policy_digest(p);
  parsed.policy = std::move(p);
  r.policy = std::move(parsed);
  return r;
}

ipc::ParseResult parse_policy(const ipc::ParseRequest& req) {
  if (req.kind == ipc::ParseKind::BuiltinPolicy) return typed_policy(policy::builtin_policy(), "the built-in policy");
  auto out = policy::parse_policy_text(req.display_path, req.bytes);
  if (!out.policy) {
    ipc::ParseResult r;
    r.diagnostics = rendered(out.diagnostics);
    return r;
  }
  return typed_policy(std::move(*out.policy), req.display_path);
}

ipc::ParseResult parse_settings(const ipc::ParseRequest& req) {
  ipc::ParseResult r;
  const std::map<std::string, std::string> env(req.env.begin(), req.env.end());
  // The broker never reads the runner token: its source is the agent's concern.
  auto out = agent::parse_agent_config(req.display_path, req.bytes, env, agent::ConfigChecks{.token_source = false});
  if (!out.config) {
    r.diagnostics = rendered(out.diagnostics);
    return r;
  }
  const agent::AgentConfig& c = *out.config;
  ipc::BrokerSettings s;
  s.runner_name = c.runner.name;
  s.working_directory = c.runner.working_directory;
  s.cleanup_working_directory = c.runner.cleanup_working_directory;
  s.uid_lock_directory = c.runner.uid_lock_directory;
  s.orb_directory = c.runner.orb_directory;
  s.spool_directory = c.runner.spool_directory;
  s.policy = c.policy;
  s.auth_token_file = c.api.auth_token_file;
  s.metrics_listen = c.metrics_listen;
  s.log_file = c.logging.file;
  s.policy_set = c.policy_set;
  s.lock_directory = c.runner.lock_directory;
  s.uid_slice_index = c.runner.uid_slice_index;
  s.uid_slice_count = c.runner.uid_slice_count;
  r.settings = std::move(s);
  return r;
}

ipc::ParseResult handle(const ipc::ParseRequest& req) {
  switch (req.kind) {
    case ipc::ParseKind::Job: return parse_job(req);
    case ipc::ParseKind::Policy:
    case ipc::ParseKind::BuiltinPolicy: return parse_policy(req);
    case ipc::ParseKind::BrokerSettings: return parse_settings(req);
  }
  return {};
}

const char* what_of(ipc::ParseKind k) {
  switch (k) {
    case ipc::ParseKind::Job: return "job";
    case ipc::ParseKind::Policy:
    case ipc::ParseKind::BuiltinPolicy: return "policy";
    case ipc::ParseKind::BrokerSettings: return "config";
  }
  return "file";
}

// The answer's frame, or an error in its place when the typed form is past
// what the broker accepts (aliases and `extends` can multiply a file).
std::string answer(const ipc::ParseRequest& req, const ipc::ParseResult& r) {
  std::string f = ipc::frame_result(r);
  if (f.size() <= ipc::kMaxParseResultBytes) return f;
  ipc::ParseResult too_big;
  too_big.diagnostics = file_error(
      req.display_path,
      std::string("the parsed ") + what_of(req.kind) + " is " + std::to_string(f.size() >> 20) +
          " MiB in typed form, more than the " + std::to_string(ipc::kMaxParseResultBytes >> 20) +
          " MiB the broker accepts (YAML aliases and `extends` repeat what they name)",
      "a smaller file: fewer aliases of large values, fewer profiles");
  return ipc::frame_result(too_big);
}

// OpenSSL reads its configuration file on first use, which the filter
// would refuse; told not to, it opens no file, and a job request (which
// needs no digest) never pays for its start-up (about a millisecond).
void warm_up() { OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr); }

}  // namespace

int main() {
  // execve resets dumpability: without this, our uid (nobody) could ptrace
  // or read the memory of this process from any other process it runs.
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  warm_up();
  if (!gh::parse::apply_self_seccomp().empty()) quit(gh::ipc::kParseExitConfine);

  std::string frame(gh::ipc::kParseFrameHeaderBytes, '\0');
  if (!read_exact(STDIN_FILENO, frame.data(), frame.size())) quit(gh::ipc::kParseExitBadRequest);
  auto len = gh::ipc::frame_length(frame, gh::ipc::kParseRequestMagic, gh::ipc::kMaxParseRequestBytes);
  if (!len) quit(gh::ipc::kParseExitBadRequest);
  frame.resize(gh::ipc::kParseFrameHeaderBytes + *len);
  if (!read_exact(STDIN_FILENO, frame.data() + gh::ipc::kParseFrameHeaderBytes, *len))
    quit(gh::ipc::kParseExitBadRequest);
  auto req = gh::ipc::decode_request_frame(frame);
  if (!req) quit(gh::ipc::kParseExitBadRequest);
  frame.clear();
  frame.shrink_to_fit();

  std::string out;
  try {
    out = answer(*req, handle(*req));
  } catch (const std::bad_alloc&) {
    // Under RLIMIT_AS; what the parse held is freed by the unwinding.
    gh::ipc::ParseResult r;
    r.diagnostics = file_error(req->display_path, "parsing needed more memory than the parser may use",
                               "a smaller file (fewer aliases, fewer nested values)");
    try {
      out = gh::ipc::frame_result(r);
    } catch (...) {
      quit(gh::ipc::kParseExitOutOfMemory);
    }
  }
  if (!write_all(STDOUT_FILENO, out)) quit(gh::ipc::kParseExitWrite);
  quit(0);
}

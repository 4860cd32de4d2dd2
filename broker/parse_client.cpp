// Running gatehouse-parse confined and checking its answer (parse_client.hpp).
//
// Between fork and exec the child runs only async-signal-safe calls: the
// broker may have threads, and a forked copy of a threaded process may not
// allocate or take locks. Everything it needs is prepared before the fork.
#include "broker/parse_client.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "broker/broker.hpp"
#include "broker/privileges.hpp"
#include "broker/policy_cache.hpp"
#include "common/unique_fd.hpp"

namespace gh::broker {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uid_t kNobody = 65534;
constexpr rlim_t kAddressSpace = rlim_t{1} << 30;
constexpr rlim_t kPolicyFileSize = 2 * ipc::kMaxFilterBytes;  // a too-long filter is refused whole, never cut
constexpr rlim_t kChildFds = 8;                               // stdin, stdout, stderr, a memfd, slack

#if defined(GH_SANITIZED)  // meson's b_sanitize (parse/meson.build)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

std::atomic<uint64_t> g_children{0}, g_cache_hits{0}, g_cache_stores{0};

// What failed before the exec, sent on a close-on-exec pipe.
struct ExecFailure {
  int step;
  int error;
};
enum Step { kDup2, kSetrlimit, kSetgroups, kSetresgid, kSetresuid, kNoNewPrivs, kPdeathsig, kChdir, kExec, kStepCount };
constexpr const char* kSteps[kStepCount] = {
    "dup2", "setrlimit", "setgroups", "setresgid", "setresuid", "prctl(PR_SET_NO_NEW_PRIVS)",
    "prctl(PR_SET_PDEATHSIG)", "chdir", "execveat"};

// An fd of ours at 3 or above, so the child's dup2 onto 0-2 never lands on one.
bool move_high(UniqueFd& fd) {
  if (fd.get() >= 3) return true;
  UniqueFd high(fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
  if (high.get() < 0) return false;
  fd = std::move(high);
  return true;
}

struct Limits {
  rlimit core{0, 0}, cpu{}, as{kAddressSpace, kAddressSpace}, fsize{0, 0}, nofile{kChildFds, kChildFds};
  bool set_as = true;
};

[[noreturn]] void child_fail(int status_fd, int step) {
  ExecFailure f{step, errno};
  (void)!write(status_fd, &f, sizeof f);
  _exit(127);
}

void close_range_except(int lo, int keep1, int keep2) {
  const int a = keep1 < keep2 ? keep1 : keep2, b = keep1 < keep2 ? keep2 : keep1;
  const int ranges[3][2] = {{lo, a - 1}, {a + 1, b - 1}, {b + 1, -1}};
  for (const auto& r : ranges) {
    if (r[1] != -1 && r[1] < r[0]) continue;
    const unsigned hi = r[1] == -1 ? ~0U : static_cast<unsigned>(r[1]);
    if (syscall(SYS_close_range, static_cast<unsigned>(r[0]), hi, 0) != 0)
      for (unsigned fd = static_cast<unsigned>(r[0]); fd <= hi && fd < 65536; ++fd) close(static_cast<int>(fd));
  }
}

// The child, from fork to exec: async-signal-safe calls only.
[[noreturn]] void child(int exe, int in, int out, int devnull, int status, pid_t parent, const Limits& lim) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);  // SIGKILL/SIGSTOP fail harmlessly
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(devnull, 2) < 0) child_fail(status, kDup2);
  close_range_except(3, exe, status);  // both close at exec
  if (setrlimit(RLIMIT_CORE, &lim.core) != 0 || setrlimit(RLIMIT_CPU, &lim.cpu) != 0 ||
      setrlimit(RLIMIT_FSIZE, &lim.fsize) != 0 || setrlimit(RLIMIT_NOFILE, &lim.nofile) != 0 ||
      (lim.set_as && setrlimit(RLIMIT_AS, &lim.as) != 0))
    child_fail(status, kSetrlimit);
  if (setgroups(0, nullptr) != 0) child_fail(status, kSetgroups);
  if (setresgid(kNobody, kNobody, kNobody) != 0) child_fail(status, kSetresgid);
  if (setresuid(kNobody, kNobody, kNobody) != 0) child_fail(status, kSetresuid);  // every capability goes with uid 0
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(status, kNoNewPrivs);
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // until exec; the parser sets it again after
  // Set after the uid change, which clears it; a broker already gone is caught by the ppid check.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) child_fail(status, kPdeathsig);
  if (getppid() != parent) _exit(127);
  if (chdir("/") != 0) child_fail(status, kChdir);
  static char arg0[] = "gatehouse-parse";
  static char* const argv[] = {arg0, nullptr};
  static char* const envp[] = {nullptr};
  syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
  child_fail(status, kExec);
}

std::string seconds_text(std::chrono::milliseconds t) {
  if (t.count() % 1000 == 0) return std::to_string(t.count() / 1000) + " s";
  return std::to_string(t.count()) + " ms";
}

// Kills and reaps the child on every way out.
struct Reaper {
  pid_t pid = -1;
  int status = 0;
  bool reaped = false;
  ~Reaper() {
    if (pid > 0 && !reaped) {
      // The child is nobody's: without CAP_KILL only nobody may signal it
      // (privileges.hpp). Before its exec it may still be root's.
      (void)signal_as(kNobody, kNobody, pid, SIGKILL);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
    }
  }
  // Waits until the child exits or the deadline passes.
  bool wait_until(Clock::time_point deadline) {
    for (int nap_us = 200;;) {
      const pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) return reaped = true;
      if (r < 0 && errno != EINTR) return false;
      if (Clock::now() >= deadline) return false;
      timespec ts{0, static_cast<long>(nap_us) * 1000};
      nanosleep(&ts, nullptr);
      nap_us = nap_us < 20000 ? nap_us * 2 : nap_us;
    }
  }
};

// Writes on a pipe whose reader died raise SIGPIPE in the writing thread:
// blocked while we write, and a SIGPIPE we caused is taken back after.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old_);
    sigset_t pending;
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
  }
  ~SigpipeBlock() {
    sigset_t pending, pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    timespec zero{};
    if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
      sigtimedwait(&pipe_only, nullptr, &zero);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t old_{};
  bool was_pending_ = false;
};

std::string parser_path(const ParseClientOptions& opts) {
  if (!opts.parser.empty()) return opts.parser;
  if (const char* env = getenv("GATEHOUSE_PARSE"); env != nullptr && *env != '\0') return env;
  return find_libexec("gatehouse-parse", "parse");
}

struct Parser {
  std::string path;
  UniqueFd fd;  // O_PATH: what runs is what the cache key names
  struct stat st {};
};

Result<Parser> open_parser(const ParseClientOptions& opts) {
  Parser p{parser_path(opts), UniqueFd(), {}};
  p.fd = UniqueFd(open(p.path.c_str(), O_PATH | O_CLOEXEC));
  if (p.fd.get() < 0 || fstat(p.fd.get(), &p.st) != 0)
    return err("the parser binary " + p.path + " cannot be opened: " + strerror(errno) +
               "; reinstall gatehouse or set GATEHOUSE_PARSE");
  if (!S_ISREG(p.st.st_mode)) return err("the parser binary " + p.path + " is not a regular file");
  if (!move_high(p.fd)) return err(std::string("dup of the parser's descriptor: ") + strerror(errno));
  return p;
}

// One exchange: the framed answer, or what went wrong (without the
// "the job parser" prefix and the cost, which the caller adds).
Result<std::string> exchange(const Parser& parser, ipc::ParseKind kind, const std::string& request,
                             const ParseClientOptions& opts) {
  int in_pipe[2], out_pipe[2], status_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return err(std::string("pipe: ") + strerror(errno));
  UniqueFd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return err(std::string("pipe: ") + strerror(errno));
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (pipe2(status_pipe, O_CLOEXEC) != 0) return err(std::string("pipe: ") + strerror(errno));
  UniqueFd status_r(status_pipe[0]), status_w(status_pipe[1]);
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (devnull.get() < 0) return err(std::string("cannot open /dev/null: ") + strerror(errno));
  if (!move_high(in_r) || !move_high(out_w) || !move_high(devnull) || !move_high(status_w))
    return err(std::string("dup: ") + strerror(errno));

  Limits lim;
  const auto cpu = static_cast<rlim_t>((opts.timeout.count() + 999) / 1000);
  lim.cpu = {cpu, cpu + 1};  // SIGXCPU, then SIGKILL a second later
  if (kind == ipc::ParseKind::Policy || kind == ipc::ParseKind::BuiltinPolicy)
    lim.fsize = {kPolicyFileSize, kPolicyFileSize};
  lim.set_as = !kSanitized;  // AddressSanitizer's shadow memory is terabytes of address space
  const pid_t parent = getpid();
  const auto deadline = Clock::now() + opts.timeout;
  Reaper child_proc;
  child_proc.pid = fork();
  if (child_proc.pid < 0) return err(std::string("fork: ") + strerror(errno));
  if (child_proc.pid == 0) child(parser.fd.get(), in_r.get(), out_w.get(), devnull.get(), status_w.get(), parent, lim);
  ++g_children;
  in_r = UniqueFd();
  out_w = UniqueFd();
  status_w = UniqueFd();

  ExecFailure failure{};
  ssize_t n;
  while ((n = read(status_r.get(), &failure, sizeof failure)) < 0 && errno == EINTR) {}
  if (n == static_cast<ssize_t>(sizeof failure)) {
    const int step = failure.step >= 0 && failure.step < kStepCount ? failure.step : kExec;
    return err("could not be started (" + std::string(kSteps[step]) + ": " + strerror(failure.error) + ")" +
               (step >= kSetgroups && step <= kSetresuid ? " (the broker must run as root)" : ""));
  }
  if (opts.on_started) opts.on_started(child_proc.pid);

  fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
  SigpipeBlock no_sigpipe;
  std::string answer;
  size_t expected = 0;  // the whole frame's size, once the header is in
  size_t written = 0;
  bool eof = false;
  while (!eof) {
    const auto now = Clock::now();
    if (now >= deadline) return err("did not answer within " + seconds_text(opts.timeout));
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {in_w.get(), POLLOUT, 0}};
    const nfds_t count = in_w.get() >= 0 ? 2 : 1;
    if (poll(fds, count, static_cast<int>(left)) < 0) {
      if (errno == EINTR) continue;
      return err(std::string("poll: ") + strerror(errno));
    }
    if (count == 2 && fds[1].revents != 0) {
      const ssize_t w = write(in_w.get(), request.data() + written, request.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      // EPIPE: it stopped reading (its exit status or answer will say why).
      if (written == request.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) in_w = UniqueFd();
    }
    if (fds[0].revents != 0) {
      char buf[65536];
      const ssize_t r = read(out_r.get(), buf, sizeof buf);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r < 0) return err(std::string("reading its answer: ") + strerror(errno));
      if (r == 0) {
        eof = true;
        continue;
      }
      answer.append(buf, static_cast<size_t>(r));
      if (expected == 0 && answer.size() >= ipc::kParseFrameHeaderBytes) {
        auto len = ipc::frame_length(std::string_view(answer).substr(0, ipc::kParseFrameHeaderBytes),
                                     ipc::kParseResultMagic, ipc::kMaxParseResultBytes);
        if (!len) return err("'s answer is malformed: " + len.error().message);
        expected = ipc::kParseFrameHeaderBytes + *len;
      }
      if (answer.size() > (expected ? expected : ipc::kParseFrameHeaderBytes))
        return err("'s answer is malformed: more bytes than its header declares");
    }
  }
  if (!child_proc.wait_until(deadline)) return err("did not answer within " + seconds_text(opts.timeout));
  const int st = child_proc.status;
  if (WIFSIGNALED(st)) return err("crashed (killed by signal " + std::to_string(WTERMSIG(st)) + ")");
  if (WEXITSTATUS(st) != 0) {
    const std::string meaning = ipc::parse_exit_meaning(WEXITSTATUS(st));
    return err("failed (exit status " + std::to_string(WEXITSTATUS(st)) + (meaning.empty() ? "" : ": " + meaning) + ")");
  }
  return answer;
}

// The meaning checks that depend on what was asked (the codecs check the rest).
std::string kind_problem(ipc::ParseKind kind, const ipc::ParseResult& r) {
  const bool want_job = kind == ipc::ParseKind::Job, want_settings = kind == ipc::ParseKind::BrokerSettings;
  const bool want_policy = !want_job && !want_settings;
  if ((r.job && !want_job) || (r.policy && !want_policy) || (r.settings && !want_settings))
    return "it answers a different kind of file than was asked for";
  if (kind == ipc::ParseKind::BuiltinPolicy && !r.policy) return "it gives errors for the built-in policy";
  if (!want_job && !r.available_jobs.empty()) return "it lists job names for a file that is not a job";
  // The digest goes into every audit record: the broker's own, not the child's word.
  if (r.policy && r.policy->digest != policy::policy_digest(r.policy->policy))
    return "its policy digest does not match the policy";
  return {};
}

Result<ipc::ParseResult> checked(ipc::ParseKind kind, std::string_view frame) {
  auto r = ipc::decode_result_frame(frame);
  if (!r) return err("'s answer is malformed: " + r.error().message);
  if (auto why = kind_problem(kind, *r); !why.empty()) return err("'s answer is malformed: " + why);
  return r;
}

Result<ipc::ParseResult> run(const ipc::ParseRequest& req, const ParseClientOptions& opts, bool cacheable) {
  auto fail = [&](const std::string& what) {
    // "the job parser" + " crashed (...)" or + "'s answer is malformed: ...".
    return err(std::string(ipc::parser_name(req.kind)) + (what.starts_with("'s") ? "" : " ") + what + "; " +
               ipc::failure_cost(req.kind));
  };
  auto parser = open_parser(opts);
  if (!parser) return fail("could not be started: " + parser.error().message);
  std::string key;
  if (cacheable && !opts.cache_dir.empty()) {
    key = policy_cache_key(req.kind, req.bytes, parser->st);
    if (auto hit = policy_cache_load(opts.cache_dir, key))
      if (auto r = checked(req.kind, *hit); r && r->policy) {
        ++g_cache_hits;
        return r;
      }
  }
  auto frame = exchange(*parser, req.kind, ipc::frame_request(req), opts);
  if (!frame) return fail(frame.error().message);
  auto r = checked(req.kind, *frame);
  if (!r) return fail(r.error().message);
  if (!key.empty() && r->policy && policy_cache_store(opts.cache_dir, key, *frame)) ++g_cache_stores;
  return r;
}

// Input past the kind's limit is refused in the parser's own words
// (job_parse.cpp, policy_parse.cpp, agent/config.cpp), without a child.
std::optional<ipc::ParseResult> too_large(std::string_view bytes, const std::string& display, size_t limit,
                                          const std::string& what, const std::string& allowed) {
  if (bytes.size() <= limit) return std::nullopt;
  Diagnostics d(display);
  d.error({}, "the " + what + " is " + std::to_string(bytes.size()) + " bytes, more than the limit of " +
                  std::to_string(limit / 1024) + " KiB",
          allowed);
  ipc::ParseResult r;
  r.diagnostics = d.render();
  return r;
}

}  // namespace

Result<ipc::ParseResult> parse_job_confined(std::string_view bytes, const std::string& display,
                                            const job::ProcessInput& in, const ParseClientOptions& opts) {
  if (auto r = too_large(bytes, display, job::kMaxJobFileBytes, "job file", "job files of at most 1 MiB")) return *r;
  ipc::ParseRequest req{ipc::ParseKind::Job, display, std::string(bytes), in.job_name, {}, in};
  return run(req, opts, false);
}

Result<ipc::ParseResult> parse_job_confined(std::string_view bytes, const std::string& display,
                                            const std::optional<std::string>& job_name, const ParseClientOptions& opts) {
  job::ProcessInput in;
  in.job_name = job_name;
  return parse_job_confined(bytes, display, in, opts);
}

Result<ipc::ParseResult> parse_policy_confined(std::string_view bytes, const std::string& display,
                                               const ParseClientOptions& opts) {
  if (auto r = too_large(bytes, display, policy::kMaxPolicyFileBytes, "policy file", "policy files of at most 1 MiB"))
    return *r;
  ipc::ParseRequest req{ipc::ParseKind::Policy, display, std::string(bytes), std::nullopt, {}, {}};
  return run(req, opts, true);
}

Result<ipc::ParseResult> builtin_policy_confined(const ParseClientOptions& opts) {
  ipc::ParseRequest req{ipc::ParseKind::BuiltinPolicy, "the built-in policy", {}, std::nullopt, {}, {}};
  return run(req, opts, true);
}

Result<ipc::ParseResult> parse_settings_confined(std::string_view bytes, const std::string& display,
                                                 const std::map<std::string, std::string>& env,
                                                 const ParseClientOptions& opts) {
  if (auto r = too_large(bytes, display, ipc::kMaxConfigBytes, "agent config", "a config of at most 64 KiB")) return *r;
  ipc::ParseRequest req{ipc::ParseKind::BrokerSettings, display, std::string(bytes), std::nullopt, {}, {}};
  for (const auto& [k, v] : env) {
    if (k != "CREDENTIALS_DIRECTORY" && k.rfind("GATEHOUSE_", 0) != 0) continue;
    if (req.env.size() == ipc::kMaxParseEnvEntries || k.size() > ipc::kMaxEnvNameBytes ||
        v.size() > ipc::kMaxParseEnvValueBytes)
      return err("the environment holds too many or too long GATEHOUSE_* variables (at most " +
                 std::to_string(ipc::kMaxParseEnvEntries) + ", values of at most 64 KiB); unset the extra ones");
    req.env.emplace_back(k, v);
  }
  return run(req, opts, false);
}

ParseClientStats parse_client_stats() { return {g_children.load(), g_cache_hits.load(), g_cache_stores.load()}; }

}  // namespace gh::broker

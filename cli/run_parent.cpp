// The parents of several runs (run_parent.hpp), and `gatehouse run`'s
// dispatch.
//
// Why a root parent at all: a job's node count (`parallelism:`) is known
// only once the broker has parsed the job, and by then the front end that
// started that broker has dropped to nobody and can start no other. A
// workflow's plan is known first (gatehouse-broker plan), so its parent
// stays root and forks each run's front end (run_nodes).
//
// The plain `gatehouse run FILE` is benchmarked (bench/run.sh), so its
// parent is the other way round: the process the operator started is node
// 0's front end, as it always was, and before it drops to nobody it forks a
// root helper that waits on a pipe. Node 0's front end tells it the count
// from the job's header; with one node the helper exits and nobody waits
// for it. A parent that forked node 0's front end and waited would add two
// wake-ups to every job (about 1 ms each on a loaded host; bench/README.md).
// With --node-index no other node can be needed: no helper at all.
//
// The node count is four bytes from a nobody front end, bounded again
// here. A compromised front end could at most ask for runs of the same job,
// which the broker admits or refuses one by one; its exit status was always
// trusted for its own job.
#include "cli/run_parent.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <string_view>

#include "common/exit_status.hpp"
#include "ipc/broker_messages.hpp"
#include "policy/pipeline_flags.hpp"

namespace gh::cli {

namespace {

using Clock = std::chrono::steady_clock;

bool g_canceled = false;

// The signals a parent waits for, on a signalfd. SIGINT and SIGTERM are
// blocked by run_command before anything starts (each run's front end
// reads them from its own signalfd); SIGCHLD so that every exit is read.
sigset_t waited_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGCHLD);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

struct Running {
  uint32_t index = 0;
  int report = -1;  // read end of node 0's report pipe, when learning
};

// One node's front end in a forked child. The child keeps the parent's
// signal mask (run_front_end reads SIGINT/SIGTERM from a signalfd) and
// closes the parent's fds: the other nodes' report pipes, its signalfd and
// cancel pipe.
pid_t start_node(const RunOptions& o, const int report[2], const std::map<pid_t, Running>& running,
                 std::initializer_list<int> parents) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  for (const auto& [p, r] : running)
    if (r.report >= 0) close(r.report);
  for (int fd : parents)
    if (fd >= 0) close(fd);
  if (report[0] >= 0) close(report[0]);
  _exit(run_front_end(o, report[1], false));
}

int status_code(int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) <= kInfra) return WEXITSTATUS(status);
  return kInfra;
}

// The node count node 0 reported: four bytes and the end, 1 to the limit.
uint32_t read_report(int fd) {
  unsigned char b[5];
  size_t got = 0;
  for (;;) {
    const ssize_t n = read(fd, b + got, sizeof b - got);
    if (n > 0 && (got += static_cast<size_t>(n)) < sizeof b) continue;
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  close(fd);
  if (got != 4) return 0;
  const uint32_t v = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  return v >= 1 && v <= job::kMaxParallelism ? v : 0;
}

}  // namespace

bool parent_canceled() {
  if (!g_canceled) {
    sigset_t pending;
    g_canceled = sigpending(&pending) == 0 && (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM));
  }
  return g_canceled;
}

NodesOutcome run_nodes(const RunOptions& base, uint32_t total, bool learn_total, uint32_t parallel, uint32_t first,
                       int cancel_fd) {
  NodesOutcome out;
  out.total = total;
  const auto start = Clock::now();
  const sigset_t waited = waited_signals();
  sigprocmask(SIG_BLOCK, &waited, nullptr);
  const int sigfd = signalfd(-1, &waited, SFD_CLOEXEC | SFD_NONBLOCK);
  std::map<pid_t, Running> running;
  uint32_t next = first;
  bool learning = learn_total && first == 0;
  auto cancel = [&] {
    g_canceled = true;
    for (const auto& [pid, r] : running) kill(pid, SIGTERM);
  };
  for (;;) {
    // Start what may start: node 0 alone while the count is unknown.
    while (sigfd >= 0 && !parent_canceled() && next < out.total && running.size() < std::max<uint32_t>(parallel, 1) &&
           !(learning && next > 0)) {
      RunOptions o = base;
      if (out.total > 1 || next > 0) o.node_index = next;
      int report[2] = {-1, -1};
      if (learning && pipe2(report, O_CLOEXEC) != 0) report[0] = report[1] = -1;
      const pid_t pid = start_node(o, report, running, {sigfd, cancel_fd});
      if (report[1] >= 0) close(report[1]);
      if (pid < 0) {
        if (report[0] >= 0) close(report[0]);
        perror("gatehouse: fork");
        out.exit_code = std::max<int>(out.exit_code, kInfra);
        out.total = next;  // nothing more can start
        break;
      }
      running[pid] = Running{next, report[0]};
      ++next;
      ++out.ran;
    }
    if (running.empty()) break;
    pollfd fds[2] = {{sigfd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    if (poll(fds, cancel_fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR) break;
    if (cancel_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      cancel_fd = -1;  // whatever it said: stop
      cancel();
    }
    if (!(fds[0].revents & POLLIN)) continue;
    signalfd_siginfo si;
    bool child = false;
    while (read(sigfd, &si, sizeof si) == sizeof si) {
      // A terminal's Ctrl-C reached every run already; a signal sent to
      // this process alone is passed on, so each run cancels its job.
      if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) cancel();
      else child = true;
    }
    if (!child) continue;
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      auto it = running.find(pid);
      if (it == running.end()) continue;
      out.exit_code = std::max(out.exit_code, status_code(status));
      out.nodes.emplace_back(it->second.index, status_code(status));
      if (it->second.report >= 0) {
        const uint32_t reported = read_report(it->second.report);
        if (reported > out.total) out.total = reported;
        learning = false;
      }
      running.erase(it);
    }
  }
  if (sigfd < 0) {
    perror("gatehouse: signalfd");
    out.exit_code = std::max<int>(out.exit_code, kInfra);
  } else {
    close(sigfd);
  }
  out.canceled = g_canceled;
  out.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return out;
}

namespace {

// The helper's side (root): the count, then node 0's end, then the others.
[[noreturn]] void helper_main(const RunOptions& o, int from_front, int to_front) {
  const auto start = Clock::now();  // node 0's broker is starting: the job's time begins
  unsigned char b[4];
  size_t got = 0;
  ssize_t n;
  while (got < 4 && ((n = read(from_front, b + got, 4 - got)) > 0 || (n < 0 && errno == EINTR)))
    if (n > 0) got += static_cast<size_t>(n);
  const uint32_t total = got == 4 ? (b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24)) : 0;
  if (total <= 1 || total > job::kMaxParallelism) _exit(0);
  unsigned char done = 0;
  while ((n = read(from_front, &done, 1)) < 0 && errno == EINTR) {}
  if (n != 1) _exit(0);  // node 0's front end is gone: nobody to report to
  const int code0 = std::min<int>(done & 0x7f, kInfra);
  NodesOutcome rest;
  rest.total = total;
  if (!(done & 0x80) && !parent_canceled()) rest = run_nodes(o, total, false, o.parallel, 1, from_front);
  rest.nodes.emplace_back(0, code0);
  rest.ran += 1;
  rest.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  parent_say(o, "\n" + nodes_line(o.job.value_or(o.file), rest));
  const unsigned char worst = static_cast<unsigned char>(std::max(rest.exit_code, code0));
  (void)ipc::write_all(to_front, std::string_view(reinterpret_cast<const char*>(&worst), 1));
  _exit(0);
}

}  // namespace

NodeHelper NodeHelper::start(const RunOptions& o, const std::vector<int>& close_in_child) {
  NodeHelper h;
  int to[2], from[2];
  if (pipe2(to, O_CLOEXEC) != 0) return h;
  if (pipe2(from, O_CLOEXEC) != 0) {
    close(to[0]);
    close(to[1]);
    return h;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    for (int fd : close_in_child) close(fd);
    close(to[1]);
    close(from[0]);
    helper_main(o, to[0], from[1]);
  }
  close(to[0]);
  close(from[1]);
  if (pid < 0) {  // no helper: the job's other nodes cannot run, and finish() says so
    close(to[1]);
    close(from[0]);
    h.failed_ = true;
    return h;
  }
  h.to_ = to[1];
  h.from_ = from[0];
  return h;
}

void NodeHelper::count(uint32_t total) {
  if (counted_ || to_ < 0) return;
  counted_ = true;
  total_ = total;
  std::string b;
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((total >> (8 * i)) & 0xff));
  (void)ipc::write_all(to_, b);
  if (total <= 1) {
    close(to_);
    close(from_);
    to_ = from_ = -1;
  }
}

int NodeHelper::finish(int code, bool canceled, int sigfd) {
  if (failed_ && total_ > 1) return std::max<int>(code, kInfra);
  if (to_ < 0) return code;
  if (!counted_) {  // no header, no count: nothing else to run
    close(to_);
    close(from_);
    return code;
  }
  const unsigned char done = static_cast<unsigned char>(std::min(code, int(kInfra)) | (canceled ? 0x80 : 0));
  (void)ipc::write_all(to_, std::string_view(reinterpret_cast<const char*>(&done), 1));
  unsigned char worst = kInfra;  // the helper died: its nodes' results are lost
  for (;;) {
    pollfd fds[2] = {{from_, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {}
      if (to_ >= 0) close(to_);  // the helper reads the end as a cancel
      to_ = -1;
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = read(from_, &worst, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1 || worst > kInfra) worst = kInfra;
    break;
  }
  if (to_ >= 0) close(to_);
  close(from_);
  to_ = from_ = -1;
  return std::max<int>(code, worst);
}

void parent_say(const RunOptions& o, const std::string& line) {
  const std::string s = line + "\n";
  (void)ipc::write_all(o.stream_fd >= 0 ? STDERR_FILENO : STDOUT_FILENO, s);
}

std::string result_word(int code) {
  switch (code) {
    case kPassed: return "passed";
    case kStepFailed: return "failed";
    case kBadInput: return "bad input";
    case kRefused: return "refused";
    default: return "error";
  }
}

std::string nodes_line(const std::string& job, const NodesOutcome& n) {
  std::vector<std::pair<uint32_t, int>> nodes = n.nodes;
  std::sort(nodes.begin(), nodes.end());
  std::string s = "Job " + job + ": " + std::to_string(n.ran) + " of " + std::to_string(n.total) + " nodes ran in " +
                  format_duration(n.duration) + (n.canceled ? " (canceled)" : "") + ":";
  for (const auto& [i, code] : nodes)
    s += " node " + std::to_string(i) + " " + result_word(code) + (code > kStepFailed ? " (exit " + std::to_string(code) + ")" : "") + ",";
  s.back() = '.';
  return s;
}

std::string format_duration(std::chrono::milliseconds d) {
  char buf[64];
  const long long ms = d.count();
  if (ms < 1000) snprintf(buf, sizeof buf, "%lldms", ms);
  else if (ms < 60000) snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ms) / 1000.0);
  else snprintf(buf, sizeof buf, "%lldm%02llds", ms / 60000, (ms / 1000) % 60);
  return buf;
}

int run_command(const RunOptions& o) {
  // Flags are checked here so that nothing starts with one the broker
  // would refuse; the broker checks them again.
  auto usage = [](const std::string& why) {
    fprintf(stderr, "gatehouse run: %s\n", why.c_str());
    return int(kBadInput);
  };
  job::EnvList params;
  for (const auto& p : o.params)
    if (auto why = job::add_param(p, params); !why.empty()) return usage(why);
  if (auto why = job::pipeline_id_problem(o.pipeline_id); !why.empty()) return usage(why);
  if (o.node_index && *o.node_index >= job::kMaxParallelism)
    return usage("--node-index must be below " + std::to_string(job::kMaxParallelism));
  if (o.parallel < 1 || o.parallel > job::kMaxParallelism)
    return usage("--parallel must be 1 to " + std::to_string(job::kMaxParallelism));
  if (o.parallel > 1 && o.stream_fd >= 0)
    return usage("--parallel with --stream-fd: the stream's records would interleave; run nodes one at a time");
  if (!o.approve.empty() && !(o.workflow && !o.job)) return usage("--approve names approval jobs of a --workflow run");
  // A workflow's jobs have different node counts: which of them would
  // node I be, and who would run the jobs of one node?
  if (o.node_index && o.workflow && !o.job)
    return usage("--node-index picks one node of one job: use it with --job, not with a whole --workflow");
  sigset_t cancel;
  sigemptyset(&cancel);
  sigaddset(&cancel, SIGINT);
  sigaddset(&cancel, SIGTERM);
  sigprocmask(SIG_BLOCK, &cancel, nullptr);
  if (o.workflow && !o.job) return run_workflow(o);
  // One run here; the helper that may run the job's other nodes only when
  // no node was named (and as root: run_front_end says why not otherwise).
  return run_front_end(o, -1, !o.node_index && geteuid() == 0);
}

}  // namespace gh::cli

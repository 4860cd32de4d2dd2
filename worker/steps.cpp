// Step execution inside the sandbox.
//
// Each step runs in its own session and process group (so a timeout kills
// the whole step, and no step has a controlling terminal), with stdin on
// /dev/null and stdout+stderr on one pipe that the worker relays. A step is
// over when its shell exits; anything it left running keeps its output
// relayed until the job ends, when the worker, as pid 1, kills every
// process in the namespace.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "worker/masker.hpp"
#include "worker/worker.hpp"

namespace gh::worker {

namespace {

using Clock = std::chrono::steady_clock;
// A canceled job's processes get SIGTERM, then SIGKILL after this; the
// broker kills the whole cgroup at 10 s (broker/session.cpp), so the
// worker's own kill comes first and its report of the step reaches it.
constexpr auto kCancelGrace = std::chrono::seconds(9);

struct Live {
  uint32_t index = 0;
  pid_t pid = -1;
  int out = -1;  // read end of the step's output pipe; -1 once at EOF
  Clock::time_point last_output;
  uint32_t timeout_s = 0;
  bool background = false;
  bool exited = false;
  bool timed_out = false;
  int status = 0;
};

// Deepest first: usually one mkdir, not one per component.
void mkdir_p(const std::string& path) {
  if (mkdir(path.c_str(), 0755) == 0 || errno != ENOENT) return;
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return;
  mkdir_p(path.substr(0, slash));
  (void)mkdir(path.c_str(), 0755);
}

bool write_script(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0700);
  if (fd < 0) return false;
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(fd);
  return off == text.size();
}

void send_output(Channel& ch, uint32_t index, const char* data, size_t n) {
  std::string p;
  ipc::put_u32(p, index);
  p.append(data, n);
  ch.send(ipc::Type::Output, p);
}

void send_finished(Channel& ch, uint32_t index, ipc::StepOutcome o, uint32_t code) {
  std::string p;
  ipc::put_u32(p, index);
  ipc::put_u32(p, static_cast<uint32_t>(o));
  ipc::put_u32(p, code);
  ch.send(ipc::Type::StepFinished, p);
}

// Starts one step. On failure to start, reports SpawnFailed and returns
// nullopt.
std::optional<Live> start_step(const ipc::SpecStep& s, uint32_t index, const std::string& scratch, Channel& ch) {
  std::string script = scratch + "/step-" + std::to_string(index);
  mkdir_p(scratch);
  if (!write_script(script, s.command)) {
    int e = errno;
    std::string msg = "gatehouse: cannot write the step script " + script + ": " + strerror(e) + "\n";
    send_output(ch, index, msg.data(), msg.size());
    send_finished(ch, index, ipc::StepOutcome::SpawnFailed, static_cast<uint32_t>(e));
    return std::nullopt;
  }
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    send_finished(ch, index, ipc::StepOutcome::SpawnFailed, static_cast<uint32_t>(errno));
    return std::nullopt;
  }
  std::vector<std::string> args = s.argv_prefix;
  args.push_back(script);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = s.env;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setsid();
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(in, 0);  // dup2 clears close-on-exec on 0 only
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    // A step's working directory is created when missing, as CircleCI does.
    mkdir_p(s.working_directory);
    if (chdir(s.working_directory.c_str()) != 0) {
      dprintf(2, "gatehouse: cannot enter working directory %s: %s\n", s.working_directory.c_str(), strerror(errno));
      _exit(127);
    }
    // Only 0-2 go to the step: the pipes and the channel are close-on-exec.
    execvpe(argv[0], argv.data(), envp.data());
    dprintf(2, "gatehouse: cannot run the step's shell %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(pipefd[1]);
  if (pid < 0) {
    int e = errno;
    close(pipefd[0]);
    send_finished(ch, index, ipc::StepOutcome::SpawnFailed, static_cast<uint32_t>(e));
    return std::nullopt;
  }
  Live l;
  l.index = index;
  l.pid = pid;
  l.out = pipefd[0];
  l.last_output = Clock::now();
  l.timeout_s = s.no_output_timeout_s;
  l.background = s.background;
  return l;
}

bool step_failed(const Live& l) {
  return l.timed_out || !WIFEXITED(l.status) || WEXITSTATUS(l.status) != 0;
}

void report(Channel& ch, const Live& l) {
  if (l.timed_out) send_finished(ch, l.index, ipc::StepOutcome::TimedOut, l.timeout_s);
  else if (WIFSIGNALED(l.status)) send_finished(ch, l.index, ipc::StepOutcome::Signaled, static_cast<uint32_t>(WTERMSIG(l.status)));
  else send_finished(ch, l.index, ipc::StepOutcome::Exited, static_cast<uint32_t>(WEXITSTATUS(l.status)));
}

class Supervisor {
 public:
  Supervisor(Channel& ch, const std::vector<std::pair<std::string, std::string>>& masks) : ch_(ch), masks_(masks) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    sigfd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  }

  void add(Live l) { live_.push_back(l); }
  bool canceled() const { return canceled_; }

  // Runs the event loop until `pid` has exited (or, with pid -1, until
  // every output pipe is closed). Returns the finished entry for pid.
  Live wait_for(pid_t pid, bool drain_all = false) {
    for (;;) {
      if (!drain_all) {
        for (auto& l : live_)
          if (l.pid == pid && l.exited) {
            drain_ready(l);
            return l;
          }
      } else {
        bool open_left = false;
        for (auto& l : live_) open_left = open_left || l.out >= 0;
        if (!open_left) return {};
      }
      poll_once(pid, drain_all);
    }
  }

  // Background steps still running at the end of the job are reported
  // as killed by the job's end.
  void report_unfinished_background() {
    for (auto& l : live_)
      if (l.background && !l.reported) {
        if (!l.exited) l.status = SIGKILL;  // WIFSIGNALED, WTERMSIG == SIGKILL
        report(ch_, l);
        l.reported = true;
      }
  }

  // What the step wrote before it exited is in its pipe already; relay it
  // before StepFinished goes out, so the step's last lines come before its
  // end and not after. (Children the step left behind may keep the pipe
  // open: only what is there now is read, nothing is waited for.)
  void drain_ready(Live& l) {
    while (l.out >= 0) {
      pollfd p{l.out, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return;
      relay(l.out);
    }
  }

  void mark_reported(pid_t pid) {
    for (auto& l : live_)
      if (l.pid == pid) l.reported = true;
  }

 private:
  struct Entry : Live {
    bool reported = false;
    Entry(const Live& l) : Live(l) {}
    Entry() = default;
  };

  void poll_once(pid_t fg, bool drain_all) {
    std::vector<pollfd> fds;
    fds.push_back({sigfd_, POLLIN, 0});
    fds.push_back({ch_.fd(), POLLIN, 0});
    for (auto& l : live_)
      if (l.out >= 0) fds.push_back({l.out, POLLIN, 0});
    int timeout_ms = drain_all ? 2000 : 1000;
    int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) _exit(4);
    if (drain_all && n == 0) {
      // Writers that outlive the kill cannot exist (all killed); a pipe
      // still open after the wait is closed so the job can end.
      for (auto& l : live_)
        if (l.out >= 0) close_output(l);
      return;
    }
    if (fds[1].revents & (POLLIN | POLLHUP)) handle_broker();
    for (size_t i = 2; i < fds.size(); ++i)
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) relay(fds[i].fd);
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      while (read(sigfd_, &si, sizeof si) == sizeof si) {}
    }
    reap();
    check_timeouts(fg);
    check_cancel_grace();
  }

  void check_cancel_grace() {
    if (canceled_ && !cancel_killed_ && Clock::now() - cancel_at_ >= kCancelGrace) {
      cancel_killed_ = true;
      kill(-1, SIGKILL);
    }
  }

  void handle_broker() {
    auto m = ch_.recv();
    if (!m) _exit(3);  // broker gone: pid 1 exits, the namespace dies
    if (m->type == ipc::Type::Cancel && !canceled_) {
      // SIGTERM first, so a step's trap can clean up and say so; whatever
      // is left after the grace is killed (check_cancel_grace), and the
      // broker kills the whole cgroup at the same time should the worker
      // not get to it.
      canceled_ = true;
      cancel_at_ = Clock::now();
      kill(-1, SIGTERM);
    }
  }

  void relay(int fd) {
    for (auto& l : live_) {
      if (l.out != fd) continue;
      char buf[ipc::kMaxOutputChunk];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        emit(l.index, std::string_view(buf, static_cast<size_t>(n)));
        l.last_output = Clock::now();
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close_output(l);
      }
      return;
    }
  }

  // Everything that leaves for a step goes through that step's masker, in
  // order: what the step printed and what the worker says about it. One
  // masker per output pipe, ended when the pipe is (a background child may
  // hold it open past its step's end, and a secret split across that point
  // is still one stream).
  void emit(uint32_t index, std::string_view bytes) {
    if (masks_.empty()) return send_chunks(index, bytes);
    auto& m = maskers_[index];
    if (!m) m = std::make_unique<Masker>(masks_);
    send_chunks(index, m->feed(bytes));
  }

  // Masking can lengthen output ("[masked:NAME]" for a short value): the
  // message bound holds whatever the masker gives back.
  void send_chunks(uint32_t index, std::string_view bytes) {
    while (!bytes.empty()) {
      const std::string_view piece = bytes.substr(0, ipc::kMaxOutputChunk);
      send_output(ch_, index, piece.data(), piece.size());
      bytes.remove_prefix(piece.size());
    }
  }

  void close_output(Live& l) {
    close(l.out);
    l.out = -1;
    auto it = maskers_.find(l.index);
    if (it == maskers_.end()) return;
    const std::string tail = it->second->flush();
    maskers_.erase(it);
    send_chunks(l.index, tail);
  }

  void reap() {
    // As pid 1 we inherit every orphan of the namespace; reaping them all
    // keeps zombies from filling the pids limit.
    for (;;) {
      int status = 0;
      pid_t p = waitpid(-1, &status, WNOHANG);
      if (p <= 0) return;
      for (auto& l : live_)
        if (l.pid == p && !l.exited) {
          l.exited = true;
          l.status = status;
          if (l.background && !l.reported) {
            report(ch_, l);
            l.reported = true;
          }
        }
    }
  }

  void check_timeouts(pid_t fg) {
    auto now = Clock::now();
    for (auto& l : live_) {
      if (l.pid != fg || l.exited || l.timed_out || l.timeout_s == 0) continue;
      if (now - l.last_output >= std::chrono::seconds(l.timeout_s)) {
        std::string msg = "\ngatehouse: too long with no output (exceeded " + std::to_string(l.timeout_s) +
                          "s): the step was killed\n";
        emit(l.index, msg);
        l.timed_out = true;
        kill(-l.pid, SIGKILL);
        kill(l.pid, SIGKILL);
      }
    }
  }

  Channel& ch_;
  const std::vector<std::pair<std::string, std::string>>& masks_;
  std::map<uint32_t, std::unique_ptr<Masker>> maskers_;
  int sigfd_ = -1;
  bool canceled_ = false, cancel_killed_ = false;
  Clock::time_point cancel_at_{};
  std::vector<Entry> live_;
};

}  // namespace

void run_job(const ipc::JobSpec& spec, Channel& ch) {
  Supervisor sup(ch, spec.masks);
  bool failed = false;
  // $BASH_ENV exists, empty, before the first step (as on CircleCI), made
  // here so it is the job's uid's in the job's own /tmp. If it cannot be,
  // the first step to run fails saying why: bash would read nothing.
  int bash_env_error = 0;
  if (!spec.bash_env.empty()) {
    const int fd = open(spec.bash_env.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) bash_env_error = errno;
    else close(fd);
  }
  for (uint32_t i = 0; i < spec.steps.size(); ++i) {
    const auto& s = spec.steps[i];
    bool run = !sup.canceled() && (s.when == 2 || (s.when == 1 ? failed : !failed));
    if (!run) {
      send_finished(ch, i, ipc::StepOutcome::NotRun, 0);
      continue;
    }
    std::string p;
    ipc::put_u32(p, i);
    ch.send(ipc::Type::StepStarted, p);
    if (bash_env_error != 0) {
      const std::string msg = "gatehouse: cannot create $BASH_ENV " + spec.bash_env + ": " + strerror(bash_env_error) + "\n";
      send_output(ch, i, msg.data(), msg.size());
      send_finished(ch, i, ipc::StepOutcome::SpawnFailed, static_cast<uint32_t>(bash_env_error));
      bash_env_error = 0;
      if (!s.background) failed = true;
      continue;
    }
    auto l = start_step(s, i, spec.scratch_dir, ch);
    if (!l) {
      if (!s.background) failed = true;
      continue;
    }
    sup.add(*l);
    if (s.background) continue;
    Live done = sup.wait_for(l->pid);
    report(ch, done);
    sup.mark_reported(done.pid);
    if (step_failed(done)) failed = true;
  }
  // The job is over: everything still running in the namespace (background
  // steps, daemons, double forks) is killed, its last output relayed.
  kill(-1, SIGKILL);
  sup.wait_for(-1, true);
  while (waitpid(-1, nullptr, WNOHANG) > 0) {}
  sup.report_unfinished_background();
}

}  // namespace gh::worker

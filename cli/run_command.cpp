// `gatehouse run FILE`: the front end of one run. Root is needed only to
// start the broker (`gatehouse-broker run`, which drops to its four
// capabilities); this process then drops to nobody under seccomp and does
// nothing but show the broker's events. A cancel (SIGINT, SIGTERM, or a
// stream reader that went away) is passed to the broker as a Cancel
// message: the broker decides how the job ends. A job's other nodes are
// run by a root helper this process forks before it drops; a workflow's
// runs are each one of these, forked by a parent that stays root
// (cli/run_parent.cpp, cli/run_workflow.cpp).
#include "cli/run_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "cli/confine.hpp"
#include "cli/run_parent.hpp"
#include "common/exit_status.hpp"
#include "common/libexec.hpp"
#include "ipc/broker_messages.hpp"
#include "report/render.hpp"

extern char** environ;

namespace gh::cli {

std::vector<std::string> pipeline_args(const RunOptions& o) {
  std::vector<std::string> a;
  // `--flag=value`: a value that starts with `-` stays a value.
  auto str = [&](const char* flag, const std::string& v) {
    if (!v.empty()) a.push_back(std::string(flag) + "=" + v);
  };
  if (o.workflow) str("--workflow", *o.workflow);
  for (const auto& p : o.params) a.push_back("--param=" + p);
  str("--revision", o.revision);
  if (o.pipeline_number) str("--pipeline-number", std::to_string(*o.pipeline_number));
  str("--pipeline-id", o.pipeline_id);
  str("--orb-dir", o.orb_dir);
  str("--project", o.meta.project);
  str("--branch", o.meta.branch);
  str("--tag", o.meta.tag);
  return a;
}

std::string broker_binary() {
  const char* env_broker = getenv("GATEHOUSE_BROKER");
  return env_broker ? env_broker : find_libexec("gatehouse-broker");
}

// The broker, with the client channel as fd 3 and the caller's stdio and
// environment (the policy's environment.pass reads it).
pid_t start_broker(const std::vector<std::string>& args, int channel) {
  std::vector<char*> argv;
  for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid != 0) return pid;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (dup2(channel, 3) != 3) _exit(kInfra);  // dup2 clears close-on-exec
  execve(argv[0], argv.data(), environ);
  _exit(127);
}

namespace {

std::vector<std::string> broker_args(const std::string& broker, const RunOptions& o) {
  std::vector<std::string> a = {broker, "run", "--client-fd", "3", "--file", o.file, "--work-root", o.work_root,
                                "--lock-dir", o.lock_dir};
  auto opt = [&](const char* flag, const std::optional<std::string>& v) {
    if (v) {
      a.push_back(flag);
      a.push_back(*v);
    }
  };
  auto str = [&](const char* flag, const std::string& v) {
    if (!v.empty()) {
      a.push_back(flag);
      a.push_back(v);
    }
  };
  if (o.job) a.push_back("--job=" + *o.job);  // a workflow's job name may start with `-`
  opt("--policy", o.policy);
  opt("--profile", o.profile);
  opt("--audit-log", o.audit_log);
  opt("--task-id", o.task_id);
  str("--trigger", o.meta.trigger);
  str("--signed-by", o.meta.signed_by);
  if (o.node_index) str("--node-index", std::to_string(*o.node_index));
  for (auto& p : pipeline_args(o)) a.push_back(std::move(p));
  if (o.keep) a.push_back("--keep");
  return a;
}

ipc::ResultEvent infra_result(const std::string& reason) {
  ipc::ResultEvent r;
  r.exit_code = kInfra;
  r.outcome = "infra_error";
  r.reason = reason;
  return r;
}

int fail_before_broker(report::Renderer& out, const std::string& reason) {
  out.diagnostic("gatehouse: infrastructure error: " + reason + "\n");
  out.synthetic_result(infra_result(reason));
  return kInfra;
}

}  // namespace

int run_front_end(const RunOptions& opts, int report_fd, bool other_nodes) {
  const bool stream = opts.stream_fd >= 0;
  // The broker must not inherit the stream: it speaks only on its channel.
  if (stream && fcntl(opts.stream_fd, F_SETFD, FD_CLOEXEC) != 0) {
    fprintf(stderr, "gatehouse: --stream-fd %d: %s\n", opts.stream_fd, strerror(errno));
    return kBadInput;
  }
  std::unique_ptr<report::Renderer> out;
  report::StreamRenderer* stream_out = nullptr;
  if (stream) {
    auto s = std::make_unique<report::StreamRenderer>(opts.stream_fd);
    stream_out = s.get();
    out = std::move(s);
  } else {
    out = std::make_unique<report::TerminalRenderer>(STDOUT_FILENO,
                                                     isatty(STDOUT_FILENO) != 0 && getenv("NO_COLOR") == nullptr);
  }
  if (geteuid() != 0) return fail_before_broker(*out, "gatehouse run needs root (it maps a host uid for the job and builds its sandbox)");

  const std::string broker = broker_binary();
  if (access(broker.c_str(), X_OK) != 0)
    return fail_before_broker(*out, "the broker " + broker + " is missing: reinstall gatehouse or set GATEHOUSE_BROKER");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return fail_before_broker(*out, std::string("socketpair: ") + strerror(errno));

  // Cancels are read from a signalfd and passed on; the broker gets the
  // terminal's SIGINT too (same process group) and keeps it pending until
  // the job can be stopped cleanly.
  sigset_t cancel;
  sigemptyset(&cancel);
  sigaddset(&cancel, SIGINT);
  sigaddset(&cancel, SIGTERM);
  sigprocmask(SIG_BLOCK, &cancel, nullptr);
  const pid_t pid = start_broker(broker_args(broker, opts), sv[1]);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return fail_before_broker(*out, std::string("fork: ") + strerror(errno));
  }
  // The job's other nodes, should its header say it has any, are run by a
  // root helper forked now, while the broker starts and before this
  // process drops to nobody (run_parent.cpp says why it is this way round).
  NodeHelper helper;
  if (other_nodes) helper = NodeHelper::start(opts, {sv[0]});
  const int sigfd = signalfd(-1, &cancel, SFD_CLOEXEC | SFD_NONBLOCK);
  if (auto s = confine_front_end(); !s || sigfd < 0) {
    // Never show a job's output with root's privileges.
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return fail_before_broker(*out, "cannot drop the front end's privileges: " +
                                        (s ? std::string(strerror(errno)) : s.error().message) +
                                        " (gatehouse run needs CAP_SETUID and CAP_SETGID: the front end runs as nobody, "
                                        "the broker writes each job's uid_map and gid_map)");
  }

  ipc::BrokerStreamReader reader;
  std::string broken;
  bool cancel_sent = false;
  auto send_cancel = [&](ipc::CancelWhy why) {
    if (cancel_sent) return;
    cancel_sent = true;
    (void)ipc::write_all(sv[0], ipc::frame_of(ipc::BrokerMsg::Cancel, ipc::CancelRequest{why}));
  };
  char buf[65536];
  for (;;) {
    pollfd fds[2] = {{sv[0], POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {}
      send_cancel(ipc::CancelWhy::Operator);
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = read(sv[0], buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    if (!reader.feed(std::string_view(buf, static_cast<size_t>(n)))) {
      broken = reader.error();
      break;
    }
    while (auto m = reader.next()) {
      if (!ipc::is_job_event(m->type) || !out->event(m->type, m->payload)) {
        broken = std::string("a malformed ") + ipc::broker_msg_name(m->type) + " event";
        break;
      }
    }
    if (!broken.empty()) break;
    if (out->node_total() > 0) {
      // The job's node count, for whoever runs its other nodes.
      helper.count(out->node_total());
      if (report_fd >= 0) {
        std::string count;
        const uint32_t total = out->node_total();
        for (int i = 0; i < 4; ++i) count.push_back(static_cast<char>((total >> (8 * i)) & 0xff));
        (void)ipc::write_all(report_fd, count);
        close(report_fd);
        report_fd = -1;
      }
    }
    if (stream_out && stream_out->sink_lost()) send_cancel(ipc::CancelWhy::SinkLost);
  }
  close(sv[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  int code = 0;
  if (out->have_result()) {
    code = out->result().exit_code;
  } else {
    std::string why = !broken.empty() ? "the broker broke the protocol: " + broken
                      : WIFSIGNALED(status) ? "the broker was killed by signal " + std::to_string(WTERMSIG(status))
                                            : "the broker ended without a result (exit " +
                                                  std::to_string(WEXITSTATUS(status)) + ")";
    code = fail_before_broker(*out, why);
  }
  return helper.finish(code, cancel_sent, sigfd);
}

}  // namespace gh::cli

#include "broker/tasks.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/exit_status.hpp"
#include "policy/pipeline_flags.hpp"

namespace gh::broker {

namespace {

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

std::string ended_how(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exit " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

TaskTable::~TaskTable() {
  for (auto& [id, t] : tasks_)
    if (t.fd >= 0) close(t.fd);
}

size_t TaskTable::running_count() const {
  size_t n = 0;
  for (const auto& [id, t] : tasks_) n += t.running() ? 1 : 0;
  return n;
}

Task* TaskTable::find(const std::string& id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

Status TaskTable::start(const ipc::RunTaskRequest& req) {
  if (before_start_) before_start_();
  if (tasks_.count(req.task_id)) return err("a task with this id is already held by the broker");
  // Everything below becomes an argument of the runner, which checks each
  // again; a NUL would cut one short, so it is refused here.
  const ipc::TaskMeta& m = req.meta;
  for (const std::string* f : {&req.job_name, &m.project, &m.branch, &m.tag, &m.trigger, &m.revision})
    if (has_nul(*f)) return err("the task's metadata holds a NUL byte");
  if (req.signature && (has_nul(req.signature->key) || has_nul(req.signature->ed25519)))
    return err("the task's signature holds a NUL byte");

  std::vector<std::string> a = {settings_.broker_path, "run", "--client-fd", "3", "--text-fd", "4",
                                "--display", "task " + req.task_id, "--job", req.job_name,
                                "--work-root", settings_.work_root,
                                "--lock-dir", settings_.lock_dir, "--task-id", req.task_id, "--check-signature",
                                "--orb-dir", settings_.orb_dir};
  auto add = [&](const char* flag, const std::string& v) {
    if (v.empty()) return;
    a.push_back(flag);
    a.push_back(v);
  };
  add("--policy", settings_.policy_file);  // none: the built-in policy
  if (settings_.uid_slice_count > 1) {
    a.insert(a.end(), {"--uid-slice-index", std::to_string(settings_.uid_slice_index), "--uid-slice-count",
                       std::to_string(settings_.uid_slice_count)});
  }
  add("--project", m.project);
  add("--branch", m.branch);
  add("--tag", m.tag);
  add("--trigger", m.trigger);
  add("--revision", m.revision);
  // << pipeline.id >> is the task's id, when it is one a pipeline id can be
  // (the control plane's ids may also hold `_` and spaces).
  if (job::pipeline_id_problem(req.task_id).empty()) add("--pipeline-id", req.task_id);
  add("--audit-log", settings_.audit_log);
  if (req.signature) {
    a.push_back("--signed");
    add("--signature-key", req.signature->key);
    a.push_back("--signature-ed25519");
    a.push_back(req.signature->ed25519);
  }
  std::vector<char*> argv, envp;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& e : settings_.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int sv[2], text[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return err(std::string("socketpair: ") + strerror(errno));
  if (pipe2(text, O_CLOEXEC) != 0) {
    close(sv[0]);
    close(sv[1]);
    return err(std::string("pipe: ") + strerror(errno));
  }
  pid_t pid = fork();
  if (pid == 0) {
    // Out of the way of 3 and 4 first, so neither dup2 overwrites the other.
    int ch = fcntl(sv[1], F_DUPFD_CLOEXEC, 10), tx = fcntl(text[0], F_DUPFD_CLOEXEC, 10);
    if (ch < 0 || tx < 0 || dup2(ch, 3) != 3 || dup2(tx, 4) != 4) _exit(kInfra);
    syscall(SYS_close_range, 5, ~0U, 0);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(sv[1]);
  close(text[0]);
  if (pid < 0) {
    close(sv[0]);
    close(text[1]);
    return err(std::string("fork: ") + strerror(errno));
  }
  // The runner reads its text first thing; a runner that died early makes
  // this fail (SIGPIPE is ignored), which its exit then explains.
  (void)ipc::write_all(text[1], req.config);
  close(text[1]);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  Task& t = tasks_[req.task_id];
  t.id = req.task_id;
  t.runner = pid;
  t.fd = sv[0];
  return ok_status();
}

void TaskTable::add_event(Task& t, ipc::BrokerMsg type, std::string payload, std::string& out) {
  if (type == ipc::BrokerMsg::Result) t.result_seen = true;
  ipc::TaskEventMsg e{t.id, t.next_seq++, static_cast<uint32_t>(type), std::move(payload)};
  std::string f = ipc::frame_of(ipc::BrokerMsg::TaskEvent, e);
  out += f;
  t.unacked_bytes += f.size();
  t.unacked.emplace_back(e.seq, std::move(f));
}

// Our own runner is trusted to speak the protocol, but it relays a job's
// output: its messages are read with the same bounds as anyone's.
void TaskTable::read_runner(Task& t, std::string& out) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(t.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    bool broken = n > 0 && !t.in.feed(std::string_view(buf, static_cast<size_t>(n)));
    while (!broken && !t.result_seen) {
      auto m = t.in.next();
      if (!m) break;
      if (!ipc::is_job_event(m->type)) broken = true;
      else add_event(t, m->type, std::move(m->payload), out);
    }
    if (n > 0 && !broken && !t.result_seen) continue;
    // EOF, a broken stream, or the job's last event: the channel is done.
    close(t.fd);
    t.fd = -1;
    if (!t.result_seen && t.runner <= 0) {
      ipc::ResultEvent r{kInfra, "infra_error", "the job's broker process ended without a result (" + ended_how(t.exit_status) + ")", 0, 0, 0};
      add_event(t, ipc::BrokerMsg::Result, ipc::encode(r), out);
    }
    return;
  }
}

void TaskTable::runner_exited(pid_t pid, int status, std::string& out) {
  for (auto& [id, t] : tasks_) {
    if (t.runner != pid) continue;
    t.runner = -1;
    t.exit_status = status;
    if (t.fd < 0 && !t.result_seen) {
      ipc::ResultEvent r{kInfra, "infra_error", "the job's broker process ended without a result (" + ended_how(status) + ")", 0, 0, 0};
      add_event(t, ipc::BrokerMsg::Result, ipc::encode(r), out);
    }
    return;
  }
}

void TaskTable::acknowledge(Task& t, uint64_t seq) {
  while (!t.unacked.empty() && t.unacked.front().first <= seq) {
    t.unacked_bytes -= t.unacked.front().second.size();
    t.unacked.pop_front();
  }
}

void TaskTable::cancel(Task& t, ipc::CancelWhy why) {
  if (t.fd < 0 || t.cancel_sent) return;
  t.cancel_sent = true;
  (void)ipc::write_all(t.fd, ipc::frame_of(ipc::BrokerMsg::Cancel, ipc::CancelRequest{why}));
}

void TaskTable::forget_done() {
  std::erase_if(tasks_, [](const auto& kv) { return kv.second.done(); });
}

std::string TaskTable::replay() const {
  std::string out;
  for (const auto& [id, t] : tasks_)
    for (const auto& [seq, f] : t.unacked) out += f;
  return out;
}

}  // namespace gh::broker

#include "broker/agent_link.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent/token.hpp"
#include "broker/log.hpp"
#include "common/exit_status.hpp"
#include "common/libexec.hpp"

namespace gh::broker {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxTasks = 64;  // protocol::kMaxFreeSlots: no agent runs more at once

// The agent user, from /etc/passwd (the static broker has no NSS).
Result<std::pair<uid_t, gid_t>> lookup_user(const std::string& name) {
  FILE* f = fopen("/etc/passwd", "re");
  if (f) {
    char line[4096];
    while (fgets(line, sizeof line, f)) {
      std::string l(line);
      auto parts = std::vector<std::string>();
      size_t start = 0;
      for (size_t i = 0; i <= l.size(); ++i)
        if (i == l.size() || l[i] == ':') {
          parts.push_back(l.substr(start, i - start));
          start = i + 1;
        }
      if (parts.size() < 4 || parts[0] != name) continue;
      fclose(f);
      char* end = nullptr;
      unsigned long uid = strtoul(parts[2].c_str(), &end, 10), gid = strtoul(parts[3].c_str(), nullptr, 10);
      if (uid == 0 || gid == 0) return err("the agent user `" + name + "` is root: the agent must run unprivileged");
      return std::pair<uid_t, gid_t>{static_cast<uid_t>(uid), static_cast<gid_t>(gid)};
    }
    fclose(f);
  }
  return err("the agent runs as the system user `" + name + "`, which this host does not have: create it with "
             "`useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin " + name +
             "` (packaging/gatehouse.sysusers does this under systemd)");
}

bool dir_is_empty(int fd) {
  int d = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dir = d >= 0 ? fdopendir(d) : nullptr;
  if (!dir) return false;
  bool empty = true;
  while (dirent* e = readdir(dir))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
  closedir(dir);
  return empty;
}

// The spool is the agent's: it must be able to write it, and nobody else.
Status prepare_spool(const std::string& dir, uid_t uid, gid_t gid) {
  for (size_t i = 1; i < dir.size(); ++i)
    if (dir[i] == '/' && mkdir(dir.substr(0, i).c_str(), 0755) != 0 && errno != EEXIST)
      return err("cannot make " + dir.substr(0, i) + ": " + strerror(errno));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return err("cannot make the spool " + dir + ": " + strerror(errno));
  // O_PATH first: the agent's own spool is 0700 and the broker has no
  // CAP_DAC_OVERRIDE to open it, nor any need to.
  UniqueFd fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return err("the spool " + dir + " is not a folder: " + strerror(errno));
  struct stat st{};
  if (fstat(fd.get(), &st) != 0) return err("cannot stat the spool " + dir + ": " + strerror(errno));
  if (st.st_uid == uid) return ok_status();
  if (st.st_uid == 0) fd = UniqueFd(openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (st.st_uid != 0 || fd.get() < 0 || !dir_is_empty(fd.get()))
    return err("the spool " + dir + " belongs to uid " + std::to_string(st.st_uid) +
               " and is not empty; the agent (uid " + std::to_string(uid) +
               ") must own it: run `chown -R " + std::to_string(uid) + ":" + std::to_string(gid) + " " + dir + "`");
  if (fchown(fd.get(), uid, gid) != 0 || fchmod(fd.get(), 0700) != 0)
    return err("cannot hand the spool " + dir + " to the agent: " + strerror(errno));
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<AgentLink>> AgentLink::create(const DaemonOptions& o, const ServeSettings& s,
                                                     const std::map<std::string, std::string>& env) {
  std::unique_ptr<AgentLink> l(new AgentLink());
  auto user = lookup_user(o.agent_user);
  if (!user) return user.error();
  l->agent_uid_ = user->first;
  l->agent_gid_ = user->second;
  l->socket_path_ = o.socket;
  l->config_ = o.config;
  l->runner_ = s.runner_name;
  l->drain_grace_ = o.drain_grace;
  if (!o.socket.empty()) return l;

  // By hand: everything the agent cannot make for itself as its user.
  if (auto st = prepare_spool(s.spool_directory, l->agent_uid_, l->agent_gid_); !st) return st.error();
  l->token_file_ = s.auth_token_file;
  if (auto c = env.find("CREDENTIALS_DIRECTORY"); c != env.end()) l->credentials_dir_ = c->second;
  auto token = agent::open_runner_token(l->token_file_, l->credentials_dir_.empty() ? nullptr : l->credentials_dir_.c_str());
  if (!token) return token.error();  // checked now, opened again for each start
  const char* env_agent = getenv("GATEHOUSE_AGENT");
  l->agent_path_ = env_agent ? env_agent : find_libexec("gatehouse-agent");
  for (const auto& [k, v] : env)
    if (k != "CREDENTIALS_DIRECTORY") l->agent_env_.push_back(k + "=" + v);
  return l;
}

AgentLink::~AgentLink() {
  if (fd_ >= 0) close(fd_);
  if (!socket_path_.empty()) unlink(socket_path_.c_str());
}

Status AgentLink::start() {
  if (socket_path_.empty()) return spawn();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof addr.sun_path) return err("the socket path " + socket_path_ + " is too long");
  memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  struct stat st{};
  if (lstat(socket_path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return err(socket_path_ + " exists and is not a socket; remove it");
    unlink(socket_path_.c_str());  // a stale socket of an earlier broker
  }
  listen_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (listen_.get() < 0) return err(std::string("socket: ") + strerror(errno));
  if (bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_.get(), 4) != 0)
    return err("cannot listen on " + socket_path_ + ": " + strerror(errno));
  // Only the agent's group may connect; its uid is checked on accept.
  if (chown(socket_path_.c_str(), 0, agent_gid_) != 0 || chmod(socket_path_.c_str(), 0660) != 0)
    return err("cannot set up " + socket_path_ + ": " + strerror(errno));
  return ok_status();
}

// The agent, as the agent user, with the link on fd 3 and the runner token
// (opened here, with every check) on fd 4. It dies with the broker.
Status AgentLink::spawn() {
  auto token = agent::open_runner_token(token_file_, credentials_dir_.empty() ? nullptr : credentials_dir_.c_str());
  if (!token) return token.error();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return err(std::string("socketpair: ") + strerror(errno));
  std::vector<std::string> args = {agent_path_, "--config", config_, "--broker-fd", "3", "--token-fd", "4"};
  if (drain_grace_ >= 0) {  // --drain-grace given to the broker; else the agent's runner.drain_grace
    args.push_back("--drain-grace");
    args.push_back(std::to_string(drain_grace_));
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : agent_env_) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const int tfd = token->get();
  pid_t pid = fork();
  if (pid == 0) {
    // Groups and gid while still root, the uid last; the death signal after
    // the uid change (which clears it).
    if (setgroups(0, nullptr) != 0 || setresgid(agent_gid_, agent_gid_, agent_gid_) != 0 ||
        setresuid(agent_uid_, agent_uid_, agent_uid_) != 0)
      _exit(kInfra);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(kInfra);
    int ch = fcntl(sv[1], F_DUPFD_CLOEXEC, 10), tk = fcntl(tfd, F_DUPFD_CLOEXEC, 10);
    if (ch < 0 || tk < 0 || dup2(ch, 3) != 3 || dup2(tk, 4) != 4) _exit(kInfra);
    syscall(SYS_close_range, 5, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return err(std::string("fork: ") + strerror(errno));
  }
  agent_pid_ = pid;
  started_at_ = Clock::now();
  fd_ = sv[0];
  fcntl(fd_, F_SETFL, O_NONBLOCK);
  ready_ = false;
  in_ = ipc::BrokerStreamReader();
  out_.clear();
  return ok_status();
}

void AgentLink::add_pollfds(std::vector<pollfd>& fds) {
  listen_index_ = fd_index_ = -1;
  if (listen_.get() >= 0) {
    listen_index_ = static_cast<int>(fds.size());
    fds.push_back({listen_.get(), POLLIN, 0});
  }
  if (fd_ >= 0) {
    fd_index_ = static_cast<int>(fds.size());
    fds.push_back({fd_, static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0});
  }
}

void AgentLink::service(const std::vector<pollfd>& fds, TaskTable& tasks) {
  if (listen_index_ >= 0 && (fds[static_cast<size_t>(listen_index_)].revents & POLLIN)) accept_one();
  if (fd_index_ >= 0 && fd_ >= 0 && (fds[static_cast<size_t>(fd_index_)].revents & (POLLIN | POLLHUP | POLLERR)))
    read_agent(tasks);
  if (spawns_agent() && agent_pid_ < 0 && !finished_ && Clock::now() >= restart_at_) {
    if (auto s = spawn(); !s) {
      broker_log(LogLevel::Error, "cannot start the agent: " + s.error().message);
      finished_ = kInfra;
    }
  }
}

void AgentLink::accept_one() {
  UniqueFd c(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (c.get() < 0) return;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != agent_uid_) {
    broker_log(LogLevel::Warn, "refused a connection from uid " + std::to_string(cred.uid) +
                                   ": only the agent user (uid " + std::to_string(agent_uid_) + ") may connect");
    return;
  }
  if (fd_ >= 0) {
    broker_log(LogLevel::Warn, "refused a second agent connection (pid " + std::to_string(cred.pid) +
                                   "): one agent is connected");
    return;
  }
  fd_ = c.release();
  ready_ = false;
  in_ = ipc::BrokerStreamReader();
  out_.clear();
}

void AgentLink::read_agent(TaskTable& tasks) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) return disconnect("the agent closed its link");
    if (!in_.feed(std::string_view(buf, static_cast<size_t>(n)))) return disconnect("the agent broke the protocol: " + in_.error());
    while (fd_ >= 0) {
      auto m = in_.next();
      if (!m) break;
      handle(*m, tasks);
    }
    if (fd_ < 0) return;
  }
}

void AgentLink::send(ipc::BrokerMsg t, const std::string& payload) {
  if (fd_ >= 0) out_ += ipc::frame(t, payload);
}

// Each handler's effect stays with the agent's own tasks: it starts a
// runner (whose admission the runner decides), forwards a cancel to one of
// them, or forgets events the agent has kept.
void AgentLink::handle(const ipc::BrokerMessage& m, TaskTable& tasks) {
  if (!ready_ && m.type != ipc::BrokerMsg::Hello)
    return disconnect(std::string("the agent sent ") + ipc::broker_msg_name(m.type) + " before Hello");
  switch (m.type) {
    case ipc::BrokerMsg::Hello: {
      auto h = ipc::decode<ipc::HelloRequest>(m.payload);
      if (!h) return disconnect("a malformed Hello: " + h.error().message);
      if (ready_) return disconnect("a second Hello");
      if (h->version != ipc::kBrokerProtocolVersion)
        return disconnect("the agent speaks protocol " + std::to_string(h->version) + ", this broker " +
                          std::to_string(ipc::kBrokerProtocolVersion) + ": install matching versions");
      if (h->runner != runner_)
        return disconnect("the agent is runner `" + h->runner + "`, this broker's is `" + runner_ + "`");
      ipc::WelcomeEvent w;
      w.policy_digest = digest_;
      for (const auto& [id, t] : tasks.all())
        w.tasks.push_back({id, t.running(), t.unacked.empty() ? t.next_seq : t.unacked.front().first});
      ready_ = true;
      send(ipc::BrokerMsg::Welcome, ipc::encode(w));
      if (draining_) send(ipc::BrokerMsg::Drain, ipc::encode(ipc::DrainEvent{drain_now_}));
      out_ += tasks.replay();
      return;
    }
    case ipc::BrokerMsg::RunTask: {
      auto r = ipc::decode<ipc::RunTaskRequest>(m.payload);
      if (!r) return disconnect("a malformed RunTask: " + r.error().message);
      std::string why;
      if (draining_) why = "the broker is draining: it starts no new task";
      else if (tasks.running_count() >= kMaxTasks) why = "the broker already runs " + std::to_string(kMaxTasks) + " tasks";
      else if (auto s = tasks.start(*r); !s) why = s.error().message;
      if (!why.empty()) {
        broker_log(LogLevel::Warn, "task " + r->task_id + ": not started: " + why);
        send(ipc::BrokerMsg::TaskRejected, ipc::encode(ipc::TaskRejectedEvent{r->task_id, why}));
      }
      return;
    }
    case ipc::BrokerMsg::CancelTask: {
      auto c = ipc::decode<ipc::CancelTaskRequest>(m.payload);
      if (!c) return disconnect("a malformed CancelTask: " + c.error().message);
      if (Task* t = tasks.find(c->task_id)) tasks.cancel(*t, c->why);
      return;
    }
    case ipc::BrokerMsg::Ack: {
      auto a = ipc::decode<ipc::AckRequest>(m.payload);
      if (!a) return disconnect("a malformed Ack: " + a.error().message);
      Task* t = tasks.find(a->task_id);
      if (!t) return;  // already forgotten: a repeated ack
      if (a->seq >= t->next_seq) return disconnect("the agent acknowledged events never sent");
      tasks.acknowledge(*t, a->seq);
      return;
    }
    case ipc::BrokerMsg::JobHeader:
    case ipc::BrokerMsg::StepStarted:
    case ipc::BrokerMsg::Output:
    case ipc::BrokerMsg::StepFinished:
    case ipc::BrokerMsg::Note:
    case ipc::BrokerMsg::Diagnostic:
    case ipc::BrokerMsg::Setup:
    case ipc::BrokerMsg::Summary:
    case ipc::BrokerMsg::Result:
    case ipc::BrokerMsg::Cancel:
    case ipc::BrokerMsg::Plan:
    case ipc::BrokerMsg::Welcome:
    case ipc::BrokerMsg::TaskEvent:
    case ipc::BrokerMsg::TaskRejected:
    case ipc::BrokerMsg::Drain: break;
  }
  disconnect(std::string("the agent sent ") + ipc::broker_msg_name(m.type) + ", which only the broker sends");
}

void AgentLink::disconnect(const std::string& why) {
  if (fd_ < 0) return;
  broker_log(ready_ ? LogLevel::Info : LogLevel::Warn, why + "; its tasks go on and are delivered when it is back");
  close(fd_);
  fd_ = -1;
  ready_ = false;
  out_.clear();
}

void AgentLink::flush() {
  discard_.clear();
  while (fd_ >= 0 && !out_.empty()) {
    ssize_t n = write(fd_, out_.data(), out_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) return disconnect("the agent's link broke");
    out_.erase(0, static_cast<size_t>(n));
  }
}

void AgentLink::drain(bool now) {
  draining_ = true;
  drain_now_ = drain_now_ || now;
  if (ready_) send(ipc::BrokerMsg::Drain, ipc::encode(ipc::DrainEvent{drain_now_}));
}

bool AgentLink::child_exited(pid_t pid, int status) {
  if (pid != agent_pid_) return false;
  agent_pid_ = -1;
  const bool clean = WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == kBadInput ||
                                            WEXITSTATUS(status) == kInfra);
  if (clean) {
    // It ended by itself: a drain, single-task, an idle timeout, or it could
    // not start. Its status becomes the broker's once no task runs.
    finished_ = WEXITSTATUS(status);
    if (fd_ >= 0) disconnect("the agent exited");
    return true;
  }
  // A crash (a hostile answer, a bug): the tasks go on; a new agent
  // reconnects and delivers them. Sooner the first times, then backing off.
  const bool long_lived = Clock::now() - started_at_ > std::chrono::seconds(60);
  crashes_ = long_lived ? 1 : crashes_ + 1;
  const int delay = std::min(30, 1 << std::min(crashes_ - 1, 5));
  restart_at_ = Clock::now() + std::chrono::seconds(crashes_ == 1 ? 0 : delay);
  broker_log(LogLevel::Error, std::string("the agent ") +
                                  (WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                                       : "exited " + std::to_string(WEXITSTATUS(status))) +
                                  "; starting it again" +
                                  (crashes_ == 1 ? std::string() : " in " + std::to_string(delay) + "s"));
  if (fd_ >= 0) disconnect("the agent's link closed");
  return true;
}

}  // namespace gh::broker

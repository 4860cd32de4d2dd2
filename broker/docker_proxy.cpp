#include "broker/docker_proxy.hpp"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "broker/audit.hpp"
#include "broker/broker.hpp"
#include "broker/privileges.hpp"
#include "common/unique_fd.hpp"
#include "docker/proxy_config.hpp"
#include "docker/reports.hpp"

namespace gh::broker {

namespace {

// nobody:nogroup. The proxy needs no identity of its own: the Docker
// socket's group (added as its only supplementary group) is its one grant.
constexpr uid_t kProxyUid = 65534;
constexpr gid_t kProxyGid = 65534;

std::string find_proxy() {
  if (const char* env = getenv("GATEHOUSE_DOCKER_PROXY")) return env;
  return find_libexec("gatehouse-docker-proxy", "docker");
}

Result<std::vector<docker::PortRange>> port_ranges(const std::vector<std::string>& ports) {
  std::vector<docker::PortRange> out;
  for (const auto& p : ports) {
    unsigned a = 0, b = 0;
    char dash = 0;
    int got = sscanf(p.c_str(), "%u%c%u", &a, &dash, &b);
    if (got == 1) b = a;
    else if (got != 3 || dash != '-') return err("docker.proxy.ports: `" + p + "` is not a port or a range");
    if (a < 1 || b > 65535 || a > b) return err("docker.proxy.ports: `" + p + "` is out of range");
    out.push_back({static_cast<uint16_t>(a), static_cast<uint16_t>(b)});
  }
  return out;
}

// The host folder behind a job-view folder: a bind in the plan whose
// target is exactly that path.
Result<std::string> host_path_of(const sandbox::SandboxPlan& plan, const std::string& job_path) {
  for (const auto& b : plan.binds)
    if (b.target == job_path && b.is_dir) return b.host;
  return err("docker.proxy.bind_paths: `" + job_path +
             "` is not a folder the job has from the host (the working directory or a filesystem bind); "
             "containers could only bind it by its host path");
}

}  // namespace

Result<gid_t> docker_socket_group(const std::string& socket, const std::string& who) {
  struct stat st {};
  if (stat(socket.c_str(), &st) != 0) return err(who + ": " + socket + ": " + strerror(errno) + " (is dockerd running?)");
  if (!S_ISSOCK(st.st_mode)) return err(who + ": " + socket + " is not a socket");
  if ((st.st_mode & 060) != 060 || st.st_gid == 0)
    return err(who + ": " + socket +
               " must be group read-write for a group other than root (as dockerd makes it: root:docker 0660)");
  return st.st_gid;
}

Result<std::unique_ptr<DockerProxyProcess>> DockerProxyProcess::start(const DockerProxyStart& s, sandbox::SandboxPlan& plan) {
  const policy::Profile& p = *s.profile;
  auto group = docker_socket_group(p.docker.socket, "docker proxy");
  if (!group) return group.error();
  const gid_t docker_gid = *group;

  docker::JobRules rules;
  rules.job_id = s.job_id;
  const std::vector<std::string> roots =
      p.docker.proxy.bind_paths.empty() ? std::vector<std::string>{s.working_directory} : p.docker.proxy.bind_paths;
  for (const auto& r : roots) {
    auto host = host_path_of(plan, r);
    if (!host) return host.error();
    rules.bind_roots.push_back({r, *host});
  }
  auto ports = port_ranges(p.docker.proxy.ports);
  if (!ports) return ports.error();
  rules.ports = *ports;
  rules.images = p.docker.proxy.images;
  rules.push = p.docker.proxy.push;
  rules.buildkit = p.docker.proxy.buildkit;
  rules.memory_bytes = p.docker.proxy.memory_bytes.value_or(p.resources.memory_bytes);
  rules.pids = p.docker.proxy.pids.value_or(p.resources.pids);
  rules.cpus = p.resources.cpus;
  rules.network_none = p.network.mode == policy::NetworkMode::None;

  std::unique_ptr<DockerProxyProcess> proc(new DockerProxyProcess());
  // The socket's folder: root's, searchable, holding one socket that only
  // the job's host uid may connect to.
  mkdir(s.runtime_dir.c_str(), 0711);
  struct stat rd {};
  if (lstat(s.runtime_dir.c_str(), &rd) != 0 || !S_ISDIR(rd.st_mode) || rd.st_uid != 0 || (rd.st_mode & 022) != 0)
    return err("docker proxy: " + s.runtime_dir + " must be a folder owned by root that no one else can write");
  proc->dir_ = s.runtime_dir + "/" + s.job_id;
  if (mkdir(proc->dir_.c_str(), 0711) != 0)
    return err("docker proxy: cannot make " + proc->dir_ + ": " + strerror(errno));
  const std::string sock_path = proc->dir_ + "/docker.sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (sock_path.size() >= sizeof addr.sun_path) return err("docker proxy: " + sock_path + " is too long for a socket path");
  memcpy(addr.sun_path, sock_path.c_str(), sock_path.size() + 1);
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int lfd = listener.get();
  if (lfd < 0) return err(std::string("docker proxy: socket: ") + strerror(errno));
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 64) != 0)
    return err("docker proxy: cannot listen on " + sock_path + ": " + strerror(errno));
  if (chown(sock_path.c_str(), plan.host_uid, plan.host_gid) != 0 || chmod(sock_path.c_str(), 0600) != 0)
    return err("docker proxy: cannot hand " + sock_path + " to the job: " + strerror(errno));

  UniqueFd config_fd(memfd_create("gatehouse-docker-proxy-config", MFD_CLOEXEC));
  const int cfd = config_fd.get();
  const std::string config = docker::rules_to_json(rules);
  if (cfd < 0 || write(cfd, config.data(), config.size()) != static_cast<ssize_t>(config.size()))
    return err("docker proxy: cannot write its config");
  int ev[2];
  if (pipe2(ev, O_CLOEXEC) != 0) return err(std::string("docker proxy: pipe: ") + strerror(errno));
  UniqueFd events_r(ev[0]), events_w(ev[1]);

  const std::string binary = find_proxy();
  if (access(binary.c_str(), X_OK) != 0)
    return err("docker proxy: " + binary + " is missing: reinstall gatehouse or set GATEHOUSE_DOCKER_PROXY");
  const std::string upstream = p.docker.socket;
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return err(std::string("docker proxy: fork: ") + strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. The order matters:
    // groups and gid while still root, the uid last (after it, nothing can
    // be changed back); then the fds the proxy expects at 3, 4, 5.
    const gid_t groups[1] = {docker_gid};
    if (setgroups(1, groups) != 0 || setresgid(kProxyGid, kProxyGid, kProxyGid) != 0 ||
        setresuid(kProxyUid, kProxyUid, kProxyUid) != 0)
      _exit(126);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(126);
    int fds[3] = {lfd, cfd, ev[1]};
    for (int i = 0; i < 3; ++i) {  // move out of the way first, so dup2 never overwrites one we still need
      int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
      if (moved < 0) _exit(126);
      fds[i] = moved;
    }
    for (int i = 0; i < 3; ++i)
      if (dup2(fds[i], 3 + i) != 3 + i) _exit(126);
    close_range(6, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const char* argv[] = {binary.c_str(), "--upstream", upstream.c_str(), nullptr};
    const char* envp[] = {"PATH=/usr/bin:/bin", nullptr};
    execve(binary.c_str(), const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    _exit(127);
  }
  proc->pid_ = pid;
  events_w = UniqueFd();  // the proxy holds the only writing end: EOF when it exits
  const int rfd = events_r.release();
  // The refusals are drained by a small process of the broker's, not a
  // thread: the sandbox is cloned next, and a thread inside malloc at that
  // moment would leave the clone a locked heap. Forked now, while the
  // broker has one thread, it appends to the audit log as refusals happen
  // and hands the cleanup report back on a pipe at the end.
  auto audit = AuditLog::open(s.audit_log);
  int res[2] = {-1, -1};
  if (!audit || pipe2(res, O_CLOEXEC) != 0) {
    (void)signal_as(kProxyUid, kProxyGid, pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    proc->pid_ = -1;
    close(rfd);
    return err("docker proxy: " + (audit ? std::string("pipe: ") + strerror(errno) : "audit log: " + audit.error().message));
  }
  pid_t d = fork();
  if (d == 0) {
    close(res[0]);
    drain(rfd, std::move(*audit), s.record, res[1]);
    _exit(0);
  }
  close(rfd);
  close(res[1]);
  proc->result_fd_ = res[0];
  if (d < 0) {
    (void)signal_as(kProxyUid, kProxyGid, pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    proc->pid_ = -1;
    return err(std::string("docker proxy: fork: ") + strerror(errno));
  }
  proc->drainer_pid_ = d;
  plan.binds.push_back({sock_path, "/var/run/docker.sock", true, false});
  return proc;
}

// Each refusal, as the proxy reports it, becomes an audit record while the
// job runs. The proxy is as hostile as the requests it parsed: its reports
// are typed frames, bounded before they are read (docker/reports.hpp), and
// a broken frame ends the reading. The cleanup report goes back to the
// broker on `report`: "L<line>" per thing left behind, "D" once the proxy
// said it finished.
void DockerProxyProcess::drain(int fd, AuditLog audit, const std::function<nlohmann::json(const std::string&)>& record,
                               int report) {
  docker::ReportReader reader;
  char chunk[8192];
  size_t reported = 0;
  auto tell = [&](const std::string& line) {
    if (reported > 16 * 1024) return;  // the broker reads it only after the proxy is gone
    std::string l = line.substr(0, 1024);
    for (char& c : l)
      if (c == '\n') c = ' ';
    l += "\n";
    reported += l.size();
    (void)!write(report, l.data(), l.size());
  };
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || !reader.feed(std::string_view(chunk, static_cast<size_t>(n)))) break;
    while (auto r = reader.next()) {
      switch (r->kind) {
        case docker::ProxyReport::Kind::CleanupFailed: tell("L" + r->text); break;
        case docker::ProxyReport::Kind::CleanupDone: tell("D"); break;
        case docker::ProxyReport::Kind::Refusal: {
          auto rec = record("denial");
          rec["denial"] = "docker proxy refused " + r->request + ": " + r->text;
          rec["docker"] = {{"rule", r->rule}, {"request", r->request}, {"status", r->status}};
          (void)audit.append(rec);
          break;
        }
      }
    }
    if (reader.broken()) {
      tell("Lthe proxy's report broke framing; the rest of its reports were not read");
      break;
    }
  }
  close(fd);
  close(report);
}

std::vector<std::string> DockerProxyProcess::stop() {
  if (stopped_) return left_;
  stopped_ = true;
  if (pid_ > 0) {
    (void)signal_as(kProxyUid, kProxyGid, pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int status = 0;
    bool reaped = false;
    while (std::chrono::steady_clock::now() < deadline) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno != EINTR)) {
        reaped = true;
        break;
      }
      usleep(20000);
    }
    if (!reaped) {
      (void)signal_as(kProxyUid, kProxyGid, pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    if (!reaped) left_.push_back("the proxy did not finish its cleanup within 120 s and was killed");
  }
  if (drainer_pid_ > 0) {
    waitpid(drainer_pid_, nullptr, 0);  // it ends when the proxy's end of the pipe closes
    drainer_pid_ = -1;
  }
  bool cleanup_done = false;
  if (result_fd_ >= 0) {
    std::string text;
    char b[4096];
    ssize_t n;
    while ((n = read(result_fd_, b, sizeof b)) > 0) text.append(b, static_cast<size_t>(n));
    close(result_fd_);
    result_fd_ = -1;
    size_t pos = 0, nl;
    while ((nl = text.find('\n', pos)) != std::string::npos) {
      std::string l = text.substr(pos, nl - pos);
      pos = nl + 1;
      if (l == "D") cleanup_done = true;
      else if (!l.empty() && l[0] == 'L') left_.push_back(l.substr(1));
    }
  }
  if (!cleanup_done && left_.empty()) left_.push_back("the proxy ended without reporting its cleanup");
  if (!dir_.empty()) {
    unlink((dir_ + "/docker.sock").c_str());
    rmdir(dir_.c_str());
  }
  return left_;
}

DockerProxyProcess::~DockerProxyProcess() { (void)stop(); }

}  // namespace gh::broker

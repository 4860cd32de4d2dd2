// Sandbox spawn: the broker's half of entering the sandbox, and the clone
// child's first moments. The child runs almost no code of the broker's:
// as soon as it has the job's ids it execs gatehouse-sandbox, a fresh
// process image that reads the plan from a memfd and builds the root
// (entry.cpp is its checklist). So the code that mounts, pivots, drops
// capabilities and loads the filters is not linked into the root process,
// and nothing of the broker's memory lives on in the job's pid 1.
//
//   broker (parent)                      clone child (broker code)
//   ---------------                      --------------------------
//   0. plan encoded into a sealed memfd  (before this function)
//   1. clone(NEWUSER|NEWPID|NEWNS|NEWNET|NEWIPC|NEWUTS)
//   2. write setgroups/uid_map/gid_map   waits for "go": until the maps
//   3. send "go"                         exist it has no usable ids
//                                        4. take the job's ids (mapped now),
//                                           keeping the namespace's caps
//                                           as ambient caps: a non-root
//                                           exec would otherwise lose them
//                                        5. fds: channel 3, report 4, go 5,
//                                           plan 6; all others closed
//                                        6. execve gatehouse-sandbox
//   7. move the child into the job's     (gatehouse-sandbox: entry.cpp)
//      cgroup, then send "placed"
//   8. report pipe closes on the worker's exec: the job runs.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/securebits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/unique_fd.hpp"
#include "sandbox/facilities.hpp"
#include "sandbox/plan_codec.hpp"

namespace gh::sandbox {

namespace {

// The fds gatehouse-sandbox finds (entry.cpp reads the same numbers).
constexpr int kChannelFd = 3, kReportFd = 4, kGoFd = 5, kPlanFd = 6;

[[noreturn]] void die(int report_fd, const char* step, int e) {
  // Never unwind here: this is a half-made process in new namespaces.
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%s: %s", step, strerror(e));
  if (n > 0) (void)!write(report_fd, buf, static_cast<size_t>(n));
  _exit(127);
}

// Until the maps were written the child had no id in its namespace. It
// takes the job's ids now, keeping its namespace capabilities
// (SECBIT_NO_SETUID_FIXUP) for building the root; gatehouse-sandbox drops
// them all (caps.cpp) before the worker runs.
int become_job_ids_keeping_caps(uint32_t uid, uint32_t gid) {
  if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) != 0) return errno;
  if (setresgid(gid, gid, gid) != 0) return errno;
  if (setresuid(uid, uid, uid) != 0) return errno;
  return 0;
}

// An exec by a non-root uid keeps only ambient capabilities: raise every
// capability the namespace gave (they act only on what the namespace
// owns) so gatehouse-sandbox can mount and pivot inside it.
int keep_caps_across_exec() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return errno;
  for (int i = 0; i < 2; ++i) data[i].inheritable = data[i].permitted;
  if (syscall(SYS_capset, &hdr, data) != 0) return errno;
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the kernel's last capability
    const bool permitted = (data[cap / 32].permitted >> (cap % 32)) & 1;
    if (permitted && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) return errno;
  }
  return 0;
}

[[noreturn]] void child_exec_entry(const SandboxPlan& plan, int channel_fd, int go_fd, int report_fd, int plan_fd) {
  // Signal state is inherited through execve: the broker's (SIGPIPE
  // ignored, SIGINT/SIGTERM blocked) must not become the job's.
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // If the broker dies, the whole job dies with it (pid 1 of the namespace).
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die(report_fd, "pdeathsig", errno);

  char go = 0;
  if (read(go_fd, &go, 1) != 1 || go != 'g') _exit(125);  // the broker gave up

  if (int e = become_job_ids_keeping_caps(plan.job_uid, plan.job_gid)) die(report_fd, "job ids", e);
  if (int e = keep_caps_across_exec()) die(report_fd, "ambient capabilities", e);
  // Out of the way first, then to the numbers the entry expects; dup2
  // clears close-on-exec, which is what these must survive.
  int fds[4] = {channel_fd, report_fd, go_fd, plan_fd};
  for (int& fd : fds) {
    fd = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (fd < 0) _exit(126);
  }
  for (int i = 0; i < 4; ++i)
    if (dup2(fds[i], kChannelFd + i) != kChannelFd + i) _exit(126);
  if (syscall(SYS_close_range, kPlanFd + 1, ~0U, 0) != 0) die(kReportFd, "close fds", errno);
  char* const argv[] = {const_cast<char*>("gatehouse-sandbox"), nullptr};
  char* const envp[] = {nullptr};
  execve(plan.entry_host_path.c_str(), argv, envp);
  die(kReportFd, "execve gatehouse-sandbox", errno);
}

// The plan in a sealed memfd: the entry reads exactly what was written.
Result<UniqueFd> plan_memfd(const SandboxPlan& plan) {
  const std::string bytes = ipc::encode(plan);
  if (bytes.size() > kMaxPlanBytes) return err("the sandbox plan is larger than 16 MiB");
  UniqueFd fd(static_cast<int>(syscall(SYS_memfd_create, "gatehouse-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (fd.get() < 0) return err(std::string("memfd_create: ") + strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (n <= 0) return err(std::string("writing the sandbox plan: ") + strerror(errno));
    off += static_cast<size_t>(n);
  }
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
    return err(std::string("sealing the sandbox plan: ") + strerror(errno));
  return fd;
}

std::string read_report(int fd) {
  char buf[512];
  std::string msg;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      if (msg.size() < 4096) msg.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return msg;
  }
}

}  // namespace

Result<Spawned> spawn(const SandboxPlan& plan, int channel_fd, const SpawnHooks& hooks) {
  auto memfd = plan_memfd(plan);
  if (!memfd) return memfd.error();
  int go[2], report[2];
  if (pipe2(go, O_CLOEXEC) != 0) return err(std::string("pipe: ") + strerror(errno));
  if (pipe2(report, O_CLOEXEC) != 0) {
    close(go[0]);
    close(go[1]);
    return err(std::string("pipe: ") + strerror(errno));
  }

  pid_t pid = clone_namespaced(plan.host_network);
  if (pid == 0) {
    close(go[1]);
    close(report[0]);
    child_exec_entry(plan, channel_fd, go[0], report[1], memfd->get());
  }
  close(go[0]);
  close(report[1]);
  if (pid < 0) {
    close(go[1]);
    close(report[0]);
    return err(std::string("clone with new namespaces: ") + strerror(-pid) +
               " (user namespaces must be enabled: sysctl user.max_user_namespaces > 0)");
  }

  // The child ends on its own once "go" or "placed" can no longer come
  // (it reads end of file): no signal is needed, which the broker could
  // not send anyway once the child took the job's uid (no CAP_KILL).
  auto abort_child = [&](const std::string& why) -> Result<Spawned> {
    close(go[1]);
    std::string said = read_report(report[0]);
    close(report[0]);
    waitpid(pid, nullptr, 0);
    return err(said.empty() ? why : "sandbox setup failed at step " + said);
  };

  if (auto s = write_id_maps(pid, plan); !s) return abort_child("id maps: " + s.error().message);
  if (write(go[1], "g", 1) != 1) return abort_child(std::string("go signal: ") + strerror(errno));
  if (hooks.attach)
    if (auto s = hooks.attach(hooks.ctx, pid); !s) return abort_child("cgroup: " + s.error().message);
  // A child that failed while it was being placed has reported why and
  // gone: that report, not the broken pipe, is the error.
  if (write(go[1], "c", 1) != 1) return abort_child(std::string("placed signal: ") + strerror(errno));
  close(go[1]);

  // End of file with nothing read: the worker was exec'd and runs.
  std::string msg = read_report(report[0]);
  close(report[0]);
  if (!msg.empty()) {
    waitpid(pid, nullptr, 0);
    return err("sandbox setup failed at step " + msg);
  }
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == pid)
    return err("sandbox child died during setup (status " + std::to_string(status) + ")");
  return Spawned{pid};
}

}  // namespace gh::sandbox

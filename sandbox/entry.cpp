// Sandbox entry, gatehouse-sandbox's half: the checklist. Each step is one
// small function in the file of its kernel facility; this file only orders
// them and explains why the order is what it is. Any failure is reported on
// the report pipe (fd 4) as "<step>: <errno>" and the process dies: nothing
// falls back to a weaker sandbox. spawn.cpp is the broker's half.
//
// gatehouse-sandbox starts as the clone child's exec: in the job's new
// user, pid, mount, network, ipc and uts namespaces, as the job's ids, with
// the namespace's capabilities (ambient), not yet in the job's cgroup.
//
//   broker                               gatehouse-sandbox
//   ------                               -----------------
//                                        1. the plan, decoded from the sealed
//                                           memfd (fd 6), every field bounded
//                                        2. new session: no controlling tty
//   moves the child into the job         3. mounts private; build the root;
//   cgroup (a migration can wait for        pivot_root; old root detached.
//   an RCU grace period: the child          Overlay mode: the upper tmpfs,
//   builds its root meanwhile), then        then the job's /etc and /var on
//   sends "placed"                          it, then one overlay per host
//                                           tree (its directories twinned
//                                           first), then the staging mount
//                                           detached. All of it as the job's
//                                           ids (the twins must be theirs)
//                                           and before 9 (the mounts need
//                                           the namespace's CAP_SYS_ADMIN).
//                                        4. loopback up, hostname
//                                        5. wait for "placed"; enter a cgroup
//                                           namespace (rooted at the job's
//                                           cgroup). No job code has run yet.
//                                        6. rlimits (before the caps that
//                                           would let us raise them go)
//                                        7. fds: channel stays 3, 0-2 to
//                                           /dev/null, all others closed
//                                        8. capabilities dropped (all, or
//                                           all but the namespace-root
//                                           keep-list: sandbox/caps.cpp),
//                                           ids set, every set verified
//                                        9. no_new_privs (seccomp needs it,
//                                           and setuid files stay inert)
//                                       10. Landlock (its syscalls are not
//                                           in the seccomp allowlist)
//                                       11. seccomp, last, then execve
//   report pipe closes on exec: the worker runs.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sandbox/facilities.hpp"
#include "sandbox/plan_codec.hpp"

namespace gh::sandbox {

namespace {

// The fds the clone child left (spawn.cpp).
constexpr int kChannelFd = 3, kReportFd = 4, kGoFd = 5, kPlanFd = 6;

[[noreturn]] void die(const char* step, int e) {
  // Never unwind here: privileges are half dropped, state is half built.
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%s: %s", step, strerror(e));
  if (n > 0) (void)!write(kReportFd, buf, static_cast<size_t>(n));
  _exit(127);
}

void must(const char* step, int e) {
  if (e != 0) die(step, e);
}

// 1. The plan: from the broker, but read like anything that crosses a
// process boundary (bounded, every field checked by its decoder).
SandboxPlan read_plan() {
  std::string bytes;
  char buf[65536];
  if (lseek(kPlanFd, 0, SEEK_SET) != 0) die("plan", errno);
  for (;;) {
    ssize_t n = read(kPlanFd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("plan", errno);
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
    if (bytes.size() > kMaxPlanBytes) die("plan", EFBIG);
  }
  close(kPlanFd);
  auto plan = ipc::decode<SandboxPlan>(bytes);
  if (!plan) die("plan", EINVAL);
  return std::move(*plan);
}

}  // namespace

int entry_main() {
  // The report pipe must close when the worker is exec'd: that end of file
  // tells the broker the job runs.
  if (fcntl(kReportFd, F_SETFD, FD_CLOEXEC) != 0) _exit(126);
  for (int fd : {kChannelFd, kGoFd, kPlanFd})
    if (fcntl(fd, F_GETFD) < 0) die("started without its fds (gatehouse-sandbox is started by the broker)", EBADF);
  const SandboxPlan plan = read_plan();

  if (setsid() < 0) die("setsid", errno);
  must("mounts private", make_mounts_private());
  {
    std::string step;
    if (int e = build_root(plan, step); e) die(("build root: " + step).c_str(), e);
  }
  must("pivot_root", pivot_into(plan.root_dir));
  if (!plan.host_network) must("loopback", bring_up_loopback());
  if (sethostname(plan.hostname.data(), plan.hostname.size()) != 0) die("hostname", errno);
  char go = 0;
  if (read(kGoFd, &go, 1) != 1 || go != 'c') _exit(125);  // not placed: never run
  close(kGoFd);
  must("cgroup namespace", enter_cgroup_namespace());
  must("rlimits", apply_rlimits(plan));

  int devnull = open("/dev/null", O_RDWR);
  if (devnull < 0) die("open /dev/null", errno);
  for (int fd = 0; fd <= 2; ++fd)
    if (dup2(devnull, fd) < 0) die("stdio", errno);
  // The channel (3) is the worker's; the report pipe (4) closes on exec.
  if (syscall(SYS_close_range, kReportFd + 1, ~0U, 0) != 0) die("close fds", errno);

  must("drop privileges", drop_privileges(plan));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs", errno);

  int ll = apply_landlock(plan.landlock);
  if (ll == EOPNOTSUPP) {
    if (plan.require_landlock) die("landlock", ll);
  } else {
    must("landlock", ll);
  }

  // Nothing that allocates or opens files after this point: the filter
  // is in force from here to the worker.
  char* const argv[] = {const_cast<char*>("gatehouse-worker"), nullptr};
  char* const envp[] = {nullptr};
  must("seccomp", load_seccomp(plan.seccomp));
  execve(kWorkerPathInJob, argv, envp);
  die("execve worker", errno);
}

}  // namespace gh::sandbox

int main() { return gh::sandbox::entry_main(); }

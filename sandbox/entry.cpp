// Sandbox entry: the checklist. Each step is one small function in the
// file of its kernel facility; this file only orders them and explains why
// the order is what it is. Any failure in the child is reported on the
// setup pipe as "<step>: <errno>" and the child dies: nothing falls back to
// a weaker sandbox.
//
//   broker (parent)                      child
//   ---------------                      -----
//   0. seccomp/mount plan compiled       (before this function is called)
//   1. clone(NEWUSER|NEWPID|NEWNS|NEWNET|NEWIPC|NEWUTS)
//   2. write setgroups/uid_map/gid_map   waits for "go": until the maps
//   3. send "go"                         exist it has no usable ids
//   4. move the child into the job       5. take the job's ids (mapped now)
//      cgroup, then send "placed"           keeping namespace caps
//      (a cgroup migration can wait for  6. new session: no controlling tty
//      an RCU grace period; the child    7. mounts private; build the root;
//      builds its root meanwhile)           pivot_root; old root detached.
//                                           Overlay mode: the upper tmpfs,
//                                           then the job's /etc and /var on
//                                           it, then one overlay per host
//                                           tree (its directories twinned
//                                           first), then the staging mount
//                                           detached. All of it after 5:
//                                           the twins must be owned by the
//                                           job's ids, and before 12: the
//                                           mounts need the namespace's
//                                           CAP_SYS_ADMIN.
//                                        8. loopback up, hostname
//                                        9. wait for "placed"; enter a cgroup
//                                           namespace (rooted at the job's
//                                           cgroup). No job code has run yet.
//                                       10. rlimits (before the caps that
//                                           would let us raise them go)
//                                       11. fds: channel to 3, 0-2 to
//                                           /dev/null, all others closed
//                                       12. capabilities dropped (all, or
//                                           all but the namespace-root
//                                           keep-list: sandbox/caps.cpp),
//                                           ids set, every set verified
//                                       13. no_new_privs (seccomp needs it,
//                                           and setuid files stay inert)
//                                       14. Landlock (its syscalls are not
//                                           in the seccomp allowlist)
//                                       15. seccomp, last, then execve
//   16. setup pipe closes on exec: the worker runs.
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

namespace {

// Fixed fds in the child while it sets up.
constexpr int kReportFd = 4;

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

[[noreturn]] void child_main(const SandboxPlan& plan, int channel_fd, int go_fd, int report_fd) {
  // The report fd sits at a known number so closing "everything else"
  // keeps it; it is close-on-exec, so a successful execve closes it.
  if (report_fd != kReportFd) {
    if (dup3(report_fd, kReportFd, O_CLOEXEC) < 0) _exit(126);
    close(report_fd);
  }
  // Signal state is inherited through execve: the broker's (SIGPIPE
  // ignored, SIGINT/SIGTERM blocked) must not become the job's.
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // If the broker dies, the whole job dies with it (pid 1 of the namespace).
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("pdeathsig", errno);

  char go = 0;
  if (read(go_fd, &go, 1) != 1 || go != 'g') _exit(125);  // broker gave up

  must("job ids", become_job_ids_keeping_caps(plan));
  if (setsid() < 0) die("setsid", errno);
  must("mounts private", make_mounts_private());
  {
    std::string step;
    if (int e = build_root(plan, step); e) die(("build root: " + step).c_str(), e);
  }
  must("pivot_root", pivot_into(plan.root_dir));
  if (!plan.host_network) must("loopback", bring_up_loopback());
  if (sethostname(plan.hostname.data(), plan.hostname.size()) != 0) die("hostname", errno);
  if (read(go_fd, &go, 1) != 1 || go != 'c') _exit(125);  // not placed: never run
  close(go_fd);
  must("cgroup namespace", enter_cgroup_namespace());
  must("rlimits", apply_rlimits(plan));

  // dup2 clears close-on-exec on fd 3; when the channel already is fd 3
  // the flag must be cleared by hand or execve would close it.
  if (channel_fd != 3) {
    if (dup2(channel_fd, 3) < 0) die("channel fd", errno);
  } else if (fcntl(3, F_SETFD, 0) != 0) {
    die("channel fd", errno);
  }
  int devnull = open("/dev/null", O_RDWR);
  if (devnull < 0) die("open /dev/null", errno);
  for (int fd = 0; fd <= 2; ++fd)
    if (dup2(devnull, fd) < 0) die("stdio", errno);
  if (syscall(SYS_close_range, 5, ~0U, 0) != 0) die("close fds", errno);

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

}  // namespace

Result<Spawned> spawn(const SandboxPlan& plan, int channel_fd, const SpawnHooks& hooks) {
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
    child_main(plan, channel_fd, go[0], report[1]);
  }
  close(go[0]);
  close(report[1]);
  if (pid < 0) {
    close(go[1]);
    close(report[0]);
    return err(std::string("clone with new namespaces: ") + strerror(-pid) +
               " (user namespaces must be enabled: sysctl user.max_user_namespaces > 0)");
  }

  auto abort_child = [&](const std::string& why) -> Result<Spawned> {
    kill(pid, SIGKILL);
    close(go[1]);
    close(report[0]);
    waitpid(pid, nullptr, 0);
    return err(why);
  };

  if (auto s = write_id_maps(pid, plan); !s) return abort_child("id maps: " + s.error().message);
  if (write(go[1], "g", 1) != 1) return abort_child(std::string("go signal: ") + strerror(errno));
  if (hooks.attach)
    if (auto s = hooks.attach(hooks.ctx, pid); !s) return abort_child("cgroup: " + s.error().message);
  if (write(go[1], "c", 1) != 1) return abort_child(std::string("placed signal: ") + strerror(errno));
  close(go[1]);

  // EOF with nothing read: the child reached execve and the worker runs.
  char buf[512];
  std::string msg;
  for (;;) {
    ssize_t n = read(report[0], buf, sizeof buf);
    if (n > 0) {
      msg.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
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

#include "cli/confine.hpp"

#include <grp.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace gh::cli {

namespace {

constexpr uid_t kNobody = 65534;

// What the front end does after it dropped: read the broker's socket and
// the signalfd, write the terminal or the stream, format (memory), reap
// the broker, exit. No open, no socket, no exec, no kill.
constexpr const char* kAllowed[] = {
    "read", "write", "writev", "close", "poll", "ppoll", "rt_sigprocmask", "rt_sigreturn", "wait4",
    "exit", "exit_group", "brk", "mmap", "munmap", "mremap", "madvise", "mprotect", "futex",
    "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "fstat", "newfstatat", "lseek",
    "getpid", "gettid", "getrandom", "restart_syscall", "sigaltstack", "tgkill"};

Status load_filter() {
  // Anything else fails with EPERM rather than killing the front end: the
  // broker would read its death as "nobody watches" and cancel the job.
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) return err("seccomp_init failed");
  for (const char* name : kAllowed) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) {
      seccomp_release(ctx);
      return err(std::string("seccomp: cannot allow ") + name);
    }
  }
  int rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) return err(std::string("seccomp_load: ") + strerror(-rc));
  return ok_status();
}

}  // namespace

Status confine_front_end() {
  if (setgroups(0, nullptr) != 0) return err(std::string("setgroups: ") + strerror(errno));
  if (setresgid(kNobody, kNobody, kNobody) != 0) return err(std::string("setresgid: ") + strerror(errno));
  if (setresuid(kNobody, kNobody, kNobody) != 0) return err(std::string("setresuid: ") + strerror(errno));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return err(std::string("no_new_privs: ") + strerror(errno));
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return err(std::string("dumpable: ") + strerror(errno));
  return load_filter();
}

Status confine_self() {
  if (geteuid() == 0) return confine_front_end();
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return err(std::string("no_new_privs: ") + strerror(errno));
  return load_filter();
}

}  // namespace gh::cli

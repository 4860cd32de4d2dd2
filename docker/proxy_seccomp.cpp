// The proxy's own seccomp filter: an allow-list of what a threaded server
// on unix sockets needs, loaded before the first connection is accepted.
// Anything else fails with EPERM; socket() only for AF_UNIX, so a proxy
// taken over by a hostile request still cannot open a network socket, a
// file, or a process.
#include "docker/proxy_seccomp.hpp"

#include <seccomp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace gh::docker {

Status confine_proxy() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) return err("seccomp_init failed");
  struct Free {
    scmp_filter_ctx c;
    ~Free() { seccomp_release(c); }
  } release{ctx};
  // Threads started later inherit the filter; none exist yet, but TSYNC
  // makes the rule hold even if a library started one.
  if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0) return err("seccomp: cannot ask for TSYNC");
  static const char* const kAllow[] = {
      // I/O on sockets and the memfd holding a build context
      "read", "write", "readv", "writev", "pread64", "close", "poll", "ppoll", "accept", "accept4", "connect",
      "shutdown", "sendto", "recvfrom", "sendmsg", "recvmsg", "setsockopt", "getsockopt", "getsockname",
      "getpeername", "sendfile", "lseek", "fstat", "newfstatat", "ftruncate", "fcntl", "dup", "memfd_create",
      // memory and threads
      "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "futex", "clone", "clone3", "set_robust_list",
      "get_robust_list", "rseq", "set_tid_address", "sched_yield", "sched_getaffinity",
      // signals and time
      "rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "clock_gettime",
      "clock_nanosleep", "nanosleep", "gettimeofday", "getrandom",
      // identity (logging) and leaving
      "getpid", "gettid", "tgkill", "exit", "exit_group"};
  for (const char* name : kAllow) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) return err(std::string("seccomp: cannot allow ") + name);
  }
  if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX)) != 0)
    return err("seccomp: cannot allow socket(AF_UNIX)");
  if (int rc = seccomp_load(ctx); rc != 0) return err(std::string("seccomp_load: ") + strerror(-rc));
  return ok_status();
}

}  // namespace gh::docker

#include "agent/confine.hpp"

#include <linux/capability.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "sandbox/landlock.hpp"

namespace gh::agent {

namespace {

// What libcurl, OpenSSL, glibc's resolver, spdlog and the agent's own
// threads, spool and metrics server call. Checked against a real run
// (tests/integration/serve_confined.sh).
constexpr const char* kAllowed[] = {
    // files
    "read", "write", "readv", "writev", "pread64", "pwrite64", "open", "openat", "close", "close_range", "fstat",
    "newfstatat", "lstat", "stat", "statx", "statfs", "fstatfs", "lseek", "getdents64", "readlink", "readlinkat",
    "access", "faccessat", "faccessat2", "mkdir", "mkdirat", "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "fsync", "fdatasync", "ftruncate", "fchmod", "chmod", "fchmodat", "umask", "fcntl", "ioctl", "dup", "dup2", "dup3",
    "pipe", "pipe2", "flock", "getcwd",
    // memory
    "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "membarrier",
    // threads and signals
    "futex", "set_robust_list", "get_robust_list", "rseq", "clone", "set_tid_address", "exit", "exit_group",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "tgkill", "gettid", "getpid",
    "getppid", "sched_yield", "sched_getaffinity", "restart_syscall",
    // identity (read only)
    "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid",
    // time, entropy, limits
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "getrandom", "uname",
    "sysinfo", "prlimit64", "getrlimit", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    // sockets and polling
    "socket", "connect", "bind", "listen", "accept", "accept4", "getsockname", "getpeername", "getsockopt",
    "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "poll", "ppoll",
    "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "eventfd2",
};

Status load_filter() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) return err("seccomp_init failed");
  auto fail = [&](const std::string& what) {
    seccomp_release(ctx);
    return err("seccomp: " + what);
  };
  for (const char* name : kAllowed) {
    if (std::string_view(name) == "socket") continue;  // by family, below
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) return fail(std::string("cannot allow ") + name);
  }
  // clone3 answers ENOSYS so glibc falls back to clone for its threads.
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0) return fail("clone3");
  // libcurl's multi handle wakes its poll through a unix socket pair
  // (ControlClient::interrupt: a drain or a signal cuts a claim short);
  // without one the wakeup silently does nothing.
  if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(AF_UNIX))) != 0)
    return fail("socketpair");
  for (int family : {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK})
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))) != 0)
      return fail("socket");
  int rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) return err(std::string("seccomp_load: ") + strerror(-rc));
  return ok_status();
}

std::string parent_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}

// A file the agent reads, and where a symlink to it really leads.
void add_read(sandbox::LandlockPlan& plan, const std::string& path) {
  if (path.empty()) return;
  plan.rules.push_back({path, false, false});
  char real[PATH_MAX];
  if (realpath(path.c_str(), real) && path != real) plan.rules.push_back({real, false, false});
}

}  // namespace

Status confine_agent(const AgentConfig& c, const std::string& config_path) {
  // 1. No capabilities: the agent runs as its own user; a capability here
  // would mean it was started wrongly.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return err(std::string("capget: ") + strerror(errno));
  if (data[0].permitted || data[1].permitted || data[0].effective || data[1].effective)
    return err("the agent holds capabilities; start it as an unprivileged user without any");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    return err(std::string("cannot clear ambient capabilities: ") + strerror(errno));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return err(std::string("no_new_privs: ") + strerror(errno));

  // 2. Landlock: the system's code and TLS/DNS files read-only, the
  // agent's state read-write.
  sandbox::LandlockPlan plan;
  for (const char* tree : {"/usr", "/lib", "/lib64", "/lib32", "/bin"}) plan.rules.push_back({tree, false, true});
  for (const char* f : {"/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/hosts", "/etc/resolv.conf",
                        "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
                        "/etc/localtime", "/dev/urandom", "/dev/random"})
    add_read(plan, f);
  plan.rules.push_back({"/dev/null", true, false});
  add_read(plan, config_path);
  add_read(plan, c.api.ca_file);
  add_read(plan, c.api.client_cert);
  add_read(plan, c.api.client_key);
  plan.rules.push_back({c.runner.spool_directory, true, false});
  if (!c.logging.file.empty()) {
    plan.rules.push_back({c.logging.file, true, false});
  }
  if (c.metrics_listen.rfind("unix:", 0) == 0) plan.rules.push_back({parent_of(c.metrics_listen.substr(5)), true, false});
  int ll = sandbox::apply_landlock(plan);
  if (ll != 0 && ll != EOPNOTSUPP) return err(std::string("landlock: ") + strerror(ll));

  // 3. seccomp, last: after it, nothing here can widen anything.
  return load_filter();
}

}  // namespace gh::agent

// seccomp: the filter described in seccomp.hpp, built with libseccomp.
// (Loading a compiled filter is in seccomp.cpp: the sandbox links only that.)
//
// How the filter is put together (compile_seccomp):
//
//  1. Every syscall number libseccomp knows for x86_64 gets a disposition:
//     EPERM unless it is on the allowlist below. Syscalls libseccomp does not
//     know (newer than the library) are left to the default action, ENOSYS.
//  2. A few syscalls are allowed only for some arguments (clone, ioctl,
//     personality, socket, socketpair). libseccomp cannot express "allow
//     unless the argument is X": an unconditional rule for a syscall silently
//     replaces every conditional rule for it (checked with libseccomp 2.5.4),
//     and an unmatched conditional rule falls through to the default action
//     (ENOSYS, not EPERM). So for each of them the rules are written as two
//     disjoint sets that together cover every argument value: the forbidden
//     values get EPERM, and the allowed values are spelled as a union of
//     masked-equality "cubes" (see complement_cubes) that get ALLOW.
//  3. Arguments the kernel reads as 32-bit (int/unsigned int: socket family,
//     ioctl request, personality) are compared on their low 32 bits only, so
//     a caller cannot hide a forbidden value behind set high bits.
//  4. The policy's allow_extra / deny_extra names are applied last; deny
//     wins. allow_extra replaces an argument filter with a plain allow (the
//     policy asked for the syscall by name).
//
// Architecture: only the native x86_64 ABI is in the filter and the
// bad-architecture action kills the process, so i386 calls (int 0x80,
// sysenter) die. x32 calls use the x86_64 audit arch with __X32_SYSCALL_BIT
// (0x40000000) set in the number; libseccomp adds a "nr >= 0x40000000 ->
// bad arch" check to an x86_64 filter that has no x32 arch, so they die too
// (tests/unit/test_seccomp.cpp checks both by running them).
//
// Decisions worth knowing (generous for ordinary userspace, strict for
// kernel attack surface):
//  * prctl is allowed as a whole: the dangerous options (PR_SET_MM,
//    PR_SET_SECUREBITS, PR_CAP_AMBIENT_RAISE, PR_SET_IO_FLUSHER) need
//    capabilities the job no longer has; the rest only restrict the caller
//    or act inside the job's pid namespace (PR_SET_CHILD_SUBREAPER).
//  * seccomp is allowed (a job may restrict itself further); landlock_* is
//    not (Landlock is applied by the sandbox before this filter).
//  * capset, setuid family, setgroups are allowed: with no capabilities they
//    can only drop, and the user namespace has setgroups denied.
//  * clone3 gets ENOSYS (its flags live in memory, which seccomp cannot
//    read); glibc, Go and others fall back to clone, whose flags we check.
//  * io_uring_*, bpf, perf_event_open, userfaultfd, keyctl family, ptrace,
//    process_vm_*, pidfd_getfd, kcmp, process_madvise, the mount API,
//    unshare/setns, NUMA policy setters (mbind, set_mempolicy, migrate_pages,
//    move_pages), modify_ldt and set/get_thread_area, fanotify, quotactl,
//    name_to_handle_at/open_by_handle_at, memfd_secret: EPERM.
//  * clock_adjtime and adjtimex are EPERM even in query mode (glibc's
//    ntp_gettime uses them; build jobs do not).
//  * AF_NETLINK is refused, so getifaddrs() fails inside a job; glibc's
//    getaddrinfo(AI_ADDRCONFIG) falls back to assuming both IPv4 and IPv6.
//  * Legacy AIO (io_setup...), SysV IPC and POSIX mqueues are allowed:
//    databases run in CI need them, and the job has its own IPC namespace.
#include "common/unique_fd.hpp"
#include "sandbox/seccomp.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace gh::sandbox {
namespace {

// Syscalls ordinary build jobs (bash, coreutils, gcc, make, git, python,
// node, java, go) need. Names libseccomp does not know are skipped: they
// then get the default action (ENOSYS), which only ever denies.
constexpr const char* kAllow[] = {
    // file I/O and descriptors
    "read", "write", "open", "openat", "openat2", "creat", "close", "close_range",
    "lseek", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev",
    "preadv2", "pwritev2", "dup", "dup2", "dup3", "pipe", "pipe2", "fcntl",
    "flock", "readahead", "fadvise64", "sendfile", "splice", "tee", "vmsplice",
    "copy_file_range", "sync", "syncfs", "fsync", "fdatasync", "sync_file_range",
    "truncate", "ftruncate", "fallocate",
    // metadata
    "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
    "access", "faccessat", "faccessat2", "getdents", "getdents64", "utime",
    "utimes", "futimesat", "utimensat",
    // names and directories (mknod of devices needs CAP_MKNOD; fifos are fine)
    "getcwd", "chdir", "fchdir", "rename", "renameat", "renameat2", "mkdir",
    "mkdirat", "rmdir", "link", "linkat", "unlink", "unlinkat", "symlink",
    "symlinkat", "readlink", "readlinkat", "mknod", "mknodat", "umask",
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown",
    "fchownat",
    // extended attributes
    "setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr",
    "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
    "fremovexattr",
    // waiting for events
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd",
    "eventfd2", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch",
    // memory (mlock* stay within RLIMIT_MEMLOCK)
    "mmap", "mprotect", "munmap", "mremap", "brk", "madvise", "msync",
    "mincore", "mlock", "mlock2", "munlock", "mlockall", "munlockall",
    "membarrier", "memfd_create", "pkey_mprotect", "pkey_alloc", "pkey_free",
    "get_mempolicy", "cachestat", "map_shadow_stack",
    // processes and threads (clone is filtered below, clone3 gets ENOSYS)
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4",
    "waitid", "getpid", "getppid", "gettid", "getpgrp", "getpgid", "setpgid",
    "getsid", "setsid", "set_tid_address", "set_robust_list", "get_robust_list",
    "futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "rseq",
    "arch_prctl", "prctl", "seccomp", "uname", "sysinfo", "getcpu",
    // scheduling and limits (raising priority needs CAP_SYS_NICE)
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
    "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    "sched_getattr", "sched_setattr", "getpriority", "setpriority",
    "ioprio_get", "ioprio_set", "getrlimit", "setrlimit", "prlimit64",
    "getrusage", "times",
    // credentials (no capabilities left: these can only drop)
    "getuid", "getgid", "geteuid", "getegid", "getresuid", "getresgid",
    "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setfsuid", "setfsgid", "setgroups", "capget", "capset",
    // signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
    "rt_sigtimedwait", "rt_sigqueueinfo", "rt_sigsuspend", "rt_tgsigqueueinfo",
    "sigaltstack", "kill", "tkill", "tgkill", "pause", "signalfd", "signalfd4",
    "pidfd_open", "pidfd_send_signal", "restart_syscall",
    // time (setting clocks is not here)
    "gettimeofday", "time", "clock_gettime", "clock_getres", "clock_nanosleep",
    "nanosleep", "getitimer", "setitimer", "alarm", "timer_create",
    "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
    "timerfd_create", "timerfd_settime", "timerfd_gettime",
    // sockets (socket and socketpair are filtered below)
    "bind", "listen", "accept", "accept4", "connect", "sendto", "recvfrom",
    "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "getsockname",
    "getpeername", "setsockopt", "getsockopt",
    // IPC inside the job's IPC namespace, legacy AIO
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl",
    "semtimedop", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "io_setup",
    "io_destroy", "io_getevents", "io_pgetevents", "io_submit", "io_cancel",
    // misc
    "getrandom",
};

// Kernel attack surface and sandbox escapes. These are not on the allowlist
// anyway; they are listed (and applied after it) so that a later edit to
// kAllow cannot let one of them through.
constexpr const char* kDeny[] = {
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace",
    "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "process_madvise", "process_mrelease", "mount", "umount2", "pivot_root",
    "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr", "unshare", "setns", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "open_by_handle_at", "name_to_handle_at", "acct",
    "quotactl", "quotactl_fd", "syslog", "iopl", "ioperm", "modify_ldt",
    "set_thread_area", "get_thread_area", "lookup_dcookie", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
    "setdomainname", "landlock_create_ruleset", "landlock_add_rule",
    "landlock_restrict_self", "fanotify_init", "fanotify_mark", "memfd_secret",
    "mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages",
    "move_pages", "uselib", "_sysctl", "sysfs", "ustat", "remap_file_pages",
};

constexpr uint64_t kNamespaceFlags[] = {
    CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
    CLONE_NEWIPC, CLONE_NEWUTS,  CLONE_NEWCGROUP,
};

// personality values that only change what uname reports or query the
// current persona: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
// and 0xffffffff (query). ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, foreign
// execution domains etc. are refused.
constexpr uint64_t kPersonalityAllowed[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

constexpr uint64_t kLow32 = 0xffffffffULL;
constexpr uint64_t kSockTypeMask = 0xf;  // SOCK_TYPE_MASK: drops NONBLOCK/CLOEXEC
constexpr uint64_t kSocketFamilies[] = {AF_UNIX, AF_INET, AF_INET6};
constexpr uint64_t kSocketBadTypes[] = {SOCK_RAW, SOCK_PACKET};
constexpr uint64_t kIoctlDenied[] = {TIOCSTI, TIOCLINUX};

struct Cube {
  uint64_t mask;
  uint64_t value;
};

// The values v in [0, width_mask] (width_mask = 2^k - 1) that are NOT in
// `excluded`, written as a union of disjoint cubes: v matches a cube when
// (v & mask) == value. Walks the binary trie of `excluded` from the top bit
// down and emits every branch that holds no excluded value; at most
// k * |excluded| cubes. (libseccomp orders the comparisons itself; the
// longest path, an ioctl request near TIOCSTI, is ~110 BPF instructions,
// against ~15 for an unconditional syscall.)
void complement_walk(int bit, uint64_t mask, uint64_t value, const std::vector<uint64_t>& set,
                     std::vector<Cube>& out) {
  if (set.empty()) {
    out.push_back({mask, value});
    return;
  }
  if (bit < 0) return;  // a fully decided value that is excluded
  const uint64_t b = 1ULL << bit;
  std::vector<uint64_t> zero, one;
  for (uint64_t v : set) (v & b ? one : zero).push_back(v);
  complement_walk(bit - 1, mask | b, value, zero, out);
  complement_walk(bit - 1, mask | b, value | b, one, out);
}

std::vector<Cube> complement_cubes(uint64_t width_mask, std::vector<uint64_t> excluded) {
  for (auto& v : excluded) v &= width_mask;
  std::sort(excluded.begin(), excluded.end());
  excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
  int top = 63;
  while (top >= 0 && !(width_mask & (1ULL << top))) --top;
  std::vector<Cube> out;
  complement_walk(top, 0, 0, excluded, out);
  return out;
}

enum class Disposition { Allow, Deny, Enosys, Clone, Ioctl, Personality, Socket, Socketpair };

class Ctx {
 public:
  Ctx() : ctx_(seccomp_init(SCMP_ACT_ERRNO(ENOSYS))) {}
  ~Ctx() {
    if (ctx_ != nullptr) seccomp_release(ctx_);
  }
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;
  scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};


// libseccomp returns a malloc'd copy of the name; the caller frees it.
std::string syscall_name(int nr) {
  char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
  std::string out = n != nullptr ? std::string(n) : "#" + std::to_string(nr);
  free(n);
  return out;
}

bool syscall_known(int nr) {
  char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
  const bool known = n != nullptr;
  free(n);
  return known;
}

Error lib_error(const std::string& what, int rc) {
  return err("libseccomp: " + what + " failed: " + std::strerror(-rc) +
             " (libseccomp " + std::to_string(seccomp_version()->major) + "." +
             std::to_string(seccomp_version()->minor) + "." +
             std::to_string(seccomp_version()->micro) + ")");
}

// Adds one rule; returns 0 or a negative errno from libseccomp.
int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr,
             const std::vector<scmp_arg_cmp>& cmps) {
  return seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned int>(cmps.size()),
                                cmps.empty() ? nullptr : cmps.data());
}

scmp_arg_cmp masked_eq(unsigned int arg, uint64_t mask, uint64_t value) {
  return scmp_arg_cmp{arg, SCMP_CMP_MASKED_EQ, mask, value};
}

// Rules for a syscall allowed only when the low-32-bit argument `arg` is
// in `allowed` (everything else EPERM), or only when it is not in `denied`.
int add_low32_allow_only(scmp_filter_ctx ctx, int nr, unsigned int arg,
                         const std::vector<uint64_t>& allowed) {
  for (uint64_t v : allowed)
    if (int rc = add_rule(ctx, SCMP_ACT_ALLOW, nr, {masked_eq(arg, kLow32, v)}); rc < 0) return rc;
  for (const Cube& c : complement_cubes(kLow32, allowed))
    if (int rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), nr, {masked_eq(arg, c.mask, c.value)}); rc < 0)
      return rc;
  return 0;
}

int add_low32_deny_only(scmp_filter_ctx ctx, int nr, unsigned int arg,
                        const std::vector<uint64_t>& denied) {
  for (uint64_t v : denied)
    if (int rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), nr, {masked_eq(arg, kLow32, v)}); rc < 0)
      return rc;
  for (const Cube& c : complement_cubes(kLow32, denied))
    if (int rc = add_rule(ctx, SCMP_ACT_ALLOW, nr, {masked_eq(arg, c.mask, c.value)}); rc < 0)
      return rc;
  return 0;
}

int add_clone(scmp_filter_ctx ctx, int nr) {
  uint64_t all = 0;
  for (uint64_t f : kNamespaceFlags) {
    all |= f;
    if (int rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), nr, {masked_eq(0, f, f)}); rc < 0) return rc;
  }
  return add_rule(ctx, SCMP_ACT_ALLOW, nr, {masked_eq(0, all, 0)});
}

// socket(family, type, protocol): allowed iff family (low 32 bits) is one of
// kSocketFamilies and type & SOCK_TYPE_MASK is not raw/packet. Every rule
// starts with a condition on the family so the rule sets stay disjoint.
int add_socket(scmp_filter_ctx ctx, int nr) {
  const std::vector<uint64_t> families(std::begin(kSocketFamilies), std::end(kSocketFamilies));
  const std::vector<uint64_t> bad_types(std::begin(kSocketBadTypes), std::end(kSocketBadTypes));
  for (const Cube& c : complement_cubes(kLow32, families))
    if (int rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), nr, {masked_eq(0, c.mask, c.value)}); rc < 0)
      return rc;
  const std::vector<Cube> good_types = complement_cubes(kSockTypeMask, bad_types);
  for (uint64_t fam : families) {
    for (uint64_t t : bad_types)
      if (int rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), nr,
                            {masked_eq(0, kLow32, fam), masked_eq(1, kSockTypeMask, t)});
          rc < 0)
        return rc;
    for (const Cube& c : good_types)
      if (int rc = add_rule(ctx, SCMP_ACT_ALLOW, nr,
                            {masked_eq(0, kLow32, fam), masked_eq(1, c.mask, c.value)});
          rc < 0)
        return rc;
  }
  return 0;
}

Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  UniqueFd fd(memfd_create("gatehouse-seccomp", MFD_CLOEXEC));
  if (fd.get() < 0) return err(std::string("memfd_create for the seccomp filter failed: ") + std::strerror(errno));
  if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) return lib_error("seccomp_export_bpf", rc);
  // The size from lseek, not fstat: the parse child compiles under a
  // seccomp filter that allows neither fstat nor newfstatat (the latter
  // would let it stat any path).
  const off_t end = lseek(fd.get(), 0, SEEK_END);
  if (end < 0) return err(std::string("lseek on the exported seccomp filter failed: ") + std::strerror(errno));
  const auto size = static_cast<size_t>(end);
  if (size == 0 || size % sizeof(sock_filter) != 0)
    return err("the exported seccomp filter has a bad size (" + std::to_string(size) + " bytes)");
  if (size / sizeof(sock_filter) > BPF_MAXINSNS)
    return err("the seccomp filter is too long (" + std::to_string(size / sizeof(sock_filter)) +
               " instructions, the kernel takes " + std::to_string(BPF_MAXINSNS) + ")");
  std::vector<sock_filter> insns(size / sizeof(sock_filter));
  auto* p = reinterpret_cast<char*>(insns.data());
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd.get(), p + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return err(std::string("reading back the exported seccomp filter failed: ") +
                 (n < 0 ? std::strerror(errno) : "short read"));
    done += static_cast<size_t>(n);
  }
  return insns;
}

// Resolves a policy-supplied name to a native x86_64 syscall number.
Result<int> resolve_policy_name(const std::string& name, const char* list) {
  int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name.c_str());
  if (nr < 0)
    return err("policy " + std::string(list) + " names \"" + name +
               "\", which is not an x86_64 syscall libseccomp knows; fix the policy");
  return nr;
}

}  // namespace

Result<SeccompProgram> compile_seccomp(const SeccompOptions& opts) {
  Ctx ctx;
  if (ctx.get() == nullptr) return err("libseccomp: seccomp_init failed (out of memory?)");
  scmp_filter_ctx c = ctx.get();

  if (int rc = seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0)
    return lib_error("setting the bad-arch action to KILL_PROCESS", rc);
  // Binary-tree dispatch keeps the filter fast with ~370 syscalls; it only
  // changes the layout, so an older libseccomp without it is no weaker.
  (void)seccomp_attr_set(c, SCMP_FLTATR_CTL_OPTIMIZE, 2);

  // 1. Dispositions for every syscall libseccomp knows on x86_64.
  std::map<int, Disposition> disp;
  for (int nr = 0; nr < 1024; ++nr)
    if (syscall_known(nr)) disp[nr] = Disposition::Deny;
  auto set = [&](const char* name, Disposition d) {
    int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
    if (nr >= 0) disp[nr] = d;  // unknown to this libseccomp: default (ENOSYS)
  };
  for (const char* n : kAllow) set(n, Disposition::Allow);
  set("clone", Disposition::Clone);
  set("clone3", Disposition::Enosys);
  set("ioctl", Disposition::Ioctl);
  set("personality", Disposition::Personality);
  set("socket", Disposition::Socket);
  set("socketpair", Disposition::Socketpair);
  for (const char* n : kDeny) set(n, Disposition::Deny);

  // 2. Policy options; deny_extra is applied last so it wins.
  for (const auto& name : opts.allow_extra) {
    auto nr = resolve_policy_name(name, "seccomp.allow_extra");
    if (!nr) return nr.error();
    disp[*nr] = Disposition::Allow;
  }
  for (const auto& name : opts.deny_extra) {
    auto nr = resolve_policy_name(name, "seccomp.deny_extra");
    if (!nr) return nr.error();
    disp[*nr] = Disposition::Deny;
  }

  // 3. Rules.
  for (const auto& [nr, d] : disp) {
    int rc = 0;
    switch (d) {
      case Disposition::Allow: rc = add_rule(c, SCMP_ACT_ALLOW, nr, {}); break;
      case Disposition::Deny: rc = add_rule(c, SCMP_ACT_ERRNO(EPERM), nr, {}); break;
      case Disposition::Enosys: break;  // the default action
      case Disposition::Clone: rc = add_clone(c, nr); break;
      case Disposition::Ioctl:
        rc = add_low32_deny_only(c, nr, 1, {std::begin(kIoctlDenied), std::end(kIoctlDenied)});
        break;
      case Disposition::Personality:
        rc = add_low32_allow_only(c, nr, 0,
                                  {std::begin(kPersonalityAllowed), std::end(kPersonalityAllowed)});
        break;
      case Disposition::Socket: rc = add_socket(c, nr); break;
      case Disposition::Socketpair: rc = add_low32_allow_only(c, nr, 0, {AF_UNIX}); break;
    }
    if (rc < 0) return lib_error("adding the rule for " + syscall_name(nr), rc);
  }

  auto insns = export_bpf(c);
  if (!insns) return insns.error();
  return SeccompProgram{std::move(*insns)};
}

}  // namespace gh::sandbox

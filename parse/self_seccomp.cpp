// gatehouse-parse's own seccomp filter (self_seccomp.hpp).
//
// Everything else is killed: a parser that tries to open a file, make a
// socket, fork or exec has been taken over, and dies before it can use what
// it gained (the broker reports "crashed (killed by signal 31)").
#include "parse/self_seccomp.hpp"

#include <errno.h>
#include <seccomp.h>
#include <sys/mman.h>

#include <cstring>
#include <memory>

namespace gh::parse {

namespace {

struct Rule {
  const char* name;
  const char* why;
};

// Allowed whatever their arguments.
constexpr Rule kAllowed[] = {
    {"read", "the request on stdin"},
    {"write", "the answer on stdout; libseccomp's export into its memfd"},
    {"lseek", "compile_seccomp reads the exported filter's size"},
    {"pread64", "compile_seccomp reads the exported filter back"},
    {"close", "compile_seccomp closes its memfd"},
    {"brk", "malloc"},
    {"munmap", "free of large blocks"},
    {"mremap", "realloc of large blocks"},
    {"madvise", "malloc trimming"},
    {"futex", "OpenSSL's and libstdc++'s once-locks (uncontended: one thread)"},
    {"clock_gettime", "the vDSO's fallback"},
    {"gettimeofday", "the vDSO's fallback"},
    {"getrandom", "libstdc++ and glibc seeding, if a path needs it"},
    {"exit", "the end"},
    {"exit_group", "the end"},
};

using Ctx = std::unique_ptr<void, decltype(&seccomp_release)>;

std::string failed(const char* what, int rc) {
  return std::string(what) + " failed: " + std::strerror(-rc);
}

}  // namespace

std::string apply_self_seccomp() {
  Ctx ctx(seccomp_init(SCMP_ACT_KILL_PROCESS), &seccomp_release);
  if (!ctx) return "seccomp_init failed";
  void* c = ctx.get();
  for (const Rule& r : kAllowed) {
    const int nr = seccomp_syscall_resolve_name(r.name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture (the vDSO ones): nothing to allow
    if (int rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 0); rc < 0) return failed(r.name, rc);
  }
  // Memory, never executable: a parser has no code to load, so PROT_EXEC
  // could only serve an exploit (the binary is static; nothing is dlopen'd).
  const scmp_arg_cmp no_exec{2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0};  // (libseccomp's macros are C compound literals)
  if (int rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, no_exec); rc < 0) return failed("mmap", rc);
  if (int rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, no_exec); rc < 0) return failed("mprotect", rc);
  // compile_seccomp exports into an anonymous memfd (memory, bounded by
  // RLIMIT_FSIZE and RLIMIT_NOFILE, which the broker sets); no other flags.
  const scmp_arg_cmp cloexec{1, SCMP_CMP_EQ, MFD_CLOEXEC, 0};
  if (int rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(memfd_create), 1, cloexec); rc < 0)
    return failed("memfd_create", rc);
#if defined(GH_SANITIZED)
  // Test builds only (-Db_sanitize): the sanitizers' runtimes probe whether
  // memory is readable by writing it into a pipe (IsAccessibleMemoryRange),
  // and AddressSanitizer asks for the signal stack before a noreturn call.
  if (int rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(pipe2), 0); rc < 0) return failed("pipe2", rc);
  const scmp_arg_cmp query_only{0, SCMP_CMP_EQ, 0, 0};
  if (int rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(sigaltstack), 1, query_only); rc < 0)
    return failed("sigaltstack", rc);
#endif
  // libseccomp sets no_new_privs itself before loading (the broker did too).
  if (int rc = seccomp_load(c); rc < 0) return failed("seccomp_load", rc);
  return {};
}

}  // namespace gh::parse

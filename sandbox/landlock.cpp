// Landlock: raw syscalls (glibc has no wrappers), so this runs in the
// sandbox child without libraries. Filesystem rights are handled, and from
// ABI 6 on both scopes: the job may neither connect to an abstract unix
// socket nor signal a process that is outside its Landlock domain. That
// matters for `network: host` jobs, which share the host's network
// namespace and with it the host's abstract socket names (D-Bus, X11,
// systemd's and containerd's sockets...). Network rights (ABI 4) would need
// their own plan (the network namespace already decides what a job may
// reach).
#include "common/unique_fd.hpp"
#include "sandbox/landlock.hpp"
#include "sandbox/landlock_sys.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

// Debian 12's <linux/landlock.h> stops at ABI 2; the kernel may know more.
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)  // ABI 2
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)  // ABI 3
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)  // ABI 5
#endif
// Debian 12's headers also lack scoping (ABI 6).
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

namespace gh::sandbox {
namespace {

constexpr uint64_t kAbi1 =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
    LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
    LANDLOCK_ACCESS_FS_MAKE_SYM;

// Rights that make sense on a file (not a directory) rule.
constexpr uint64_t kFileRights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
                                 LANDLOCK_ACCESS_FS_IOCTL_DEV;

constexpr uint64_t kRead = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;

// Write beneath a path. Creating device nodes is never granted (MAKE_CHAR
// and MAKE_BLOCK stay handled and unlisted). IOCTL_DEV goes with write: a
// writable /dev (the minimal one the mount plan builds: null, zero, tty,
// pts...) needs terminal ioctls such as TCGETS for isatty(); TIOCSTI and
// TIOCLINUX are refused by seccomp. Read-only rules get no device ioctls.
constexpr uint64_t kWrite =
    LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER |
    LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV;

uint64_t handled_for_abi(int abi) {
  uint64_t h = kAbi1;
  if (abi >= 2) h |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) h |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return h;
}

// Our own copies of the UAPI structs. The ruleset attr grew with the ABI
// (handled_access_net in 4, scoped in 6); the kernel takes the size we pass
// and refuses unknown non-zero tails, so apply_landlock passes only the
// prefix the running ABI knows.
struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI 4; left 0: no network rights handled
  uint64_t scoped;              // ABI 6
};
constexpr size_t kRulesetAttrAbi1 = sizeof(uint64_t);
constexpr size_t kRulesetAttrAbi6 = sizeof(RulesetAttr);
static_assert(kRulesetAttrAbi6 == 24, "struct landlock_ruleset_attr of ABI 6 is three u64");

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};


}  // namespace

uint64_t landlock_scopes_for_abi(int abi) {
  return abi >= 6 ? LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL : 0;
}

int apply_landlock(const LandlockPlan& plan) {
  const int abi = landlock_abi_version();
  if (abi <= 0) return EOPNOTSUPP;  // no Landlock (ENOSYS) or disabled at boot (EOPNOTSUPP)
  const uint64_t handled = handled_for_abi(abi);

  RulesetAttr attr{handled, 0, landlock_scopes_for_abi(abi)};
  const size_t attr_size = abi >= 6 ? kRulesetAttrAbi6 : kRulesetAttrAbi1;
  UniqueFd ruleset(static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0U)));
  if (ruleset.get() < 0) return errno;

  for (const LandlockRule& rule : plan.rules) {
    UniqueFd fd(open(rule.path.c_str(), O_PATH | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) continue;  // optional path, not in this job's view
      return errno;
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return errno;

    uint64_t access = kRead;
    if (rule.execute) access |= LANDLOCK_ACCESS_FS_EXECUTE;
    if (rule.write) access |= kWrite;
    if (!S_ISDIR(st.st_mode)) access &= kFileRights;
    access &= handled;

    PathBeneathAttr pb{access, fd.get()};
    if (syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &pb, 0U) != 0)
      return errno;
  }

  if (syscall(SYS_landlock_restrict_self, ruleset.get(), 0U) != 0) return errno;
  return 0;
}

}  // namespace gh::sandbox

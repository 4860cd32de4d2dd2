// Opening a path strictly beneath a directory descriptor: the only way the
// checkout reader and writer open anything inside a tree. openat2 with
// RESOLVE_BENEATH refuses `..` and absolute escapes, RESOLVE_NO_SYMLINKS
// refuses a symbolic link in ANY component (so a folder swapped for a link
// mid-copy fails with ELOOP instead of being followed), and
// RESOLVE_NO_MAGICLINKS refuses /proc-style links. Debian 12's glibc has
// no wrapper, hence the raw syscall.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>

namespace gh::checkout {

inline int open_beneath(int dir_fd, const char* path, uint64_t flags, uint64_t mode = 0) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
    // EAGAIN: a rename elsewhere raced the lookup; the kernel asks to retry.
    if (fd < 0 && (errno == EAGAIN || errno == EINTR) && attempt < 16) continue;
    return static_cast<int>(fd);
  }
}

// "a/b/c" -> ("a/b", "c"); "c" -> ("", "c").
inline std::pair<std::string, std::string> split_parent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {std::string(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace gh::checkout

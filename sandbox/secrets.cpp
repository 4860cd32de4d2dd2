// /run/secrets: the secrets a profile exposes as files. They live only in a
// tmpfs of the job's own mount namespace (never on a disk, gone with the
// job), readable only by the job's uid, and read-only even to it, so a job
// cannot replace one to fool a later step.
//
// Runs in the sandbox child after it took the job's ids (keeping namespace
// capabilities), while the new root is still writable at plan.root_dir.
#include "sandbox/secrets.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace gh::sandbox {

namespace {

constexpr unsigned long kSecretsMountFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

bool plain_name(const std::string& n) {
  return !n.empty() && n.size() <= 255 && n != "." && n != ".." && n.find('/') == std::string::npos &&
         n.find('\0') == std::string::npos;
}

int write_all(int fd, const std::string& content) {
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    off += static_cast<size_t>(n);
  }
  return 0;
}

// A directory entry under `dirfd`, created if missing, never followed if it
// is a symlink.
int subdir(int dirfd, const char* name, int& out) {
  if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST) return errno;
  out = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return out < 0 ? errno : 0;
}

// <root>/run/secrets, made if missing without following any link, as an
// O_PATH fd (the mount target) and the fd of <root>/run (to find the new
// mount again by name: the target fd keeps pointing below it).
int make_mount_point(const std::string& root_dir, int& run, int& secrets) {
  int root = open(root_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return errno;
  int e = subdir(root, "run", run);
  if (!e) e = subdir(run, "secrets", secrets);
  close(root);
  return e;
}

int write_secret(int dirfd, const SecretFile& f, uid_t uid, gid_t gid) {
  if (!plain_name(f.name)) return EINVAL;
  // O_EXCL: two secrets with one name are an error, not a silent overwrite.
  int fd = openat(dirfd, f.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
  if (fd < 0) return errno;
  int e = write_all(fd, f.content);
  struct stat st {};
  if (!e && fchmod(fd, 0400) != 0) e = errno;  // not left to the umask
  if (!e && fstat(fd, &st) != 0) e = errno;
  if (!e && (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != 0400 ||
             static_cast<uint64_t>(st.st_size) != f.content.size()))
    e = EPERM;
  close(fd);
  return e;
}

}  // namespace

int mount_secrets(const SandboxPlan& plan) {
  if (plan.secret_files.empty()) return 0;
  // Files get the caller's ids: they must be the job's, or the job could
  // not read its secrets (or someone else could).
  if (geteuid() != plan.job_uid || getegid() != plan.job_gid) return EPERM;

  // Mounted through the fds: no path string below the new root is ever
  // resolved on the host's tree (sandbox/mounts.cpp says why).
  int run = -1, target = -1;
  int made = make_mount_point(plan.root_dir, run, target);
  auto done = [&](int e) {
    for (int fd : {run, target})
      if (fd >= 0) close(fd);
    return e;
  };
  if (made) return done(made);
  auto fd_path = [](int fd) { return "/proc/self/fd/" + std::to_string(fd); };

  // Just big enough: a page per file (tmpfs rounds up) plus the data, and
  // room for exactly these inodes, so the job cannot use it as scratch
  // space even before it is read-only.
  const long page_l = sysconf(_SC_PAGESIZE);
  const uint64_t page = page_l > 0 ? static_cast<uint64_t>(page_l) : 4096;
  uint64_t bytes = 2 * page;
  for (const auto& f : plan.secret_files) bytes += (f.content.size() + page - 1) / page * page + page;
  const size_t inodes = plan.secret_files.size() + 4;
  const std::string opts = "mode=0700,uid=" + std::to_string(plan.job_uid) + ",gid=" + std::to_string(plan.job_gid) +
                           ",size=" + std::to_string(bytes) + ",nr_inodes=" + std::to_string(inodes);
  if (mount("tmpfs", fd_path(target).c_str(), "tmpfs", kSecretsMountFlags, opts.c_str()) != 0) return done(errno);

  // By name from /run: the new tmpfs's root, not the directory under it.
  int dirfd = openat(run, "secrets", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0) return done(errno);
  int e = 0;
  for (const auto& f : plan.secret_files)
    if ((e = write_secret(dirfd, f, plan.job_uid, plan.job_gid)) != 0) break;
  struct stat st {};
  if (!e && fchmod(dirfd, 0500) != 0) e = errno;
  if (!e && fstat(dirfd, &st) != 0) e = errno;
  if (!e && (st.st_uid != plan.job_uid || (st.st_mode & 07777) != 0500)) e = EPERM;
  if (!e && mount(nullptr, fd_path(dirfd).c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | kSecretsMountFlags,
                  nullptr) != 0)
    e = errno;
  struct statvfs sv {};
  if (!e && fstatvfs(dirfd, &sv) != 0) e = errno;
  if (!e && !(sv.f_flag & ST_RDONLY)) e = EPERM;
  close(dirfd);
  return done(e);
}

}  // namespace gh::sandbox

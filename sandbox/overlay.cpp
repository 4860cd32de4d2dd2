// Overlay root (policy filesystem.root: overlay): the host's tool trees, the
// job's /etc directories and the package manager's state become overlayfs
// mounts whose lower layer is the host's directory, read-only, and whose
// upper layer is a tmpfs the job's mount namespace made. Writes land on the
// tmpfs and vanish with the job; the host's files are never opened for
// writing.
//
// The overlay is mounted by the sandbox child inside its own user namespace
// (overlayfs allows that since Linux 5.11), so the broker needs no
// CAP_SYS_ADMIN. Idmapped lower layers would be the other way to let the job
// own the host's files, but mount_setattr(MOUNT_ATTR_IDMAP) wants
// CAP_SYS_ADMIN over the host filesystem's superblock, i.e. in the initial
// namespace, which DESIGN.md keeps out of the broker.
//
// The problem: the lower layer's files belong to host root, which has no
// mapping in the job's namespace, and capabilities never apply to an inode
// whose owner is unmapped; even root in the namespace could not create a
// file in /usr/local/bin. The fix: before mounting, every directory of the
// lower tree gets a twin in the upper layer (same path and mode, owned by
// the job). A merged directory takes its owner and mode from its upper
// twin, so the job owns every directory and may create, remove and rename
// entries anywhere (removing a host file leaves a whiteout in the upper
// layer). Host files keep their host owner: they can be read and replaced,
// but not changed in place (copy-up would have to chown the copy to an
// unmapped owner, which the kernel refuses with EOVERFLOW).
//
// The package-manager state trees need a little more, because dpkg and apt
// change some files in place or hard-link them (dpkg keeps status-old as a
// link to status; the kernel's protected_hardlinks refuses a link to a file
// the job does not own):
//  - zero-length files anywhere in them (lock files, opened read-write) get
//    an empty, job-owned twin: nothing to copy, nothing to keep secret;
//  - the databases at their top level (dpkg's status, available,
//    diversions, statoverride; apt's extended_states; debconf's *.dat) are
//    copied into the upper layer, owned by the job, when world-readable and
//    at most kMaxCopied: a snapshot of what the job could read anyway.
// Everything else stays the host's: the per-package files further down, and
// unreadable files (debconf's passwords.dat), which stay unreadable.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

namespace {

// The host's tool trees (as the broker binds them when they are real
// directories) and the package manager's state.
// /usr is about 20 levels deep on a desktop install; a tree deeper than
// this is refused rather than half-twinned.
constexpr int kMaxDepth = 96;
constexpr off_t kMaxCopied = 4 << 20;

bool is_dot(const char* n) { return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')); }

// overlayfs's mount options are comma-separated and lowerdir is
// colon-separated: a path with either (or an escape) cannot be passed.
bool option_safe(const std::string& p) { return p.find_first_of(",:\\") == std::string::npos; }

// The empty twin of a zero-length host file, same mode, owned by the job.
int empty_twin(int upper, const char* name, mode_t mode) {
  int fd = openat(upper, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

// A job-owned copy of a world-readable host file. Sized from the open file
// itself: dpkg replaces its status by rename, and a copy sized from an
// older stat could be a prefix of the new file.
int owned_copy(int lower, int upper, const char* name) {
  int in = openat(lower, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (in < 0) return errno == ENOENT ? 0 : errno;
  struct stat st {};
  if (fstat(in, &st) != 0) {
    int e = errno;
    close(in);
    return e;
  }
  if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IROTH) || st.st_size > kMaxCopied) {
    close(in);  // changed on the host meanwhile: it stays the host's
    return 0;
  }
  int out = openat(upper, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0777);
  if (out < 0) {
    int e = errno;
    close(in);
    return e;
  }
  int rc = 0;
  off_t done = 0;
  while (done < st.st_size) {
    ssize_t n = sendfile(out, in, nullptr, static_cast<size_t>(st.st_size - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Truncated in place on the host: an error, not half a database.
      rc = n < 0 ? errno : EAGAIN;
      break;
    }
    done += n;
  }
  close(in);
  close(out);
  return rc;
}

// An unreadable host directory (apt's partial/, 0700 _apt) gets an empty,
// opaque twin: the job sees an empty directory of its own instead of one it
// could not list. Without user xattrs on tmpfs (before Linux 6.6) the host's
// directory stays as it is, unreadable.
int opaque_twin(int upper, const char* name, mode_t mode) {
  if (mkdirat(upper, name, mode & 01777) != 0) return errno;
  int fd = openat(upper, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  int rc = fsetxattr(fd, "user.overlay.opaque", "y", 1, 0) == 0 ? 0 : errno;
  close(fd);
  if (rc == EOPNOTSUPP) return unlinkat(upper, name, AT_REMOVEDIR) == 0 ? 0 : errno;
  return rc;
}

// Twins every directory below `lower` (consumed) into `upper` (consumed).
// Setuid/setgid bits are not copied: the directory belongs to the job.
int twin_dirs(int lower, int upper, int depth, bool state) {
  if (depth > kMaxDepth) {
    close(lower);
    close(upper);
    return ELOOP;
  }
  DIR* d = fdopendir(lower);
  if (d == nullptr) {
    int e = errno;
    close(lower);
    close(upper);
    return e;
  }
  int rc = 0;
  while (rc == 0) {
    errno = 0;
    struct dirent* de = readdir(d);
    if (de == nullptr) {
      rc = errno;
      break;
    }
    if (is_dot(de->d_name)) continue;
    unsigned char type = de->d_type;
    struct stat st {};
    if (type == DT_UNKNOWN || (state && type == DT_REG)) {
      if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed on the host meanwhile
        rc = errno;
        break;
      }
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == DT_REG) {
      if (state && st.st_size == 0)
        rc = empty_twin(upper, de->d_name, st.st_mode);
      else if (state && depth == 0 && (st.st_mode & S_IROTH) && st.st_size <= kMaxCopied)
        rc = owned_copy(dirfd(d), upper, de->d_name);
      continue;
    }
    if (type != DT_DIR) continue;
    int child = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) {
      if (errno == ENOENT) continue;
      if (errno != EACCES) {
        rc = errno;
        break;
      }
      if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        rc = opaque_twin(upper, de->d_name, st.st_mode);
      continue;
    }
    if (fstat(child, &st) != 0) {
      rc = errno;
      close(child);
      break;
    }
    if (mkdirat(upper, de->d_name, st.st_mode & 01777) != 0) {
      rc = errno;
      close(child);
      break;
    }
    int twin = openat(upper, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (twin < 0) {
      rc = errno;
      close(child);
      break;
    }
    rc = twin_dirs(child, twin, depth + 1, state);
  }
  closedir(d);
  close(upper);
  return rc;
}

}  // namespace

int overlay_stage_open(const SandboxPlan& plan, OverlayStage& stage) {
  stage.dir = plan.root_dir + "/.gatehouse-upper";
  stage.trees = 0;
  if (plan.overlay_bytes == 0) return EINVAL;
  if (mkdir(stage.dir.c_str(), 0700) != 0) return errno;
  // The job's ids own the layer: the twins, /etc and /var are the job's.
  const std::string opts = "mode=0700,size=" + std::to_string(plan.overlay_bytes) +
                           ",uid=" + std::to_string(plan.job_uid) + ",gid=" + std::to_string(plan.job_gid);
  if (mount("tmpfs", stage.dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) return errno;
  for (const char* sub : {"/etc", "/var"})
    if (mkdir((stage.dir + sub).c_str(), 0755) != 0) return errno;
  // The layers are named relative to the staging dir, so the job's
  // /proc/self/mountinfo shows "upperdir=3/u", not the broker's paths.
  return chdir(stage.dir.c_str()) == 0 ? 0 : errno;
}

int overlay_tree(OverlayStage& stage, const std::string& host, const std::string& target, unsigned long flags) {
  if (!is_overlay_tree(host) || !option_safe(host) || stage.dir.empty()) return EINVAL;
  // Relative to the staging dir, the current directory (see above).
  const std::string base = std::to_string(stage.trees++);
  const std::string upper = base + "/u", work = base + "/w";
  if (mkdir(base.c_str(), 0700) != 0 || mkdir(work.c_str(), 0700) != 0) return errno;

  // O_NOFOLLOW: the tree must be a real directory, never a link that
  // could point the lower layer somewhere the plan did not name.
  int lower = open(host.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (lower < 0) return errno;
  struct stat st {};
  if (fstat(lower, &st) != 0) {
    int e = errno;
    close(lower);
    return e;
  }
  if (mkdir(upper.c_str(), st.st_mode & 01777) != 0) {
    int e = errno;
    close(lower);
    return e;
  }
  int up = open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (up < 0) {
    int e = errno;
    close(lower);
    return e;
  }
  // The twins take the host's modes exactly; the broker's umask must not
  // narrow them.
  mode_t old_mask = umask(0);
  int e = twin_dirs(lower, up, 0, is_state_tree(host));
  umask(old_mask);
  if (e) return e;

  // userxattr: in a user namespace overlayfs may only use user.* xattrs
  // on the upper layer (which also turns off redirect_dir and metacopy).
  const std::string opts = "lowerdir=" + host + ",upperdir=" + upper + ",workdir=" + work + ",userxattr";
  if (mount("overlay", target.c_str(), "overlay", flags, opts.c_str()) != 0) return errno;
  return 0;
}

int overlay_stage_close(OverlayStage& stage) {
  // Every overlay holds a private clone of the upper layer and /etc and
  // /var are bound from it: the staging mount itself can go, so the job
  // never sees the work directories.
  if (chdir("/") != 0) return errno;
  if (umount2(stage.dir.c_str(), MNT_DETACH) != 0) return errno;
  if (rmdir(stage.dir.c_str()) != 0) return errno;
  return 0;
}

}  // namespace gh::sandbox

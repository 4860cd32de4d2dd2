// Mounts: the job's filesystem view. Built on a fresh tmpfs in the child's
// private mount namespace, then pivot_root'ed into with the old root
// detached, so no path leads back to the host's tree.
//
// Every mount gets nosuid and nodev, except the handful of device nodes
// bound into /dev (a device bind with nodev could not be opened); those
// still get nosuid and noexec. Host paths are bound non-recursively, so a
// writable mount below a read-only one can never come along unseen.
// With filesystem.root `overlay` the host trees sandbox/overlay.cpp names
// become overlays instead of read-only binds, and /etc and /var are the
// job's, on the overlay's tmpfs.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "sandbox/facilities.hpp"
#include "sandbox/secrets.hpp"

namespace gh::sandbox {

namespace {

constexpr unsigned long kSafe = MS_NOSUID | MS_NODEV;

// Deepest first: most paths' parents already exist (the root's own path
// is long), so this is usually one mkdir instead of one per component.
int mkdir_p(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return 0;
  if (errno != ENOENT) return errno;
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return ENOENT;
  if (int e = mkdir_p(path.substr(0, slash), mode); e) return e;
  return mkdir(path.c_str(), mode) == 0 || errno == EEXIST ? 0 : errno;
}

int make_file(const std::string& path) {
  if (size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0)
    if (int e = mkdir_p(path.substr(0, slash), 0755); e) return e;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

int write_file(const std::string& path, const std::string& content, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return errno;
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      int e = errno;
      close(fd);
      return e;
    }
    off += static_cast<size_t>(n);
  }
  close(fd);
  return 0;
}

// A bind remount in a user namespace must keep the flags the kernel locked
// on the source mount (noexec, atime), or it fails with EPERM.
unsigned long locked_flags(const std::string& path) {
  struct statvfs sv {};
  if (statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

int bind(const std::string& src, const std::string& dst, bool is_dir, bool writable, unsigned long extra) {
  int e = is_dir ? mkdir_p(dst, 0755) : make_file(dst);
  if (e) return e;
  if (mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) return errno;
  unsigned long flags = MS_BIND | MS_REMOUNT | extra | locked_flags(dst);
  if (!writable) flags |= MS_RDONLY;
  if (mount(nullptr, dst.c_str(), nullptr, flags, nullptr) != 0) return errno;
  return 0;
}

int tmpfs(const std::string& dst, const std::string& opts, unsigned long flags) {
  if (int e = mkdir_p(dst, 0755); e) return e;
  return mount("tmpfs", dst.c_str(), "tmpfs", flags, opts.c_str()) == 0 ? 0 : errno;
}

// /proc: a fresh instance for the job's pid namespace (it shows only the
// job's processes), with the kernel-tuning and information-leaking parts
// read-only or masked.
int build_proc(const std::string& root) {
  const std::string p = root + "/proc";
  if (int e = mkdir_p(p, 0555); e) return e;
  if (mount("proc", p.c_str(), "proc", kSafe | MS_NOEXEC, nullptr) != 0) return errno;
  for (const char* ro : {"sys", "sysrq-trigger", "irq", "bus", "fs"}) {
    std::string t = p + "/" + ro;
    struct stat st {};
    if (lstat(t.c_str(), &st) != 0) continue;
    if (int e = bind(t, t, S_ISDIR(st.st_mode), false, kSafe | MS_NOEXEC); e) return e;
  }
  for (const char* masked : {"kcore", "keys", "key-users", "timer_list", "sched_debug", "latency_stats", "kmsg",
                             "kallsyms", "kpagecount", "kpageflags", "kpagecgroup", "acpi", "scsi", "config.gz"}) {
    std::string t = p + "/" + masked;
    struct stat st {};
    if (lstat(t.c_str(), &st) != 0) continue;
    int e = S_ISDIR(st.st_mode) ? mount("tmpfs", t.c_str(), "tmpfs", kSafe | MS_NOEXEC | MS_RDONLY, "size=0,mode=0555")
                                : mount("/dev/null", t.c_str(), nullptr, MS_BIND, nullptr);
    if (e != 0) return errno;
  }
  return 0;
}

// /dev: only harmless nodes. A private devpts instance, so the job's ptys
// are not the operator's.
int build_dev(const std::string& root, uint64_t shm_bytes) {
  const std::string d = root + "/dev";
  if (int e = tmpfs(d, "mode=0755,size=64k,nr_inodes=64", MS_NOSUID | MS_NOEXEC); e) return e;
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"})
    if (int e = bind(std::string("/dev/") + node, d + "/" + node, false, true, MS_NOSUID | MS_NOEXEC); e) return e;
  if (int e = mkdir_p(d + "/pts", 0755); e) return e;
  if (mount("devpts", (d + "/pts").c_str(), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") != 0)
    return errno;
  if (symlink("pts/ptmx", (d + "/ptmx").c_str()) != 0) return errno;
  if (int e = tmpfs(d + "/shm", "mode=1777,size=" + std::to_string(shm_bytes), kSafe); e) return e;
  const char* links[][2] = {{"/proc/self/fd", "fd"},
                            {"/proc/self/fd/0", "stdin"},
                            {"/proc/self/fd/1", "stdout"},
                            {"/proc/self/fd/2", "stderr"}};
  for (auto& l : links)
    if (symlink(l[0], (d + "/" + l[1]).c_str()) != 0) return errno;
  return mount(nullptr, d.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, nullptr) == 0
             ? 0
             : errno;
}

}  // namespace

int make_mounts_private() {
  // Nothing we mount may propagate back to the host, and nothing the host
  // mounts later may appear in the job.
  return mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 ? 0 : errno;
}

int build_root(const SandboxPlan& plan, std::string& step) {
  const std::string& r = plan.root_dir;
  // The root tmpfs is remounted read-only at the end: the job can read
  // the skeleton but never change it.
  step = "root tmpfs";
  if (mount("tmpfs", r.c_str(), "tmpfs", kSafe, "mode=0755,size=16m,nr_inodes=8192") != 0) return errno;

  // Overlay mode: the upper layers' tmpfs first, and the job's own,
  // writable /etc and /var bound from it before anything lands there.
  OverlayStage stage;
  if (plan.overlay_root) {
    step = "overlay upper layer";
    if (int e = overlay_stage_open(plan, stage); e) return e;
    step = "overlay /etc and /var";
    for (const char* dir : {"/etc", "/var"})
      if (int e = bind(stage.dir + dir, r + dir, true, true, kSafe); e) return e;
    // Package managers log here; the host's logs are not the job's.
    for (const char* dir : {"/var/log", "/var/log/apt", "/var/lib", "/var/cache"})
      if (mkdir((r + dir).c_str(), 0755) != 0) return errno;
  }

  step = "links";
  for (const auto& [path, target] : plan.links) {
    std::string full = r + path;
    if (int e = mkdir_p(full.substr(0, full.rfind('/')), 0755); e) return e;
    if (symlink(target.c_str(), full.c_str()) != 0) return errno;
  }
  step = "/etc files";
  if (int e = mkdir_p(r + "/etc", 0755); e) return e;
  for (const auto& f : plan.etc_files) {
    std::string path = r + "/etc/" + f.name;
    if (int e = mkdir_p(path.substr(0, path.rfind('/')), 0755); e) return e;
    if (int e = write_file(path, f.content, 0644); e) return e;
  }

  step = "home, /tmp and /var";
  const std::string ids = ",uid=" + std::to_string(plan.job_uid) + ",gid=" + std::to_string(plan.job_gid);
  if (int e = tmpfs(r + plan.home, "mode=0750,size=" + std::to_string(plan.home_bytes) + ids, kSafe); e) return e;
  if (int e = tmpfs(r + "/tmp", "mode=1777,size=" + std::to_string(plan.tmp_bytes), kSafe); e) return e;
  if (int e = mkdir_p(r + "/var", 0755); e) return e;
  if (symlink("/tmp", (r + "/var/tmp").c_str()) != 0) return errno;

  // Binds come sorted by the broker, parents before children.
  for (const auto& b : plan.binds) {
    if (plan.overlay_root && b.is_dir && !b.writable && b.host == b.target && is_overlay_tree(b.host)) {
      step = "overlay " + b.host;
      if (int e = mkdir_p(r + b.target, 0755); e) return e;
      // The host mount's noexec (and the like) carries over, as a bind
      // remount would keep it.
      if (int e = overlay_tree(stage, b.host, r + b.target, kSafe | locked_flags(b.host)); e) return e;
      continue;
    }
    step = "bind " + b.target;
    if (int e = bind(b.host, r + b.target, b.is_dir, b.writable, kSafe); e) return e;
  }

  step = "/proc";
  if (int e = build_proc(r); e) return e;
  step = "/dev";
  if (int e = build_dev(r, plan.shm_bytes); e) return e;

  step = "hidden paths";
  for (const auto& h : plan.hidden) {
    std::string t = r + h;
    struct stat st {};
    if (lstat(t.c_str(), &st) != 0) continue;
    int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", t.c_str(), "tmpfs", kSafe | MS_NOEXEC | MS_RDONLY, "size=0,mode=0555")
                                 : mount("/dev/null", t.c_str(), nullptr, MS_BIND, nullptr);
    if (rc != 0) return errno;
  }
  step = "/run/secrets";
  if (int e = mount_secrets(plan); e) return e;
  if (plan.overlay_root) {
    step = "overlay staging detach";
    if (int e = overlay_stage_close(stage); e) return e;
  }
  // Last: the skeleton itself becomes read-only (/, /run, the mount
  // points); only the tmpfs, the overlays and writable binds stay writable.
  step = "read-only root";
  if (mount(nullptr, r.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | kSafe, nullptr) != 0) return errno;
  return 0;
}

int pivot_into(const std::string& root_dir) {
  // pivot_root(".", ".") stacks the old root under the new one; detaching
  // it leaves no path back to the host filesystem.
  if (chdir(root_dir.c_str()) != 0) return errno;
  if (syscall(SYS_pivot_root, ".", ".") != 0) return errno;
  if (umount2(".", MNT_DETACH) != 0) return errno;
  if (chdir("/") != 0) return errno;
  return 0;
}

}  // namespace gh::sandbox

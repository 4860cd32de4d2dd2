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
//
// Paths in the job's view are never handed to the kernel as strings while
// the root is built: before pivot_root, "/root_dir/var/tmp/x" would follow
// the skeleton's absolute link /var/tmp -> /tmp to the HOST's /tmp. Each one
// is walked from an fd of the new root instead (in_root below), with links
// resolved as if that root were "/", and mounts land on the walk's O_PATH
// fd through /proc/self/fd/N. Host paths (bind sources) stay strings: the
// broker resolved them, and they are the host's by design.
#include <fcntl.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/unique_fd.hpp"
#include "sandbox/facilities.hpp"
#include "sandbox/secrets.hpp"

namespace gh::sandbox {

namespace {

constexpr unsigned long kSafe = MS_NOSUID | MS_NODEV;
// Bounds of one walk: as the kernel's (40 links), and deeper than any
// path a plan names (the job's working directory is the deepest).
constexpr int kMaxLinks = 40;
constexpr int kMaxDepth = 128;

// "/proc/self/fd/N": how a path-taking call (mount, chmod) is pointed at an
// fd. The host's /proc is still mounted while the root is built.
struct FdPath {
  char s[40];
  explicit FdPath(int fd) { snprintf(s, sizeof s, "/proc/self/fd/%d", fd); }
};

// What a path in the new root resolved to: the final object (O_PATH), the
// directory holding it and its name there, so the mount just made on it
// can be found again (a lookup by name crosses into the new mount; the old
// fd keeps pointing below it).
struct Found {
  UniqueFd fd, parent;
  std::string name;
};

enum class Make { Nothing, Dirs, File };

int open_path(int dir, const char* name, int extra = 0) {
  int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | extra);
  return fd < 0 ? -errno : fd;
}

// Walks `path` (absolute in the job's view) from `root` one component at a
// time, as openat2(RESOLVE_IN_ROOT) would: a symlink met on the way is read
// and its target walked in its place, an absolute target from `root`
// again, and ".." never climbs above `root`; nothing ever leaves it. With
// Make::Dirs missing directories are made (mkdirat relative to their
// parent, `mode`); Make::File makes a missing last component an empty
// file. A walk that ends on a directory without naming it ("/", "a/..")
// fills only out.fd, and only when `named` is false: a mount target must
// have a name to be found again by.
int walk(int root, const std::string& path, Make make, mode_t mode, bool named, Found& out) {
  UniqueFd stack[kMaxDepth];  // the directories walked; ".." pops one
  int depth = 0, links = 0;
  auto cur = [&] { return depth == 0 ? root : stack[depth - 1].get(); };
  // The directory the walk is in, as an fd of the caller's own.
  auto take_cur = [&](UniqueFd& into) {
    if (depth > 0) {
      into = std::move(stack[--depth]);
      return 0;
    }
    int fd = fcntl(root, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return errno;
    into = UniqueFd(fd);
    return 0;
  };
  std::string rest = path;
  size_t pos = 0;
  for (;;) {
    while (pos < rest.size() && rest[pos] == '/') ++pos;
    if (pos >= rest.size()) return named ? EINVAL : take_cur(out.fd);
    size_t end = rest.find('/', pos);
    if (end == std::string::npos) end = rest.size();
    const std::string comp = rest.substr(pos, end - pos);
    pos = end;
    while (pos < rest.size() && rest[pos] == '/') ++pos;
    const bool last = pos >= rest.size();
    if (comp.size() > NAME_MAX) return ENAMETOOLONG;
    if (comp == ".") continue;
    if (comp == "..") {
      if (depth > 0) stack[--depth] = UniqueFd();
      continue;
    }
    // Most components are plain directories: O_DIRECTORY|O_NOFOLLOW opens
    // only those, so no fstat is needed to know it is neither a link nor
    // a file. Anything else (ENOTDIR) is looked at below.
    const bool want_dir = !last || make == Make::Dirs;
    int fd = want_dir ? open_path(cur(), comp.c_str(), O_DIRECTORY) : open_path(cur(), comp.c_str());
    if (fd == -ENOENT && make == Make::File && last) {
      int f = openat(cur(), comp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (f < 0 && errno != EEXIST) return errno;
      if (f >= 0) close(f);
      fd = open_path(cur(), comp.c_str());
    } else if (fd == -ENOENT && make != Make::Nothing) {
      if (mkdirat(cur(), comp.c_str(), mode) != 0 && errno != EEXIST) return errno;
      fd = open_path(cur(), comp.c_str(), O_DIRECTORY);
    }
    bool is_dir = want_dir && fd >= 0;
    if (fd == -ENOTDIR && want_dir) fd = open_path(cur(), comp.c_str());
    if (fd < 0) return -fd;
    UniqueFd obj(fd);
    if (!is_dir) {
      struct stat st {};
      if (fstat(obj.get(), &st) != 0) return errno;
      if (S_ISLNK(st.st_mode)) {
        if (++links > kMaxLinks) return ELOOP;
        char target[PATH_MAX];
        ssize_t n = readlinkat(obj.get(), "", target, sizeof target);
        if (n < 0) return errno;
        if (n == 0 || static_cast<size_t>(n) >= sizeof target) return ENAMETOOLONG;
        if (target[0] == '/')
          while (depth > 0) stack[--depth] = UniqueFd();
        rest = std::string(target, static_cast<size_t>(n)) + "/" + rest.substr(pos);
        pos = 0;
        continue;
      }
      is_dir = S_ISDIR(st.st_mode);
    }
    if (last) {
      if (named)
        if (int e = take_cur(out.parent); e) return e;
      out.fd = std::move(obj);
      out.name = comp;
      return 0;
    }
    if (!is_dir) return ENOTDIR;
    if (depth == kMaxDepth) return ENAMETOOLONG;
    stack[depth++] = std::move(obj);
  }
}

// A mount target: the object `path` names, with its parent and name.
int in_root(int root, const std::string& path, Make make, mode_t mode, Found& out) {
  return walk(root, path, make, mode, true, out);
}

#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

// An existing object in the new root, found with the same rules as walk()
// but in one openat2 call (Linux 5.6) where the kernel has it.
int lookup_in_root(int root, const std::string& path, UniqueFd& out) {
  struct {
    uint64_t flags, mode, resolve;
  } how{O_PATH | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  long fd = syscall(SYS_openat2, root, path.c_str(), &how, sizeof how);
  if (fd >= 0) {
    out = UniqueFd(static_cast<int>(fd));
    return 0;
  }
  // ENOSYS: an older kernel; EAGAIN: a rename raced the lookup of "..".
  if (errno != ENOSYS && errno != EAGAIN) return errno;
  Found f;
  if (int e = walk(root, path, Make::Nothing, 0, false, f); e) return e;
  out = std::move(f.fd);
  return 0;
}

// Where `path` lands in the skeleton: the plan's links (and /var/tmp) are
// the only links in the new root before the binds, so resolving them by
// name is exact up to the first host tree; below that, the path as
// written. Binds are mounted in this order, parents first.
std::string landing(const SandboxPlan& plan, const std::string& path) {
  static const std::string kVarTmp = "/var/tmp", kVarTmpTarget = "/tmp";
  std::string done, rest = path;
  size_t pos = 0;
  int links = 0;
  for (;;) {
    while (pos < rest.size() && rest[pos] == '/') ++pos;
    if (pos >= rest.size()) return done.empty() ? "/" : done;
    size_t end = rest.find('/', pos);
    if (end == std::string::npos) end = rest.size();
    const std::string comp = rest.substr(pos, end - pos);
    pos = end;
    if (comp == ".") continue;
    if (comp == "..") {
      done.resize(done.find_last_of('/') == std::string::npos ? 0 : done.find_last_of('/'));
      continue;
    }
    const std::string next = done + "/" + comp;
    const std::string* target = next == kVarTmp ? &kVarTmpTarget : nullptr;
    for (const auto& [at, to] : plan.links)
      if (at == next) target = &to;
    if (target && !target->empty() && ++links <= kMaxLinks) {
      if ((*target)[0] == '/') done.clear();
      rest = *target + "/" + rest.substr(pos);
      pos = 0;
      continue;
    }
    done = next;
  }
}

// A directory in the new root, made if missing with Make::Dirs.
int dir_in_root(int root, const std::string& path, Make make, mode_t mode, UniqueFd& out) {
  Found f;
  if (int e = walk(root, path, make, mode, false, f); e) return e;
  struct stat st {};
  if (fstat(f.fd.get(), &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  out = std::move(f.fd);
  return 0;
}

// The directory that will hold the last component of `path` (made if
// missing) and that component's name: for objects made in place (links,
// files), whose own name must never be followed.
int parent_in_root(int root, const std::string& path, UniqueFd& dir, std::string& name) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash + 1 >= path.size()) return EINVAL;
  name = path.substr(slash + 1);
  if (name == "." || name == "..") return EINVAL;
  return dir_in_root(root, slash == 0 ? std::string("/") : path.substr(0, slash), Make::Dirs, 0755, dir);
}

// The mount now on top of what `f` found.
int reopen(const Found& f, UniqueFd& top) {
  int fd = open_path(f.parent.get(), f.name.c_str());
  if (fd < 0) return -fd;
  top = UniqueFd(fd);
  return 0;
}

int write_file_at(int dir, const std::string& name, const std::string& content, mode_t mode) {
  int fd = openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
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
unsigned long locked_flags(const struct statvfs& sv) {
  unsigned long f = 0;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

unsigned long locked_flags(const std::string& host_path) {
  struct statvfs sv {};
  return statvfs(host_path.c_str(), &sv) == 0 ? locked_flags(sv) : 0;
}

// Binds `src` (a host path, or "/proc/self/fd/N") onto `target` in the new
// root, then remounts it with the wanted flags. `mounted`, when given, gets
// the new mount's root as fstat sees it.
int bind(int root, const std::string& src, const std::string& target, bool is_dir, bool writable,
         unsigned long extra, struct stat* mounted = nullptr) {
  Found t;
  if (int e = in_root(root, target, is_dir ? Make::Dirs : Make::File, 0755, t); e) return e;
  if (mount(src.c_str(), FdPath(t.fd.get()).s, nullptr, MS_BIND, nullptr) != 0) return errno;
  UniqueFd top;
  if (int e = reopen(t, top); e) return e;
  struct statvfs sv {};
  if (fstatvfs(top.get(), &sv) != 0) return errno;
  unsigned long flags = MS_BIND | MS_REMOUNT | extra | locked_flags(sv);
  if (!writable) flags |= MS_RDONLY;
  if (mount(nullptr, FdPath(top.get()).s, nullptr, flags, nullptr) != 0) return errno;
  return mounted && fstat(top.get(), mounted) != 0 ? errno : 0;
}

// Mounts a tmpfs on `target` in the new root; `top`, when given, gets the
// new mount's root.
int tmpfs(int root, const std::string& target, const std::string& opts, unsigned long flags, UniqueFd* top = nullptr) {
  Found t;
  if (int e = in_root(root, target, Make::Dirs, 0755, t); e) return e;
  if (mount("tmpfs", FdPath(t.fd.get()).s, "tmpfs", flags, opts.c_str()) != 0) return errno;
  return top ? reopen(t, *top) : 0;
}

// An existing path in the new root masked by an empty read-only mount:
// ENOENT when it is not there.
int mask(int root, const std::string& path) {
  UniqueFd t;
  if (int e = lookup_in_root(root, path, t); e) return e;
  struct stat st {};
  if (fstat(t.get(), &st) != 0) return errno;
  int rc = S_ISDIR(st.st_mode)
               ? mount("tmpfs", FdPath(t.get()).s, "tmpfs", kSafe | MS_NOEXEC | MS_RDONLY, "size=0,mode=0555")
               : mount("/dev/null", FdPath(t.get()).s, nullptr, MS_BIND, nullptr);
  return rc == 0 ? 0 : errno;
}

int symlink_in_root(int root, const std::string& path, const std::string& target) {
  UniqueFd dir;
  std::string name;
  if (int e = parent_in_root(root, path, dir, name); e) return e;
  return symlinkat(target.c_str(), dir.get(), name.c_str()) == 0 ? 0 : errno;
}

// /proc: a fresh instance for the job's pid namespace (it shows only the
// job's processes), with the kernel-tuning and information-leaking parts
// read-only or masked.
int build_proc(int root) {
  Found p;
  if (int e = in_root(root, "/proc", Make::Dirs, 0555, p); e) return e;
  if (mount("proc", FdPath(p.fd.get()).s, "proc", kSafe | MS_NOEXEC, nullptr) != 0) return errno;
  for (const char* ro : {"sys", "sysrq-trigger", "irq", "bus", "fs"}) {
    const std::string t = std::string("/proc/") + ro;
    UniqueFd f;
    int e = lookup_in_root(root, t, f);
    if (e == ENOENT) continue;
    if (e) return e;
    struct stat st {};
    if (fstat(f.get(), &st) != 0) return errno;
    if ((e = bind(root, FdPath(f.get()).s, t, S_ISDIR(st.st_mode), false, kSafe | MS_NOEXEC)) != 0) return e;
  }
  for (const char* masked : {"kcore", "keys", "key-users", "timer_list", "sched_debug", "latency_stats", "kmsg",
                             "kallsyms", "kpagecount", "kpageflags", "kpagecgroup", "acpi", "scsi", "config.gz"})
    if (int e = mask(root, std::string("/proc/") + masked); e && e != ENOENT) return e;
  return 0;
}

// /dev: only harmless nodes. A private devpts instance, so the job's ptys
// are not the operator's.
int build_dev(int root, uint64_t shm_bytes) {
  UniqueFd dev;
  if (int e = tmpfs(root, "/dev", "mode=0755,size=64k,nr_inodes=64", MS_NOSUID | MS_NOEXEC, &dev); e) return e;
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"})
    if (int e = bind(root, std::string("/dev/") + node, std::string("/dev/") + node, false, true, MS_NOSUID | MS_NOEXEC);
        e)
      return e;
  {
    Found pts;
    if (int e = in_root(root, "/dev/pts", Make::Dirs, 0755, pts); e) return e;
    if (mount("devpts", FdPath(pts.fd.get()).s, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") != 0)
      return errno;
  }
  if (symlinkat("pts/ptmx", dev.get(), "ptmx") != 0) return errno;
  if (int e = tmpfs(root, "/dev/shm", "mode=1777,size=" + std::to_string(shm_bytes), kSafe); e) return e;
  const char* links[][2] = {{"/proc/self/fd", "fd"},
                            {"/proc/self/fd/0", "stdin"},
                            {"/proc/self/fd/1", "stdout"},
                            {"/proc/self/fd/2", "stderr"}};
  for (auto& l : links)
    if (symlinkat(l[0], dev.get(), l[1]) != 0) return errno;
  return mount(nullptr, FdPath(dev.get()).s, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
               nullptr) == 0
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
  // the skeleton but never change it. root_dir itself is the broker's
  // (a root-owned folder it just made), so it is the one path taken as is.
  step = "root tmpfs";
  if (mount("tmpfs", r.c_str(), "tmpfs", kSafe, "mode=0755,size=16m,nr_inodes=8192") != 0) return errno;
  UniqueFd root_fd(open(r.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root_fd.get() < 0) return errno;
  const int root = root_fd.get();

  // Overlay mode: the upper layers' tmpfs first, and the job's own,
  // writable /etc and /var bound from it before anything lands there.
  // (overlay.cpp makes its staging folder by path: the root tmpfs is still
  // empty then, so nothing in it can be a link.)
  OverlayStage stage;
  if (plan.overlay_root) {
    step = "overlay upper layer";
    if (int e = overlay_stage_open(plan, stage); e) return e;
    step = "overlay /etc and /var";
    for (const char* dir : {"/etc", "/var"})
      if (int e = bind(root, stage.dir + dir, dir, true, true, kSafe); e) return e;
    // Package managers log here; the host's logs are not the job's.
    for (const char* dir : {"/var/log", "/var/log/apt", "/var/lib", "/var/cache"}) {
      UniqueFd d;
      if (int e = dir_in_root(root, dir, Make::Dirs, 0755, d); e) return e;
    }
  }

  step = "links";
  for (const auto& [path, target] : plan.links)
    if (int e = symlink_in_root(root, path, target); e) return e;
  step = "/etc files";
  {
    UniqueFd etc;
    if (int e = dir_in_root(root, "/etc", Make::Dirs, 0755, etc); e) return e;
    for (const auto& f : plan.etc_files) {
      if (f.name.find('/') == std::string::npos) {  // most: straight into /etc
        if (int e = write_file_at(etc.get(), f.name, f.content, 0644); e) return e;
        continue;
      }
      UniqueFd dir;
      std::string name;
      if (int e = parent_in_root(root, "/etc/" + f.name, dir, name); e) return e;
      if (int e = write_file_at(dir.get(), name, f.content, 0644); e) return e;
    }
  }

  step = "home, /tmp and /var";
  const std::string ids = ",uid=" + std::to_string(plan.job_uid) + ",gid=" + std::to_string(plan.job_gid);
  if (int e = tmpfs(root, plan.home, "mode=0750,size=" + std::to_string(plan.home_bytes) + ids, kSafe); e) return e;
  if (int e = tmpfs(root, "/tmp", "mode=1777,size=" + std::to_string(plan.tmp_bytes), kSafe); e) return e;
  {
    UniqueFd var;
    if (int e = dir_in_root(root, "/var", Make::Dirs, 0755, var); e) return e;
    if (symlinkat("/tmp", var.get(), "tmp") != 0) return errno;
  }

  // Binds in the order of where they land, parents before children: the
  // broker sorted them by the paths it named, but a link can put one
  // inside another (/var/tmp/x is /tmp/x; /bin/x is /usr/bin/x on
  // merged-/usr hosts, which must come after /usr is mounted).
  std::vector<std::pair<std::string, size_t>> order;
  for (size_t i = 0; i < plan.binds.size(); ++i) order.emplace_back(landing(plan, plan.binds[i].target), i);
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<struct stat> mounted(plan.binds.size());
  for (const auto& [where, i] : order) {
    const Bind& b = plan.binds[i];
    if (plan.overlay_root && b.is_dir && !b.writable && b.host == b.target && is_overlay_tree(b.host)) {
      step = "overlay " + b.host;
      Found t;
      if (int e = in_root(root, b.target, Make::Dirs, 0755, t); e) return e;
      // The host mount's noexec (and the like) carries over, as a bind
      // remount would keep it.
      if (int e = overlay_tree(stage, b.host, FdPath(t.fd.get()).s, kSafe | locked_flags(b.host)); e) return e;
      UniqueFd top;
      if (int e = reopen(t, top); e) return e;
      if (fstat(top.get(), &mounted[i]) != 0) return errno;
      continue;
    }
    step = "bind " + b.target;
    if (int e = bind(root, b.host, b.target, b.is_dir, b.writable, kSafe, &mounted[i]); e) return e;
  }
  // Every bind must still be what its path leads to: a job never runs
  // with a mount the plan names (its workspace above all) covered by
  // another one.
  for (size_t i = 0; i < plan.binds.size(); ++i) {
    step = "bind " + plan.binds[i].target + " (covered by a later mount)";
    UniqueFd now;
    struct stat st {};
    if (int e = lookup_in_root(root, plan.binds[i].target, now); e) return e;
    if (fstat(now.get(), &st) != 0) return errno;
    if (st.st_dev != mounted[i].st_dev || st.st_ino != mounted[i].st_ino) return EXDEV;
  }

  step = "/proc";
  if (int e = build_proc(root); e) return e;
  step = "/dev";
  if (int e = build_dev(root, plan.shm_bytes); e) return e;

  step = "hidden paths";
  for (const auto& h : plan.hidden)
    if (int e = mask(root, h); e && e != ENOENT && e != ENOTDIR) return e;
  step = "/run/secrets";
  if (int e = mount_secrets(plan); e) return e;
  if (plan.overlay_root) {
    step = "overlay staging detach";
    if (int e = overlay_stage_close(stage); e) return e;
  }
  // Last: the skeleton itself becomes read-only (/, /run, the mount
  // points); only the tmpfs, the overlays and writable binds stay writable.
  step = "read-only root";
  if (mount(nullptr, FdPath(root).s, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | kSafe, nullptr) != 0) return errno;
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

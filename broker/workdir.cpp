// Per-job directories under the work root:
//
//   <work_root>/                     root, 0711: nobody lists other jobs
//     <uid>-<job>-<random>/          root, 0711
//       root/                        root, 0755: the job's new root is mounted here
//       workspace/                   job uid, 0700: the job's working directory
//       checkout/                    job uid, 0700: checkout staging, bound read-only
//
// The uid prefix ties a directory to the uid lock of the job that made it,
// which is how leftovers of a crashed run are told from a running job's.
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "broker/broker.hpp"
#include "common/unique_fd.hpp"
#include "sandbox/cgroup.hpp"

namespace gh::broker {

namespace {

std::string safe_name(const std::string& s) {
  std::string out;
  for (char c : s) out += (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.') ? c : '_';
  if (out.size() > 40) out.resize(40);
  return out.empty() ? "job" : out;
}

std::string random_suffix() {
  unsigned char b[6];
  if (getrandom(b, sizeof b, 0) != sizeof b) return "000000";
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452  // Linux 6.6; the same number on every architecture
#endif

// chmod of exactly the object an O_PATH fd holds (fchmod refuses O_PATH
// fds): fchmodat2(AT_EMPTY_PATH) where the kernel has it, else chmod on
// the fd's /proc/self/fd link, which names the fd's object and cannot be
// redirected by a rename or a symlink planted meanwhile.
int chmod_fd(int fd, mode_t mode) {
  if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0) return 0;
  if (errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) return errno;
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  return chmod(link.c_str(), mode) == 0 ? 0 : errno;
}

// Takes an entry back for root and removes it, relative to an open parent.
// Everything below the work root goes through fds: the entry is opened
// O_PATH|O_NOFOLLOW once, and only that fd is checked, chowned, chmodded
// and listed. A directory swapped for a symlink at any moment (by a
// container that outlived the job, or anything else that can still write
// there) is at worst unlinked as a link; no call ever follows it.
Status remove_at(int parent, const char* name) {
  UniqueFd obj(openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (obj.get() < 0) return errno == ENOENT ? ok_status() : err(std::string("open ") + name + ": " + strerror(errno));
  struct stat st {};
  if (fstat(obj.get(), &st) != 0) return err(std::string("stat ") + name + ": " + strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    // unlinkat removes whatever has the name now; a directory swapped in
    // meanwhile fails with EISDIR (and is left to the next sweep).
    if (unlinkat(parent, name, 0) != 0 && errno != ENOENT) return err(std::string("unlink ") + name + ": " + strerror(errno));
    return ok_status();
  }
  // The directory may be 0700 and owned by the job uid: chown it to root
  // first (CAP_CHOWN), then give the owner search rights (as its owner
  // now), then enter it: all three on the fd opened above.
  if (fchownat(obj.get(), "", 0, 0, AT_EMPTY_PATH) != 0) return err(std::string("chown ") + name + ": " + strerror(errno));
  if (int e = chmod_fd(obj.get(), 0700); e) return err(std::string("chmod ") + name + ": " + strerror(e));
  int fd = openat(obj.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return err(std::string("open ") + name + ": " + strerror(errno));
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return err(strerror(errno));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  Status result = ok_status();
  for (auto& n : names)
    if (auto s = remove_at(dirfd(d), n.c_str()); !s && result) result = s;
  closedir(d);
  if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && result) result = err(std::string("rmdir ") + name + ": " + strerror(errno));
  return result;
}

// A folder made relative to an open parent and set up through its own fd:
// the name is looked up once, by mkdirat, and never again.
Result<UniqueFd> mkdir_owned(int parent, const std::string& name, const std::string& shown, mode_t mode, uid_t uid,
                             gid_t gid) {
  if (mkdirat(parent, name.c_str(), mode) != 0) return err("mkdir " + shown + ": " + strerror(errno));
  UniqueFd fd(openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return err("open " + shown + ": " + strerror(errno));
  if (fchown(fd.get(), uid, gid) != 0) return err("chown " + shown + ": " + strerror(errno));
  if (fchmod(fd.get(), mode) != 0) return err("chmod " + shown + ": " + strerror(errno));
  return fd;
}

// The work root, made if missing (root, 0711), as a directory fd.
Result<UniqueFd> open_work_root(const std::string& work_root) {
  if (work_root.empty() || work_root[0] != '/') return err("the work root must be an absolute path, not '" + work_root + "'");
  for (size_t i = 1; i <= work_root.size(); ++i)
    if (i == work_root.size() || work_root[i] == '/')
      if (mkdir(work_root.substr(0, i).c_str(), 0711) != 0 && errno != EEXIST)
        return err("cannot create the work root " + work_root + ": " + strerror(errno));
  UniqueFd fd(open(work_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return err("cannot open the work root " + work_root + ": " + strerror(errno));
  return fd;
}

std::string mode_text(mode_t m) {
  char b[8];
  snprintf(b, sizeof b, "%04o", static_cast<unsigned>(m & 07777));
  return b;
}

const char* kChooseAnother = "or choose another work root (runner.working_directory for `gatehouse serve`, --work-root "
                             "for `gatehouse run`) whose every folder is root's, not writable by others, and has o+x";

// One folder on the way to the work root, or the work root itself. A job's
// sandbox is set up under the job's uid, which must pass through every
// folder above its own (search permission for "others": the pool's uids
// are no folder's owner or group); and only root may change those
// folders, or someone could move the work root (and the jobs' folders)
// away under the broker. A sticky folder (/tmp) is fine above the work
// root: only its entries' owners, root here, may rename or remove them.
Status check_folder(const std::string& work_root, const std::string& dir, const struct stat& st, bool is_work_root) {
  const std::string what = is_work_root ? "the work root " + dir : "the work root " + work_root + " is under " + dir + ", which";
  const std::string shown = " (mode " + mode_text(st.st_mode) + ", owner " +
                            (st.st_uid == 0 ? std::string("root") : "uid " + std::to_string(st.st_uid)) + ")";
  if (!S_ISDIR(st.st_mode)) return err(what + " is not a folder; " + kChooseAnother);
  if (st.st_uid != 0)
    return err(what + shown + " belongs to a user other than root, who could swap the jobs' folders under the "
               "broker. Run `chown root: " + dir + "`, " + kChooseAnother);
  const bool sticky_parent = !is_work_root && (st.st_mode & S_ISVTX);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_parent)
    return err(what + shown + " can be written by users other than root, who could swap the jobs' folders under the "
               "broker. Run `chmod go-w " + dir + "`, " + kChooseAnother);
  if (!(st.st_mode & S_IXOTH))
    return err(what + shown + " cannot be passed through by the jobs' uids (no search permission for others): every "
               "job would fail while its sandbox is set up. Run `chmod o+x " + dir + "`, " + kChooseAnother);
  return ok_status();
}

// Every folder from / down to the deepest one of `path` that exists
// (missing ones are made by root, 0711); each is stat()ed, so a symlink is
// judged by what it points to. `last_is_work_root`: `path` is the work
// root itself, not a folder above it.
Status check_chain(const std::string& work_root, const std::string& path, bool last_is_work_root) {
  std::vector<std::string> dirs = {"/"};
  for (size_t i = 1; i < path.size(); ++i)
    if (path[i] == '/') dirs.push_back(path.substr(0, i));
  if (path != "/") dirs.push_back(path);
  for (const std::string& dir : dirs) {
    struct stat st{};
    if (stat(dir.c_str(), &st) != 0) {
      if (errno == ENOENT) return ok_status();
      return err("cannot check " + dir + " on the way to the work root " + work_root + ": " + strerror(errno));
    }
    if (auto s = check_folder(work_root, dir, st, last_is_work_root && dir == path); !s) return s;
  }
  return ok_status();
}

// The work root's way from /, before anything is made there.
Status check_work_root_path(const std::string& work_root) {
  if (work_root.empty() || work_root[0] != '/') return err("the work root must be an absolute path, not '" + work_root + "'");
  if (auto s = check_chain(work_root, work_root, true); !s) return s;
  // And the folders the kernel really passes through, when a symlink on
  // the way leads elsewhere.
  std::string existing = work_root;
  struct stat st{};
  while (existing.size() > 1 && stat(existing.c_str(), &st) != 0)
    existing = existing.substr(0, std::max<size_t>(1, existing.rfind('/')));
  char real[PATH_MAX];
  if (!realpath(existing.c_str(), real)) return err("cannot resolve " + existing + ": " + strerror(errno));
  if (existing != real) return check_chain(work_root, real, existing == work_root);
  return ok_status();
}

struct SweepCtx {
  const std::string* work_root;
};

void sweep_cb(uint32_t uid, void* ctx) { sweep_uid(*static_cast<SweepCtx*>(ctx)->work_root, uid); }

}  // namespace

Status check_work_root_mount(const std::string& work_root) {
  if (auto s = check_work_root_path(work_root); !s) return s;
  auto root = open_work_root(work_root);
  if (!root) return root.error();
  struct statvfs sv {};
  if (fstatvfs(root->get(), &sv) != 0) return err("cannot check the mount of the work root " + work_root + ": " + strerror(errno));
  if ((sv.f_flag & ST_NOSUID) && (sv.f_flag & ST_NODEV)) return ok_status();
  std::string missing = !(sv.f_flag & ST_NOSUID) && !(sv.f_flag & ST_NODEV) ? "nosuid and nodev"
                        : !(sv.f_flag & ST_NOSUID)                           ? "nosuid"
                                                                            : "nodev";
  const std::string& w = work_root;
  return err("the work root " + w + " is on a mount without " + missing +
             ": a setuid file or device node a job (or one of its containers) leaves in its workspace would work "
             "on the host. No job runs until it is fixed. Make it a nosuid,nodev mount of its own: `mount --bind " +
             w + " " + w + " && mount -o remount,bind,nosuid,nodev " + w + "`, and keep it across reboots with the "
             "/etc/fstab line `" + w + " " + w + " none bind,nosuid,nodev 0 0` (scripts/prepare-host makes the "
             "mount for the default work root)");
}

Result<JobDir> create_job_dir(const std::string& work_root, uint32_t host_uid, const std::string& job_name) {
  auto root = open_work_root(work_root);
  if (!root) return root.error();
  JobDir d;
  const std::string name = std::to_string(host_uid) + "-" + safe_name(job_name) + "-" + random_suffix();
  d.path = work_root + "/" + name;
  auto job = mkdir_owned(root->get(), name, d.path, 0711, 0, 0);
  if (!job) return job.error();
  d.root = d.path + "/root";
  d.workspace = d.path + "/workspace";
  d.checkout = d.path + "/checkout";
  if (auto s = mkdir_owned(job->get(), "root", d.root, 0755, 0, 0); !s) return s.error();
  if (auto s = mkdir_owned(job->get(), "workspace", d.workspace, 0700, host_uid, host_uid); !s) return s.error();
  // Root's until stage_checkout hands it to the job uid, whose
  // gatehouse-checkout writer then fills it.
  if (auto s = mkdir_owned(job->get(), "checkout", d.checkout, 0700, 0, 0); !s) return s.error();
  return d;
}

Status remove_tree(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return err("not an absolute path: " + path);
  std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  int pfd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) return err("open " + parent + ": " + strerror(errno));
  Status s = remove_at(pfd, path.substr(slash + 1).c_str());
  close(pfd);
  if (!s) return err("cannot remove " + path + ": " + s.error().message);
  return s;
}

void sweep_uid(const std::string& work_root, uint32_t uid) {
  sandbox::JobCgroup::remove_stale("job-" + std::to_string(uid));
  DIR* d = opendir(work_root.c_str());
  if (!d) return;
  std::vector<std::string> stale;
  const std::string prefix = std::to_string(uid) + "-";
  while (dirent* e = readdir(d))
    if (strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) stale.emplace_back(work_root + "/" + e->d_name);
  closedir(d);
  for (auto& p : stale) (void)remove_tree(p);
}

void sweep_leftovers(const std::string& work_root, const std::string& lock_dir) {
  DIR* d = opendir(work_root.c_str());
  if (!d) return;
  std::vector<uint32_t> uids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    unsigned long uid = strtoul(e->d_name, &end, 10);
    if (end && *end == '-' && uid > 0 && uid < 0xffffffffUL) uids.push_back(static_cast<uint32_t>(uid));
  }
  closedir(d);
  SweepCtx ctx{&work_root};
  for (uint32_t uid : uids) (void)run_if_uid_free(lock_dir, uid, sweep_cb, &ctx);
}

}  // namespace gh::broker

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
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "broker/broker.hpp"
#include "sandbox/cgroup.hpp"

namespace gh::broker {

namespace {

Status mkdir_owned(const std::string& path, mode_t mode, uid_t uid, gid_t gid) {
  if (mkdir(path.c_str(), mode) != 0) return err("mkdir " + path + ": " + strerror(errno));
  if (chown(path.c_str(), uid, gid) != 0) return err("chown " + path + ": " + strerror(errno));
  if (chmod(path.c_str(), mode) != 0) return err("chmod " + path + ": " + strerror(errno));
  return ok_status();
}

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

// Takes an entry back for root, relative to an open parent, without ever
// following a symlink the job planted.
Status remove_at(int parent, const char* name) {
  struct stat st {};
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? ok_status() : err(strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent, name, 0) != 0 && errno != ENOENT) return err(std::string("unlink ") + name + ": " + strerror(errno));
    return ok_status();
  }
  // The directory may be 0700 and owned by the job uid: chown it to root
  // first (CAP_CHOWN), then give the owner search rights, then enter it.
  if (fchownat(parent, name, 0, 0, AT_SYMLINK_NOFOLLOW) != 0) return err(std::string("chown ") + name + ": " + strerror(errno));
  if (fchmodat(parent, name, 0700, 0) != 0) return err(std::string("chmod ") + name + ": " + strerror(errno));
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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

struct SweepCtx {
  const std::string* work_root;
};

void sweep_cb(uint32_t uid, void* ctx) { sweep_uid(*static_cast<SweepCtx*>(ctx)->work_root, uid); }

}  // namespace

Result<JobDir> create_job_dir(const std::string& work_root, uint32_t host_uid, const std::string& job_name) {
  for (size_t i = 1; i <= work_root.size(); ++i)
    if (i == work_root.size() || work_root[i] == '/')
      if (mkdir(work_root.substr(0, i).c_str(), 0711) != 0 && errno != EEXIST)
        return err("cannot create the work root " + work_root + ": " + strerror(errno));
  JobDir d;
  d.path = work_root + "/" + std::to_string(host_uid) + "-" + safe_name(job_name) + "-" + random_suffix();
  if (auto s = mkdir_owned(d.path, 0711, 0, 0); !s) return s.error();
  d.root = d.path + "/root";
  d.workspace = d.path + "/workspace";
  d.checkout = d.path + "/checkout";
  if (auto s = mkdir_owned(d.root, 0755, 0, 0); !s) return s.error();
  if (auto s = mkdir_owned(d.workspace, 0700, host_uid, host_uid); !s) return s.error();
  // Root's until stage_checkout hands it to the job uid, whose
  // gatehouse-checkout writer then fills it.
  if (auto s = mkdir_owned(d.checkout, 0700, 0, 0); !s) return s.error();
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

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "broker/broker.hpp"

namespace gh::broker {

UidLease::UidLease(UidLease&& o) noexcept : uid_(o.uid_), fd_(o.fd_) { o.fd_ = -1; }
UidLease& UidLease::operator=(UidLease&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    uid_ = o.uid_;
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}
UidLease::~UidLease() {
  if (fd_ >= 0) close(fd_);
}

static int open_lock(const std::string& lock_dir, uint32_t uid) {
  std::string path = lock_dir + "/" + std::to_string(uid) + ".lock";
  return open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

static Status ensure_lock_dir(const std::string& lock_dir) {
  for (size_t i = 1; i <= lock_dir.size(); ++i)
    if (i == lock_dir.size() || lock_dir[i] == '/')
      if (mkdir(lock_dir.substr(0, i).c_str(), 0700) != 0 && errno != EEXIST)
        return err("cannot create the uid lock folder " + lock_dir + ": " + strerror(errno));
  return ok_status();
}

// A pool uid that is also a host account (or group) would let the job act
// as that account on the host's files. /etc/passwd and /etc/group are read
// directly: the static broker has no NSS, and pool uids must not be local
// accounts anyway.
static Status check_pool_is_unused(uint32_t first, uint32_t count) {
  for (const char* file : {"/etc/passwd", "/etc/group"}) {
    FILE* f = fopen(file, "re");
    if (!f) continue;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
      // name:x:id:...
      char* p = strchr(line, ':');
      if (!p || !(p = strchr(p + 1, ':'))) continue;
      char* end = nullptr;
      unsigned long id = strtoul(p + 1, &end, 10);
      if (end == p + 1 || *end != ':') continue;
      if (id >= first && id - first < count) {
        fclose(f);
        *strchr(line, ':') = '\0';
        return err("the uid pool [" + std::to_string(first) + ", " + std::to_string(first + count) + ") contains " +
                   std::to_string(id) + ", which " + file + " gives to '" + line +
                   "': choose a uid_pool no host account or group uses");
      }
    }
    fclose(f);
  }
  return ok_status();
}

Result<UidLease> acquire_uid(const std::string& lock_dir, uint32_t first, uint32_t count,
                             void (*on_acquired)(uint32_t, void*), void* ctx) {
  if (auto s = check_pool_is_unused(first, count); !s) return s.error();
  if (auto s = ensure_lock_dir(lock_dir); !s) return s.error();
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t uid = first + i;
    int fd = open_lock(lock_dir, uid);
    if (fd < 0) return err("cannot open the uid lock " + lock_dir + "/" + std::to_string(uid) + ".lock: " + strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (on_acquired) on_acquired(uid, ctx);
      return UidLease(uid, fd);
    }
    close(fd);
  }
  return err("every uid of the pool [" + std::to_string(first) + ", " + std::to_string(first + count) +
             ") is in use by a running job: wait, or give the profile a larger uid_pool");
}

bool run_if_uid_free(const std::string& lock_dir, uint32_t uid, void (*fn)(uint32_t, void*), void* ctx) {
  int fd = open_lock(lock_dir, uid);
  if (fd < 0) return false;
  bool free = flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (free) fn(uid, ctx);
  close(fd);
  return free;
}

}  // namespace gh::broker

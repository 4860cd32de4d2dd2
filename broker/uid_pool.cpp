#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
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
// accounts anyway. Accounts that only NSS knows (LDAP, sssd) are not seen;
// SECURITY.md says so.
static Status check_accounts(uint32_t first, uint32_t count) {
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

// A pool that overlaps a subordinate id range is just as bad: newuidmap
// and newgidmap let the range's owner map those ids into a user namespace
// of theirs, i.e. act as a pool uid (a running job's files and processes).
// Debian's useradd gives every new user 65536 ids from 100000 on, so the
// 28th user's range covers the default pool. Lines are
// `name_or_uid:start:count`; malformed ones are skipped, as shadow's own
// tools skip them.
static Status check_subordinate_ranges(uint32_t first, uint32_t count) {
  for (const char* file : {"/etc/subuid", "/etc/subgid"}) {
    FILE* f = fopen(file, "re");
    if (!f) continue;
    char line[4096];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
      ++lineno;
      // Trailing blanks (and a CR) are dropped: when in doubt, a line
      // counts, so the check errs on the side of refusing.
      size_t len = strcspn(line, "\r\n");
      while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t')) --len;
      line[len] = '\0';
      char* c1 = strchr(line, ':');
      char* c2 = c1 ? strchr(c1 + 1, ':') : nullptr;
      if (!c1 || c1 == line || !c2) continue;
      char *e1 = nullptr, *e2 = nullptr;
      errno = 0;
      unsigned long long start = strtoull(c1 + 1, &e1, 10);
      unsigned long long n = strtoull(c2 + 1, &e2, 10);
      if (errno != 0 || e1 != c2 || e1 == c1 + 1 || e2 == c2 + 1 || *e2 != '\0' || c1[1] == '-' || c2[1] == '-')
        continue;
      if (n == 0 || start >= uint64_t{first} + count || start + n <= first) continue;
      fclose(f);
      *c1 = '\0';
      const std::string range =
          std::to_string(start) + ".." + std::to_string(start + n - 1) + " (" + std::to_string(n) + " ids)";
      return err("the uid pool [" + std::to_string(first) + ", " + std::to_string(first + count) +
                 ") overlaps the subordinate id range " + range + " that " + file + " line " +
                 std::to_string(lineno) + " gives to '" + line + "': newuidmap/newgidmap would let that user act as "
                 "a job's uid. Choose a uid_pool outside every range in /etc/subuid and /etc/subgid, or move that "
                 "user's range (usermod --del-subuids/--add-subuids, --del-subgids/--add-subgids)");
    }
    fclose(f);
  }
  return ok_status();
}

static Status check_pool_is_unused(uint32_t first, uint32_t count) {
  if (auto s = check_accounts(first, count); !s) return s;
  return check_subordinate_ranges(first, count);
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
             ") is in use by a running job: wait, or give the profile a larger uid_pool (an agent with runner.uid_slice "
             "has only its slice of it)");
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

#include "broker/runner_lock.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/unique_fd.hpp"

namespace gh::broker {

namespace {

constexpr size_t kMaxClaimFile = 64 * 1024;

// a is b or lies inside it (both absolute, without trailing slashes).
bool within(const std::string& a, const std::string& b) {
  return a == b || (a.size() > b.size() && a.compare(0, b.size(), b) == 0 && a[b.size()] == '/');
}

std::string trimmed(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string describe(const std::pair<uint32_t, uint32_t>& r) {
  return std::to_string(r.first) + "-" + std::to_string(r.second - 1);
}

nlohmann::json to_json(const HostClaim& c) {
  nlohmann::json pools = nlohmann::json::array();
  for (const auto& [a, b] : c.uid_pools) pools.push_back({a, b});
  return {{"runner", c.runner},
          {"pid", getpid()},
          {"uid_pools", pools},
          {"working_directory", c.working_directory},
          {"spool_directory", c.spool_directory}};
}

// What another live agent's lock file says; an unreadable one is a clash
// too (fail closed: we cannot prove we do not overlap).
Result<HostClaim> read_claim(int fd, const std::string& path) {
  char buf[kMaxClaimFile];
  ssize_t n = pread(fd, buf, sizeof buf, 0);
  if (n <= 0) return err(path + " is held by a live agent but says nothing about it yet");
  auto j = nlohmann::json::parse(std::string_view(buf, static_cast<size_t>(n)), nullptr, false);
  HostClaim c;
  try {
    c.runner = j.at("runner").get<std::string>();
    c.working_directory = j.at("working_directory").get<std::string>();
    c.spool_directory = j.at("spool_directory").get<std::string>();
    for (const auto& p : j.at("uid_pools")) c.uid_pools.emplace_back(p.at(0).get<uint32_t>(), p.at(1).get<uint32_t>());
  } catch (const nlohmann::json::exception&) {
    return err(path + " is held by a live agent but cannot be read; stop that agent or remove the file if none runs");
  }
  return c;
}

std::string clash(const HostClaim& me, const HostClaim& other) {
  const std::string who = "agent `" + other.runner + "`";
  for (const auto& a : me.uid_pools)
    for (const auto& b : other.uid_pools)
      if (a.first < b.second && b.first < a.second)
        return "its uid pool " + describe(a) + " overlaps " + who + "'s " + describe(b) +
               ": give each agent on this host its own runner.uid_slice (the same count, another index), or "
               "policy profiles with disjoint uid_pool ranges";
  for (const auto& [mine, theirs] : {std::pair{me.working_directory, other.working_directory},
                                     std::pair{me.spool_directory, other.spool_directory},
                                     std::pair{me.working_directory, other.spool_directory},
                                     std::pair{me.spool_directory, other.working_directory}})
    if (within(trimmed(mine), trimmed(theirs)) || within(trimmed(theirs), trimmed(mine)))
      return mine + " overlaps " + who + "'s " + theirs + ": give each agent its own runner.working_directory and runner.spool_directory";
  return "";
}

// The lock folder, made if missing, held (flock) while claims are checked
// and written, so two agents starting at once cannot both pass the check.
Result<UniqueFd> lock_folder(const std::string& dir) {
  if (dir.empty() || dir[0] != '/') return err("the runner lock folder must be an absolute path, not `" + dir + "`");
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/')
      if (mkdir(dir.substr(0, i).c_str(), 0755) != 0 && errno != EEXIST)
        return err("cannot make the runner lock folder " + dir.substr(0, i) + ": " + strerror(errno));
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return err("cannot open the runner lock folder " + dir + ": " + strerror(errno));
  struct stat st{};
  if (fstat(fd.get(), &st) != 0) return err("cannot stat the runner lock folder " + dir + ": " + strerror(errno));
  if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return err("the runner lock folder " + dir + " (mode " + mode + ", owner uid " + std::to_string(st.st_uid) +
               ") can be changed by users other than root, who could replace a running agent's lock: run `chown root: " +
               dir + " && chmod 755 " + dir + "`, or set runner.lock_directory to a folder of root's");
  }
  while (flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return err("cannot lock the runner lock folder " + dir + ": " + strerror(errno));
  return fd;
}

// With the folder held: `me` against every lock file a live agent holds
// but ours, then `me` written into ours.
Status check_and_claim(const std::string& dir, int folder, int own_fd, const HostClaim& me) {
  UniqueFd list(openat(folder, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  DIR* d = list.get() < 0 ? nullptr : fdopendir(list.get());
  if (!d) return err("cannot read " + dir + ": " + strerror(errno));
  (void)list.release();
  std::string problem;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (!name.ends_with(".lock") || name == me.runner + ".lock") continue;
    const std::string other = dir + "/" + name;
    int ofd = openat(folder, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (ofd < 0) continue;
    if (flock(ofd, LOCK_SH | LOCK_NB) == 0) {  // nobody holds it: a stopped agent's leftover
      close(ofd);
      continue;
    }
    auto c = read_claim(ofd, other);
    close(ofd);
    if (!c) problem = c.error().message;
    else if (auto why = clash(me, *c); !why.empty()) problem = why;
    if (!problem.empty()) break;
  }
  closedir(d);
  if (!problem.empty()) return err(problem);
  const std::string text = to_json(me).dump() + "\n";
  if (ftruncate(own_fd, 0) != 0 || pwrite(own_fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    return err("cannot write " + dir + "/" + me.runner + ".lock: " + strerror(errno));
  return ok_status();
}

}  // namespace

Result<std::pair<uint32_t, uint32_t>> slice_uid_pool(uint32_t first, uint32_t count, UidSlice s) {
  if (s.count == 0 || s.index >= s.count) return err("runner.uid_slice " + std::to_string(s.index) + " of " +
                                                     std::to_string(s.count) + " is not a slice");
  const uint32_t size = count / s.count;
  if (size == 0)
    return err("a uid pool of " + std::to_string(count) + " uids cannot be split into runner.uid_slice.count " +
               std::to_string(s.count) + " slices");
  return std::pair{first + s.index * size, size};
}

Result<UidRanges> policy_uid_pools(const policy::Policy& p, UidSlice s) {
  UidRanges r;
  for (const auto& prof : p.profiles) {
    auto part = slice_uid_pool(prof.uid_pool.first, prof.uid_pool.count, s);
    if (!part) return err("profile `" + prof.name + "`: " + part.error().message +
                          ": give it a larger uid_pool, or share the host among fewer agents");
    r.emplace_back(part->first, part->first + part->second);
  }
  std::sort(r.begin(), r.end());
  UidRanges merged;
  for (const auto& x : r) {
    if (!merged.empty() && x.first <= merged.back().second) merged.back().second = std::max(merged.back().second, x.second);
    else merged.push_back(x);
  }
  return merged;
}

RunnerLock::~RunnerLock() {
  if (fd_ >= 0) close(fd_);
}

Status RunnerLock::update(const HostClaim& me) {
  if (fd_ < 0) return err("the runner lock is not held");
  auto folder = lock_folder(dir_);
  if (!folder) return folder.error();
  if (auto s = check_and_claim(dir_, folder->get(), fd_, me); !s)
    return err("the new policy would clash with another agent on this host: " + s.error().message);
  return ok_status();
}

Result<RunnerLock> lock_runner(const std::string& dir, const HostClaim& me) {
  auto folder = lock_folder(dir);
  if (!folder) return folder.error();
  const std::string path = dir + "/" + me.runner + ".lock";
  int fd = openat(folder->get(), (me.runner + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return err("cannot open " + path + ": " + strerror(errno));
  RunnerLock lock(fd, dir);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    std::string pid;
    char buf[kMaxClaimFile];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    auto j = nlohmann::json::parse(std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0), nullptr, false);
    if (j.is_object() && j.contains("pid") && j["pid"].is_number_integer()) pid = " (pid " + std::to_string(j["pid"].get<long>()) + ")";
    return err("another agent named `" + me.runner + "` is already running on this host" + pid + "; runner.name must be unique per host (lock " + path + ")");
  }
  if (auto s = check_and_claim(dir, folder->get(), fd, me); !s)
    return err("cannot start beside another agent on this host: " + s.error().message);
  return lock;
}

Result<uint64_t> free_bytes(const std::string& path) {
  struct statvfs s{};
  if (statvfs(path.c_str(), &s) != 0) return err("statvfs " + path + ": " + strerror(errno));
  return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

}  // namespace gh::broker

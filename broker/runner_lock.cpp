#include "broker/runner_lock.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

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
               ": give each agent's policy profiles disjoint uid_pool ranges";
  for (const auto& [mine, theirs] : {std::pair{me.working_directory, other.working_directory},
                                     std::pair{me.spool_directory, other.spool_directory},
                                     std::pair{me.working_directory, other.spool_directory},
                                     std::pair{me.spool_directory, other.working_directory}})
    if (within(trimmed(mine), trimmed(theirs)) || within(trimmed(theirs), trimmed(mine)))
      return mine + " overlaps " + who + "'s " + theirs + ": give each agent its own runner.working_directory and runner.spool_directory";
  return "";
}

}  // namespace

std::vector<std::pair<uint32_t, uint32_t>> policy_uid_pools(const policy::Policy& p) {
  std::vector<std::pair<uint32_t, uint32_t>> r;
  for (const auto& prof : p.profiles) r.emplace_back(prof.uid_pool.first, prof.uid_pool.first + prof.uid_pool.count);
  std::sort(r.begin(), r.end());
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  for (const auto& x : r) {
    if (!merged.empty() && x.first <= merged.back().second) merged.back().second = std::max(merged.back().second, x.second);
    else merged.push_back(x);
  }
  return merged;
}

RunnerLock::~RunnerLock() {
  if (fd_ >= 0) close(fd_);
}

Result<RunnerLock> lock_runner(const std::string& dir, const HostClaim& me) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return err("cannot make " + dir + ": " + strerror(errno));
  const std::string path = dir + "/" + me.runner + ".lock";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return err("cannot open " + path + ": " + strerror(errno));
  RunnerLock lock(fd);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    std::string pid;
    char buf[kMaxClaimFile];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    auto j = nlohmann::json::parse(std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0), nullptr, false);
    if (j.is_object() && j.contains("pid") && j["pid"].is_number_integer()) pid = " (pid " + std::to_string(j["pid"].get<long>()) + ")";
    return err("another agent named `" + me.runner + "` is already running on this host" + pid + "; runner.name must be unique per host (lock " + path + ")");
  }
  // Others: every lock file in the folder that a live agent holds.
  DIR* d = opendir(dir.c_str());
  if (!d) return err("cannot read " + dir + ": " + strerror(errno));
  std::string problem;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (!name.ends_with(".lock") || name == me.runner + ".lock") continue;
    const std::string other = dir + "/" + name;
    int ofd = open(other.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
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
  if (!problem.empty()) return err("cannot start beside another agent on this host: " + problem);
  const std::string text = to_json(me).dump() + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    return err("cannot write " + path + ": " + strerror(errno));
  return lock;
}

Result<uint64_t> free_bytes(const std::string& path) {
  struct statvfs s{};
  if (statvfs(path.c_str(), &s) != 0) return err("statvfs " + path + ": " + strerror(errno));
  return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

}  // namespace gh::broker

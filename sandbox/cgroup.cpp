#include "sandbox/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace gh::sandbox {

namespace {

constexpr const char* kBase = "gatehouse";

struct Hierarchies {
  std::string v2;                                         // mount point or empty
  std::vector<std::pair<std::string, std::string>> v1;  // controller -> mount point
};

Hierarchies find_hierarchies() {
  Hierarchies h;
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, type, opts;
  std::string rest;
  while (in >> dev >> dir >> type >> opts) {
    std::getline(in, rest);
    if (type == "cgroup2" && h.v2.empty()) h.v2 = dir;
    if (type != "cgroup") continue;
    std::stringstream ss(opts);
    std::string o;
    while (std::getline(ss, o, ','))
      if (o == "memory" || o == "pids" || o == "cpu" || o == "cpuacct") h.v1.emplace_back(o, dir);
  }
  return h;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_file(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  if (!out) return err("open " + path + ": " + strerror(errno));
  out << value;
  out.flush();
  if (!out) return err("write \"" + value + "\" to " + path + ": " + strerror(errno));
  return ok_status();
}

Status make_dir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return err("mkdir " + path + ": " + strerror(errno));
  return ok_status();
}

bool has_word(const std::string& text, const std::string& word) {
  std::stringstream ss(text);
  std::string w;
  while (ss >> w)
    if (w == word) return true;
  return false;
}

uint64_t read_u64(const std::string& path) {
  std::string s = read_all(path);
  return s.empty() ? 0 : std::strtoull(s.c_str(), nullptr, 10);
}

uint64_t stat_field(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  uint64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

bool procs_empty(const std::string& dir) {
  std::string p = read_all(dir + "/cgroup.procs");
  return p.find_first_not_of(" \n") == std::string::npos;
}

void kill_listed(const std::string& dir) {
  std::stringstream ss(read_all(dir + "/cgroup.procs"));
  pid_t pid;
  while (ss >> pid) kill(pid, SIGKILL);
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Swap is on when /proc/swaps lists anything under its header (no file:
// a kernel without swap support).
bool swap_enabled() {
  std::ifstream in("/proc/swaps");
  int lines = 0;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) ++lines;
  return lines > 1;
}

Status swap_not_limited(const std::string& missing) {
  return err("the job's memory limit cannot cover swap on this host: swap is on, but " + missing +
             " does not exist (the kernel does not account swap per cgroup), so a job could use swap beyond its "
             "limit. No job runs until it is fixed: boot with swapaccount=1 on the kernel command line, use "
             "cgroup v2, or turn swap off (swapoff -a)");
}

// The broker's own cgroup v2 path ("0::/path" in /proc/self/cgroup).
std::string own_v2_path() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return {};
}

// Whether systemd delegated this cgroup (Delegate=yes): since systemd 251
// it marks such a cgroup with the xattr trusted.delegate=1, and also
// user.delegate=1, which a broker without CAP_SYS_ADMIN (the unit's
// bounding set) can read where trusted.* stays hidden. Only a root-owned
// cgroup counts: one a user owns (their user@.service tree) would let
// that user move a job's processes out of its limits.
bool delegated(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0) return false;
  for (const char* name : {"trusted.delegate", "user.delegate"}) {
    char v[4];
    ssize_t n = getxattr(dir.c_str(), name, v, sizeof v);
    if (n == 1 && v[0] == '1') return true;
  }
  return false;
}

constexpr const char* kBrokerLeaf = "broker";
constexpr const char* kJobsDir = "jobs";

// The delegated cgroup job groups go under, or "": the broker's own, or
// its parent when an earlier run already moved the broker into the
// `broker` leaf (it is inherited by every later `gatehouse run`).
std::string delegated_dir(const std::string& v2) {
  std::string own = own_v2_path();
  if (own.empty() || own == "/") return {};
  if (delegated(v2 + own)) return v2 + own;
  const std::string leaf = std::string("/") + kBrokerLeaf;
  if (own.size() > leaf.size() && own.compare(own.size() - leaf.size(), leaf.size(), leaf) == 0) {
    std::string parent = own.substr(0, own.size() - leaf.size());
    if (delegated(v2 + parent)) return v2 + parent;
  }
  return {};
}

// cgroup v2 allows no processes in a cgroup that enables controllers for
// its children: everything in the delegated cgroup (this broker, and the
// service's other processes) moves to its `broker` leaf first.
Status move_into_leaf(const std::string& dir) {
  const std::string leaf = dir + "/" + kBrokerLeaf;
  if (mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) return err("mkdir " + leaf + ": " + strerror(errno));
  for (int round = 0; round < 20 && !procs_empty(dir); ++round) {
    std::stringstream ss(read_all(dir + "/cgroup.procs"));
    for (pid_t pid; ss >> pid;) {
      int fd = open((leaf + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return err("open " + leaf + "/cgroup.procs: " + strerror(errno));
      const std::string p = std::to_string(pid);
      bool moved = write(fd, p.data(), p.size()) == static_cast<ssize_t>(p.size()) || errno == ESRCH;
      int e = errno;
      close(fd);
      if (!moved) return err("move process " + p + " from " + dir + " into " + leaf + ": " + strerror(e));
    }
  }
  if (!procs_empty(dir)) return err("processes keep appearing in " + dir + "; cannot move them all into " + leaf);
  return ok_status();
}

}  // namespace

pid_t prime_cgroup_migration() {
  // Which hierarchy does not matter (the lock is global); the first v1
  // controller, else the v2 mount.
  Hierarchies h = find_hierarchies();
  std::string mount = !h.v1.empty() ? h.v1.front().second : h.v2;
  std::string ctl = !h.v1.empty() ? h.v1.front().first : std::string();
  if (mount.empty()) return -1;
  std::string rel;
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    // "N:controllers:/path" (v1) or "0::/path" (v2)
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctls = line.substr(a + 1, b - a - 1);
    bool match = ctl.empty() ? ctls.empty() : ("," + ctls + ",").find("," + ctl + ",") != std::string::npos;
    if (match) rel = line.substr(b + 1);
  }
  if (rel.empty()) return -1;
  const std::string procs = mount + rel + "/cgroup.procs";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      (void)!write(fd, "0", 1);  // "0": the writer itself, into its own cgroup
      close(fd);
    }
    _exit(0);
  }
  return pid;
}

void reap_primer(pid_t pid) {
  if (pid > 0) waitpid(pid, nullptr, 0);
}

Result<JobCgroup> JobCgroup::create(const std::string& name, const CgroupLimits& limits) {
  Hierarchies h = find_hierarchies();
  if (h.v2.empty() && h.v1.empty())
    return err("no cgroup hierarchy is mounted: jobs cannot be limited, so none will run (mount cgroup2 on /sys/fs/cgroup)");
  JobCgroup cg;

  if (!h.v2.empty()) {
    // Job groups go under the broker's delegated cgroup when systemd gave
    // it one (packaging/gatehouse-broker.service: Delegate=yes), else under
    // the hierarchy's root. remove_stale looks in both places.
    const std::string del = delegated_dir(h.v2);
    const std::string parent = del.empty() ? h.v2 : del;
    const std::string base = del.empty() ? h.v2 + "/" + kBase : del + "/" + kJobsDir;
    if (!del.empty())
      if (auto s = move_into_leaf(del); !s) return s.error();
    const bool v2_has_all = [&] {
      std::string c = read_all(parent + "/cgroup.controllers");
      return has_word(c, "memory") && has_word(c, "pids") && has_word(c, "cpu");
    }();
    if (auto s = make_dir(base); !s) return s.error();
    if (v2_has_all) {
      // Controllers must be enabled top-down before a child can use them.
      std::string parent_ctl = read_all(parent + "/cgroup.subtree_control");
      for (const char* c : {"memory", "pids", "cpu"})
        if (!has_word(parent_ctl, c))
          if (auto s = write_file(parent + "/cgroup.subtree_control", std::string("+") + c); !s) return s.error();
      if (auto s = write_file(base + "/cgroup.subtree_control", "+memory +pids +cpu"); !s) return s.error();
    }
    cg.v2_ = base + "/" + name;
    if (auto s = make_dir(cg.v2_); !s) return s.error();
    cg.unified_ = v2_has_all;
  }

  if (cg.unified_) {
    const std::string& d = cg.v2_;
    if (auto s = write_file(d + "/memory.max", limits.memory_bytes ? std::to_string(limits.memory_bytes) : "max"); !s) return s.error();
    // No swap: the memory limit must be the whole budget. Fail closed
    // where it cannot be, rather than run a job that can swap the host.
    if (exists(d + "/memory.swap.max")) {
      if (auto s = write_file(d + "/memory.swap.max", "0"); !s) return s.error();
    } else if (limits.memory_bytes && swap_enabled()) {
      return swap_not_limited(d + "/memory.swap.max").error();
    }
    if (auto s = write_file(d + "/pids.max", std::to_string(limits.pids)); !s) return s.error();
    auto quota = static_cast<uint64_t>(limits.cpus * 100000.0);
    if (auto s = write_file(d + "/cpu.max", std::to_string(quota) + " 100000"); !s) return s.error();
    return cg;
  }

  auto v1_dir = [&](const char* ctl) -> std::string {
    for (auto& [c, m] : h.v1)
      if (c == ctl) return m;
    return {};
  };
  for (const char* ctl : {"memory", "pids", "cpu", "cpuacct"}) {
    std::string mount = v1_dir(ctl);
    if (mount.empty())
      return err(std::string("the ") + ctl +
                 " controller is in neither cgroup v2 nor v1 on this host: jobs cannot be limited, so none will run");
    bool seen = false;
    for (auto& [c, d] : cg.v1_)
      if (d.rfind(mount + "/", 0) == 0) seen = true;  // cpu,cpuacct co-mounted
    std::string dir = mount + "/" + kBase + "/" + name;
    if (auto s = make_dir(mount + "/" + kBase); !s) return s.error();
    if (auto s = make_dir(dir); !s) return s.error();
    if (!seen || std::string(ctl) != "cpuacct") cg.v1_.emplace_back(ctl, dir);
  }
  for (auto& [c, d] : cg.v1_) {
    Status s = ok_status();
    if (c == "memory") {
      const std::string limit = limits.memory_bytes ? std::to_string(limits.memory_bytes) : "-1";
      s = write_file(d + "/memory.limit_in_bytes", limit);
      // memory.limit_in_bytes leaves swap out: memsw (memory + swap) gets
      // the same limit, written after it (the kernel wants memsw >= it).
      if (s && exists(d + "/memory.memsw.limit_in_bytes"))
        s = write_file(d + "/memory.memsw.limit_in_bytes", limit);
      else if (s && limits.memory_bytes && swap_enabled())
        s = swap_not_limited(d + "/memory.memsw.limit_in_bytes");
      (void)write_file(d + "/memory.max_usage_in_bytes", "0");  // reset peak for a reused name
    } else if (c == "pids") {
      s = write_file(d + "/pids.max", std::to_string(limits.pids));
    } else if (c == "cpu") {
      s = write_file(d + "/cpu.cfs_period_us", "100000");
      if (s) s = write_file(d + "/cpu.cfs_quota_us", std::to_string(static_cast<uint64_t>(limits.cpus * 100000.0)));
    }
    if (!s) return s.error();
  }
  return cg;
}

Status JobCgroup::attach(pid_t pid) const {
  const std::string p = std::to_string(pid);
  if (!v2_.empty())
    if (auto s = write_file(v2_ + "/cgroup.procs", p); !s) return s;
  for (auto& [c, d] : v1_)
    if (auto s = write_file(d + "/cgroup.procs", p); !s) return s;
  return ok_status();
}

void JobCgroup::kill_all() const {
  // cgroup.kill is atomic against forks racing the kill; the v1 loop is the
  // fallback for kernels without it and repeats until the group is empty.
  bool have_kill = !v2_.empty() && access((v2_ + "/cgroup.kill").c_str(), W_OK) == 0;
  std::string probe = !v2_.empty() ? v2_ : (v1_.empty() ? std::string() : v1_.front().second);
  if (probe.empty()) return;
  for (int i = 0; i < 550; ++i) {
    if (procs_empty(probe)) {
      bool all = true;
      for (auto& [c, d] : v1_) all = all && procs_empty(d);
      if (all) return;
    }
    if (have_kill) (void)write_file(v2_ + "/cgroup.kill", "1");
    else
      for (auto& [c, d] : v1_) kill_listed(d);
    std::this_thread::sleep_for(std::chrono::milliseconds(i < 50 ? 1 : 10));
  }
}

uint64_t JobCgroup::peak_memory_bytes() const {
  if (unified_) return read_u64(v2_ + "/memory.peak");
  for (auto& [c, d] : v1_)
    if (c == "memory") return read_u64(d + "/memory.max_usage_in_bytes");
  return 0;
}

uint64_t JobCgroup::cpu_usec() const {
  if (unified_) return stat_field(v2_ + "/cpu.stat", "usage_usec");
  for (auto& [c, d] : v1_)
    if (c == "cpuacct" || (c == "cpu" && access((d + "/cpuacct.usage").c_str(), R_OK) == 0))
      return read_u64(d + "/cpuacct.usage") / 1000;
  return 0;
}

bool JobCgroup::oom_killed() const {
  if (unified_) return stat_field(v2_ + "/memory.events", "oom_kill") > 0;
  for (auto& [c, d] : v1_)
    if (c == "memory") return stat_field(d + "/memory.oom_control", "oom_kill") > 0;
  return false;
}

bool JobCgroup::pids_limit_hit() const {
  if (unified_) return stat_field(v2_ + "/pids.events", "max") > 0;
  for (auto& [c, d] : v1_)
    if (c == "pids") return stat_field(d + "/pids.events", "max") > 0;
  return false;
}

void JobCgroup::remove() const {
  kill_all();
  for (int i = 0; i < 150; ++i) {
    bool left = false;
    if (!v2_.empty() && rmdir(v2_.c_str()) != 0 && errno != ENOENT) left = true;
    for (auto& [c, d] : v1_)
      if (rmdir(d.c_str()) != 0 && errno != ENOENT) left = true;
    if (!left) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(i < 50 ? 1 : 10));
  }
}

void JobCgroup::remove_stale(const std::string& name) {
  Hierarchies h = find_hierarchies();
  JobCgroup cg;
  if (!h.v2.empty()) {
    // A job group may sit in either place create() uses.
    const std::string del = delegated_dir(h.v2);
    const std::string places[] = {h.v2 + "/" + kBase + "/" + name,
                                  del.empty() ? std::string() : del + "/" + kJobsDir + "/" + name};
    for (const std::string& d : places)
      if (!d.empty() && exists(d)) {
        if (cg.v2_.empty()) {
          cg.v2_ = d;
        } else {
          JobCgroup other;
          other.v2_ = d;
          other.remove();
        }
      }
  }
  for (auto& [c, m] : h.v1) {
    std::string d = m + "/" + kBase + "/" + name;
    if (exists(d)) cg.v1_.emplace_back(c, d);
  }
  cg.remove();
}

std::string JobCgroup::describe() const {
  if (unified_) return "cgroup v2 (" + v2_ + ")";
  std::string s = v2_.empty() ? "cgroup v1" : "cgroup v2 grouping + v1";
  for (auto& [c, d] : v1_) s += " " + c;
  return s;
}

}  // namespace gh::sandbox

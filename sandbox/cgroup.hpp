// The job's cgroup: limits (memory, pids, cpu), accounting (peak memory,
// CPU time) and the kill switch that ends the whole job as a unit,
// background steps and double-forked daemons included.
//
// cgroup v2 first: when the unified hierarchy has the memory, pids and cpu
// controllers, everything happens there. Otherwise (hosts that still bind
// controllers to v1, like the machines this was built on) the job gets a v2
// group for grouping and cgroup.kill plus one v1 group per controller. A
// controller that is in neither hierarchy fails the job: limits are never
// silently skipped, and neither is swap (the memory limit covers it, or
// the job does not run while swap is on).
//
// Where the groups live: on v2, <own>/jobs/<name> when the broker's own
// cgroup was delegated to it by systemd (Delegate=yes marks it with the
// xattr trusted.delegate, and user.delegate, = 1; the broker then moves
// the cgroup's processes into the leaf <own>/broker, as v2 allows no
// processes beside child groups with controllers), else
// <v2 root>/gatehouse/<name>. v1 controller groups are always
// <v1 mount>/gatehouse/<name>.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace gh::sandbox {

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // 0: no limit (policy `memory: unlimited`)
  uint64_t pids = 0;
  double cpus = 0;
};

// Moving a process between cgroups waits for an RCU grace period (~10ms on
// the machines this was measured on) unless the hierarchy is mounted with
// favordynmods; the first migration of a burst pays it, those right after
// do not. This forks a short-lived process that "moves" itself into the
// cgroup it is already in, so the grace period runs while the broker parses
// and plans, instead of while the job waits to start. Returns the helper's
// pid (reap it with reap_primer) or -1. It changes no cgroup membership.
pid_t prime_cgroup_migration();
void reap_primer(pid_t pid);

class JobCgroup {
 public:
  // Creates the job's groups (see above) wherever needed and sets limits.
  static Result<JobCgroup> create(const std::string& name, const CgroupLimits& limits);
  // Kills and removes what a crashed run left under that name, in either
  // v2 place.
  static void remove_stale(const std::string& name);

  Status attach(pid_t pid) const;
  // SIGKILL to every process in the group, then wait until it is empty.
  void kill_all() const;
  uint64_t peak_memory_bytes() const;
  uint64_t cpu_usec() const;
  bool oom_killed() const;
  bool pids_limit_hit() const;  // a fork was refused by the pids limit
  void remove() const;
  std::string describe() const;  // "v2" or "v2 grouping + v1 memory,pids,cpu"

 private:
  std::string v2_;                                        // grouping (and controllers when unified)
  bool unified_ = false;                                  // controllers in v2
  std::vector<std::pair<std::string, std::string>> v1_;  // controller -> dir
};

}  // namespace gh::sandbox

// Several agents on one host: each holds a lock named after its runner
// name, and the lock file says which uid ranges and folders the agent uses,
// so the next agent can refuse to start on a clash instead of sharing job
// uids or spool folders with it.
//
// Agents that share one policy file share its uid pools; each takes its own
// slice of every pool (runner.uid_slice, docs/agent.md): the pool split in
// `count` equal runs, and the agent's jobs lease uids only from run
// `index`. Slices are the operator's, not handed out here: an agent must
// keep its uids across restarts, because a crashed job's leftovers (its
// folder under that agent's working directory, its cgroup) are swept only
// by the agent whose uid lease finds them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "policy/policy.hpp"

namespace gh::broker {

using UidRanges = std::vector<std::pair<uint32_t, uint32_t>>;  // [first, first+count), sorted, disjoint

struct UidSlice {
  uint32_t index = 0;
  uint32_t count = 1;  // 1: the whole pool
};

struct HostClaim {
  std::string runner;
  UidRanges uid_pools;
  std::string working_directory;
  std::string spool_directory;
};

// The part of the pool [first, first+count) that `s` leases from, as
// (first, count): the pool split into s.count runs of count / s.count uids
// (the remainder at the end is not used), run number s.index. An error
// when the pool has fewer uids than slices.
Result<std::pair<uint32_t, uint32_t>> slice_uid_pool(uint32_t first, uint32_t count, UidSlice s);

// Every profile's pool of the policy, sliced, merged. Errors name the
// profile whose pool is too small for the slices.
Result<UidRanges> policy_uid_pools(const policy::Policy& p, UidSlice s);

class RunnerLock {
 public:
  RunnerLock() = default;
  RunnerLock(RunnerLock&& o) noexcept : fd_(o.fd_), dir_(std::move(o.dir_)) { o.fd_ = -1; }
  RunnerLock& operator=(RunnerLock&&) = delete;
  RunnerLock(const RunnerLock&) = delete;
  ~RunnerLock();

  // `me` again (a policy reload changes the uid pools): checked against
  // every other live agent, and written as this agent's claim only when
  // nothing clashes; on an error the old claim stays.
  Status update(const HostClaim& me);

 private:
  friend Result<RunnerLock> lock_runner(const std::string& dir, const HostClaim& me);
  RunnerLock(int fd, std::string dir) : fd_(fd), dir_(std::move(dir)) {}
  int fd_ = -1;
  std::string dir_;
};

// Takes <dir>/<runner>.lock (flock, held for the agent's life) and checks
// `me` against every other live agent's claim in <dir>. Errors say which
// agent clashes and how. <dir> is made if missing and must be root's and
// writable by nobody else (a lock file others could replace would let a
// second agent of the same name start).
Result<RunnerLock> lock_runner(const std::string& dir, const HostClaim& me);

// Free bytes for unprivileged users on the filesystem holding `path`.
Result<uint64_t> free_bytes(const std::string& path);

}  // namespace gh::broker

// Several agents on one host: each holds a lock named after its runner
// name, and the lock file says which uid pools and folders the agent uses,
// so the next agent can refuse to start on a clash instead of sharing job
// uids or spool folders with it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "policy/policy.hpp"

namespace gh::broker {

struct HostClaim {
  std::string runner;
  std::vector<std::pair<uint32_t, uint32_t>> uid_pools;  // [first, first+count)
  std::string working_directory;
  std::string spool_directory;
};

// The uid pools of every profile of the policy, merged.
std::vector<std::pair<uint32_t, uint32_t>> policy_uid_pools(const policy::Policy& p);

class RunnerLock {
 public:
  RunnerLock() = default;
  explicit RunnerLock(int fd) : fd_(fd) {}
  RunnerLock(RunnerLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RunnerLock& operator=(RunnerLock&&) = delete;
  RunnerLock(const RunnerLock&) = delete;
  ~RunnerLock();

 private:
  int fd_ = -1;
};

// Takes <dir>/<runner>.lock (flock, held for the agent's life) and checks
// `me` against every other live agent's claim in <dir>. Errors say which
// agent clashes and how.
Result<RunnerLock> lock_runner(const std::string& dir, const HostClaim& me);

// Free bytes for unprivileged users on the filesystem holding `path`.
Result<uint64_t> free_bytes(const std::string& path);

}  // namespace gh::broker

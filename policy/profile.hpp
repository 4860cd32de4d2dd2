// The sandbox profile: every parameter of the sandbox a job runs in.
// Without --policy the built-in profile below is used: the most restrictive
// useful one. A policy file (`version: 1`, `profiles:`) overrides fields by
// name; the next issue grows this into the full policy language (rules,
// network, docker, secrets), so the shape mirrors docs/policy.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/diagnostics.hpp"

namespace gh::policy {

struct UidPool {
  uint32_t first = 1900000;  // host uids, outside the usual subuid ranges
  uint32_t count = 64;
};

struct JobUser {
  std::string name = "circleci";
  uint32_t uid = 3434;  // inside the job's user namespace (as cimg images)
  uint32_t gid = 3434;
  std::string home = "/home/circleci";
};

struct Filesystem {
  std::vector<std::string> read_only;   // extra host paths bound read-only at the same place
  std::vector<std::string> read_write;  // extra host paths bound read-write (dangerous; flagged)
  std::vector<std::string> hidden;      // paths replaced by an empty read-only mount
  uint64_t tmp_bytes = 1ull << 30;      // tmpfs /tmp size cap
  uint64_t home_bytes = 1ull << 30;     // tmpfs HOME size cap
};

struct Resources {
  uint64_t memory_bytes = 4ull << 30;   // cgroup memory limit
  uint64_t pids = 1024;                 // cgroup pids limit
  double cpus = 2.0;                    // cgroup cpu quota, in CPUs
  uint64_t max_run_time_s = 3 * 3600;   // whole job, wall clock
  uint64_t no_output_timeout_s = 600;   // default per step
  uint64_t open_files = 4096;           // RLIMIT_NOFILE
  uint64_t file_size_bytes = 16ull << 30;  // RLIMIT_FSIZE
};

struct Environment {
  std::vector<std::pair<std::string, std::string>> set;  // fixed values for every job
  std::vector<std::string> pass;  // names passed from the broker's environment
};

struct Profile {
  std::string name = "builtin";
  JobUser user;
  UidPool uid_pool;
  Filesystem filesystem;
  Resources resources;
  Environment environment;
};

inline constexpr size_t kMaxPolicyFileBytes = 1 << 20;

// The built-in profile (no --policy).
Profile builtin_profile();

struct PolicyOutcome {
  std::optional<Profile> profile;  // set only when there are no errors
  Diagnostics diagnostics;
  std::vector<std::string> profiles;  // names defined in the file
};

// Parses a policy file and returns the named profile (default "default"),
// with every field the file leaves out taken from builtin_profile().
PolicyOutcome parse_policy_file(const std::string& path, const std::string& profile_name);
PolicyOutcome parse_policy_text(const std::string& display_path, const std::string& text,
                                const std::string& profile_name);

// Sizes and durations as written in policy files: "512M", "2G", "10m", "1h30m".
std::optional<uint64_t> parse_size(const std::string& s);
std::optional<uint64_t> parse_duration_seconds(const std::string& s);

}  // namespace gh::policy

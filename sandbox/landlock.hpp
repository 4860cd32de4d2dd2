// Landlock: a second, path-based fence that matches the mount plan, applied
// after pivot_root (so paths are the job's view) and before seccomp (the
// landlock syscalls are not in the seccomp allowlist).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gh::sandbox {

struct LandlockRule {
  std::string path;     // path in the job's view (after pivot_root)
  bool write = false;   // create/remove/write beneath path
  bool execute = false; // execute files beneath path
};

struct LandlockPlan {
  std::vector<LandlockRule> rules;
};

// The Landlock ABI version the kernel offers; 0 when it has none.
int landlock_abi_version();

// The scopes (ABI 6: abstract unix sockets, signals) apply_landlock sets
// on a kernel of that ABI, as the ruleset attr's `scoped` mask; 0 below 6.
uint64_t landlock_scopes_for_abi(int abi);

// Restricts the calling thread to the plan. Handles every access right the
// running kernel knows (ABI 1..n), and from ABI 6 both scopes. Returns 0,
// or an errno value: the caller fails closed. A rule whose path does not
// exist is skipped (a plan entry for an optional host path).
int apply_landlock(const LandlockPlan& plan);

}  // namespace gh::sandbox

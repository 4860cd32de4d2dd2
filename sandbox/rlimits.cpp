// rlimits: per-process ceilings that cgroups do not give (core dumps,
// open files, file size). RLIMIT_CORE is 0 so a crashing job never writes
// memory (which might hold what it read) to disk.
#include <sys/resource.h>

#include <cerrno>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

int apply_rlimits(const SandboxPlan& plan) {
  for (const auto& r : plan.rlimits) {
    struct rlimit lim {};
    lim.rlim_cur = static_cast<rlim_t>(r.soft);
    lim.rlim_max = static_cast<rlim_t>(r.hard);
    if (setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) != 0) return errno;
  }
  return 0;
}

}  // namespace gh::sandbox

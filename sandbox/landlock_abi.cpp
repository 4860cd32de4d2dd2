// The Landlock ABI version, for the broker (the job header and the audit
// record say which one a job ran under) without the rest of landlock.cpp,
// which only gatehouse-sandbox and the agent link.
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/landlock.hpp"
#include "sandbox/landlock_sys.hpp"

namespace gh::sandbox {

int landlock_abi_version() {
  long v = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return v > 0 ? static_cast<int>(v) : 0;
}

}  // namespace gh::sandbox

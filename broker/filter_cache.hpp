// A cache of compiled seccomp programs. Compiling the filter with
// libseccomp takes several milliseconds (hundreds of rules, argument
// checks expanded into disjoint cubes), which dominated `gatehouse run`'s
// start-up. The compiled BPF depends only on the options, the libseccomp
// version and the gatehouse binary itself, so it is kept in a root-only
// folder under /run keyed by all three: an upgraded binary or library
// never reads an old program.
#pragma once

#include <string>

#include "common/result.hpp"
#include "sandbox/seccomp.hpp"

namespace gh::broker {

// Returns the compiled program for opts, from the cache when a valid entry
// exists, else compiled now and stored (a failure to store is not an error:
// the cache only saves time).
Result<sandbox::SeccompProgram> cached_seccomp(const sandbox::SeccompOptions& opts, const std::string& cache_dir);

}  // namespace gh::broker

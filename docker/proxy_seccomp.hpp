#pragma once

#include "common/result.hpp"

namespace gh::docker {

// Loads the proxy's seccomp filter for the whole process (fail closed: the
// caller exits when this fails).
Status confine_proxy();

}  // namespace gh::docker

// The sandbox plan as the broker hands it to gatehouse-sandbox: encoded
// (ipc/codec.hpp) into a sealed memfd the clone child passes on at fd 6.
// The entry decodes it with every bound before it builds anything; a plan
// that does not decode builds nothing.
#pragma once

#include <string>

#include "common/result.hpp"
#include "ipc/codec.hpp"
#include "sandbox/sandbox.hpp"

namespace gh::sandbox {

inline constexpr size_t kMaxPlanBytes = 16u << 20;  // secret files and /etc content included

void fields(ipc::Encoder& c, SandboxPlan& p);
void fields(ipc::Decoder& c, SandboxPlan& p);

}  // namespace gh::sandbox

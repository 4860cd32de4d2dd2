// SHA-256, as lower-case hex: the audit log's chain, the policy's digest
// and the policy cache's keys.
#pragma once

#include <string>
#include <string_view>

namespace gh {

std::string sha256_hex(std::string_view bytes);

}  // namespace gh

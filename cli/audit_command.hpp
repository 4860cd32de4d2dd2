// `gatehouse audit verify FILE`: proves the audit log's hash chain unbroken
// (exit 0) or names the first bad line (exit 1); 2 when it cannot be read.
#pragma once

#include <string>

namespace gh::cli {

int audit_verify_command(const std::string& path);

}  // namespace gh::cli

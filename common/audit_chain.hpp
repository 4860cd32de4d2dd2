// The audit log's line format, shared by the broker (which appends) and
// `gatehouse audit verify` (which checks): the contract is in
// broker/audit.hpp and docs/audit.md.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gh::audit {

// Bytes in one line, not counting its newline.
inline constexpr size_t kMaxAuditLine = 64 * 1024;
// The first record's prev.
inline const std::string kZeroHash(64, '0');

// The serialization both append and verify use (broker/audit.hpp).
std::string serialize(const nlohmann::json& record);
// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace gh::audit

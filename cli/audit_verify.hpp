// `gatehouse audit verify`: proves an audit log's hash chain unbroken, or
// names the first line that breaks it (format: broker/audit.hpp).
#pragma once

#include <cstddef>
#include <string>

namespace gh::cli {

struct VerifyResult {
  bool ok = false;
  size_t records = 0;
  size_t bad_line = 0;    // 1-based; 0 when ok, or when the file could not be read
  std::string why;        // the reason, without "line N:" (the caller adds it)
  std::string last_hash;  // SHA-256 of the last good line: the next record's prev
};

// Streams the file once, bounded memory. Reports the FIRST failure only.
VerifyResult verify_audit_log(const std::string& path);

}  // namespace gh::cli

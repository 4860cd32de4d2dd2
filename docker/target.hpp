// The request-target as the proxy's rules see it. The daemon (Go, gorilla
// mux) decodes the path and the query before routing; if our reading of a
// target could differ from its reading, a rule could be checked against one
// object and applied to another. So every ambiguity that lets two readers
// disagree (dot segments, encoded slashes, ';' separators, duplicate keys)
// is refused, and what goes upstream is re-encoded from the decoded form
// rather than passed through.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "docker/proxy.hpp"

namespace gh::docker {

// Longer targets are refused with 414 before any decoding.
inline constexpr size_t kMaxTargetLength = 8192;

struct Target {
  // Decoded path segments after the optional /v1.41 prefix:
  // "/v1.41/containers/abc/json" -> {"containers", "abc", "json"}.
  std::vector<std::string> segments;
  bool versioned = false;  // the client wrote the /v1.41 prefix
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order, keys unique

  // "/containers/abc/json", re-encoded canonically; "/" with no segments.
  std::string path() const;
  // "/v1.41/containers/abc/json?k=v&..." - always versioned, canonically
  // encoded, the query in the order held.
  std::string upstream_target() const;

  const std::string* param(std::string_view key) const;  // nullptr when absent
  void set_param(std::string key, std::string value);   // replaces in place, or appends
  void erase_param(std::string_view key);
};

// Refusals: 414 "target-too-long"; 400 "target-form", "path-empty-segment",
// "path-dot-segment", "path-encoding", "api-version", "query-separator",
// "query-encoding", "query-duplicate-key".
Checked<Target> parse_target(std::string_view raw);

}  // namespace gh::docker

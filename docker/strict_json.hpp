// JSON as the proxy reads request bodies. The daemon decodes bodies with
// Go's encoding/json, which matches object keys to struct fields without
// regard to case (Unicode-folded: "ſ" U+017F reads as 's', "K" U+212A as
// 'k') and lets the last of two equal keys win. A checker that reads
// {"Privileged":false,"privileged":true} the C++ way would pass what the
// daemon obeys. So a body is refused unless every reader must agree on it:
// no duplicate keys, no two keys equal under ASCII case folding, no key
// outside ASCII. What the proxy forwards is then canonical(), the very
// document it checked, never the job's bytes.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "docker/proxy.hpp"

namespace gh::docker {


// Refusals (status 400): "json-syntax" (also numbers out of range, which
// nlohmann would read as infinity and dump as null), "json-duplicate-key",
// "json-case-collision", "json-non-ascii-key", "json-depth" (an object or
// array nested deeper than max_depth; the top level is depth 1).
Checked<nlohmann::json> parse_strict(std::string_view body, size_t max_depth = 32);

// The bytes to forward for a checked document.
std::string canonical(const nlohmann::json& j);

// Every key of `object` must be one of `known`, compared exactly (case
// included: the strict parse guarantees no case variant of a known key can
// sit beside it, and this refuses one standing alone). `where` names the
// object in the message ("HostConfig", "" for the top level). A non-object
// passes (type checks are the caller's). Refusal: 403 "unknown-key".
Checked<Ok> known_keys(const nlohmann::json& object, std::span<const std::string_view> known, std::string_view where);
Checked<Ok> known_keys(const nlohmann::json& object, std::initializer_list<std::string_view> known,
                       std::string_view where);

// "Not asking" for something: absent, null, false, 0, "", [] or {}.
bool json_unset(const nlohmann::json* v);

// ASCII-only case folding, the comparison the strict parse guarantees
// is enough.
bool iequals_ascii(std::string_view a, std::string_view b);

}  // namespace gh::docker

// The forms a secret is looked for in when job output is masked: as is;
// base64 (standard and URL-safe, at each of the three byte alignments it
// can have inside a longer base64 stream); URL percent-encoding
// (upper/lower hex, and form encoding with '+' for space); hex
// (lower/upper); JSON string escaping (with and without "\/", with
// non-ASCII as \uXXXX or raw, upper/lower hex).
//
// Two users: the worker's masker (worker/masker.hpp) builds its automaton
// from them, and the broker bounds what one job's secrets may cost to mask
// (broker/secrets.cpp) before the job starts.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gh {

// No duplicates, none shorter than 8 bytes except the value itself.
std::vector<std::string> secret_forms(std::string_view value);

// What masking costs: the total length of a value's forms. The automaton
// takes about 40 bytes of memory per pattern byte while it is built (about
// 21 once built), so the secrets one job may hold are capped in these
// units (load_secrets refuses more). A 40-byte token is ~360 bytes of
// patterns, a 3.6 KB PEM key ~56 KB, 64 KiB of random bytes ~2.6 MB.
inline constexpr size_t kMaxMaskPatternBytes = 8u << 20;
size_t mask_pattern_bytes(std::string_view value);

}  // namespace gh

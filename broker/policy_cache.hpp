// The cache of parsed policies. Parsing a policy and compiling a seccomp
// filter per profile takes the parse child tens of milliseconds; the answer
// depends only on the policy's bytes and on the parser binary (which links
// the parser and libseccomp statically). So a successful answer is kept in
// a root-only folder on /run, keyed by the SHA-256 of both: an edited
// policy or an upgraded parser never reads an old entry.
//
// Trust: the folder must be a directory owned by root with no group or
// other access, each entry a regular file owned by root, mode 0600 or
// tighter; anything else is not used (or written to). An entry is decoded
// and checked exactly as a child's answer is. A failure to read or write
// the cache only costs the time of a parse.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>

#include "ipc/parse_messages.hpp"

namespace gh::broker {

// At most this many entries are kept; the oldest go first.
inline constexpr size_t kMaxPolicyCacheEntries = 64;

// Lower-case hex SHA-256 naming the answer to (kind, bytes) from the parser
// whose file is `parser` (device, inode, size, modification time).
std::string policy_cache_key(ipc::ParseKind kind, std::string_view bytes, const struct stat& parser);

// The framed answer stored under `key`, when the folder and the entry pass
// the checks above; nullopt otherwise.
std::optional<std::string> policy_cache_load(const std::string& dir, const std::string& key);

// Stores a framed answer (creating `dir`, 0700, when it is missing; its
// parent must exist). True when the entry was written.
bool policy_cache_store(const std::string& dir, const std::string& key, const std::string& frame);

}  // namespace gh::broker

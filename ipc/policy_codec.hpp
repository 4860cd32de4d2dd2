// Typed encoding of a parsed policy (policy/policy.hpp, policy/profile.hpp):
// what the parse child answers for a policy file, and what the broker's
// policy cache keeps. Every field is encoded except most diagnostics marks
// (`Mark`: where in the file something was written), which only the parser's
// own messages use. The broker's own refusals of a job's machine image or
// resource class name a policy line (policy/machine.hpp), so a profile's
// mark and its `machine` lists' marks are sent.
//
// Bounds: every list and string is bounded by the parser's own limit
// (policy.hpp, profile.hpp, and the checks in profile_values.cpp named
// below), so every policy the parser accepts encodes, and nothing larger
// decodes. Decoding also re-checks the meaning the broker relies on when it
// grants privilege: ids and uid pools, paths in normal form, names that
// become file names or variables, resource ranges, keys, and rules that end
// in a default and name existing profiles. A policy that decodes is one the
// parser could have produced, as far as privilege goes; the decoder's
// message says which field is wrong.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "ipc/codec.hpp"
#include "policy/policy.hpp"

namespace gh::ipc {

// String bounds of the policy language, from the parser's checks.
inline constexpr size_t kMaxPolicyPathBytes = 4095;   // detail::path_problem
inline constexpr size_t kMaxPolicyNameBytes = 64;     // detail::valid_profile_name, valid_key_name, valid_secret_name
inline constexpr size_t kMaxUserNameBytes = 32;       // detail::valid_user_name
inline constexpr size_t kMaxEnvNameBytes = 256;       // detail::valid_env_name
inline constexpr size_t kMaxHostPortBytes = 300;      // detail::host_port_problem
inline constexpr size_t kMaxGlobBytes = 256;          // detail::glob_problem, rule patterns
inline constexpr size_t kMaxPortRangeBytes = 11;      // detail::port_problem: "65535-65535"
inline constexpr size_t kMaxSyscallNameBytes = 64;    // profile_parse.cpp syscall_problem
inline constexpr size_t kMaxMachinePatternBytes = 128;  // detail::machine_pattern_problem
// A string value (environment.set) is one scalar of the file.
inline constexpr size_t kMaxPolicyValueBytes = policy::kMaxPolicyFileBytes;

template <class C> void fields(C& c, policy::JobUser& v);
template <class C> void fields(C& c, policy::UidPool& v);
template <class C> void fields(C& c, policy::Filesystem& v);
template <class C> void fields(C& c, policy::Network& v);
template <class C> void fields(C& c, policy::DockerProxyRules& v);
template <class C> void fields(C& c, policy::Docker& v);
template <class C> void fields(C& c, policy::Resources& v);
template <class C> void fields(C& c, policy::SeccompChanges& v);
template <class C> void fields(C& c, policy::Environment& v);
template <class C> void fields(C& c, policy::SecretExposure& v);
template <class C> void fields(C& c, policy::Machine& v);
// A whole profile; decoding checks it as the parser would (profile_problem).
template <class C> void fields(C& c, policy::Profile& v);
template <class C> void fields(C& c, policy::RuleMatch& v);
template <class C> void fields(C& c, policy::Rule& v);
template <class C> void fields(C& c, policy::AuditSettings& v);
// The key as its 32 raw bytes (a byte string of exactly 32).
template <class C> void fields(C& c, policy::TrustedKey& v);
template <class C> void fields(C& c, policy::Signatures& v);
// A whole policy; decoding checks what ties it together (policy_problem).
template <class C> void fields(C& c, policy::Policy& v);

// What is wrong with a profile or policy for the broker to use, in words
// naming the field ("profile `ci`: uid_pool.first 0 is below 1000 ..."), or
// "" when nothing is. The decoder runs them; tests call them directly.
std::string profile_problem(const policy::Profile& p);
// A value from a decoded message as such messages show it: quoted, control
// characters as `?`, cut at 80 bytes (it came from a hostile process, and
// the message may reach an operator's terminal).
std::string shown_value(std::string_view s);
std::string policy_problem(const policy::Policy& p);

}  // namespace gh::ipc

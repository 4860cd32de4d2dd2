// Job secrets: read by the broker (as root) from the secrets directory,
// handed to one job as environment variables or /run/secrets files, and
// masked in everything the job prints (masker.hpp).
//
// A secret is only as safe as the path to it: the directory and every
// directory above it must be root's and not writable by anyone else (else
// another user could swap a file in), and each file must be root's and
// readable by nobody else. Anything less refuses the job, with the command
// that fixes it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "policy/profile.hpp"

namespace gh::broker {

// Shorter values would be masked in too many innocent places (and a few
// bytes are guessable anyway), so they are refused rather than half-masked.
inline constexpr size_t kMinSecretBytes = 8;
inline constexpr size_t kMaxSecretBytes = 64 * 1024;

struct SecretValue {
  std::string name;   // the file name under the secrets directory
  std::string value;  // one trailing "\n" or "\r\n" removed
};

// Reads every secret in `wanted`, in order: result[i] belongs to wanted[i].
// `dir` must be absolute. With `wanted` empty the directory is not looked
// at (a host without secrets needs no secrets directory). On failure the
// error lists every problem found, one per line, each with its fix.
Result<std::vector<SecretValue>> load_secrets(const std::string& dir,
                                              const std::vector<policy::SecretExposure>& wanted);

}  // namespace gh::broker

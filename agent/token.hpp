// The runner token (docs/agent.md): opened where only root could have put
// it, read by the agent alone.
//
// Under `gatehouse serve` the broker (root) opens the file with every check
// below and hands the agent the open file descriptor: the broker never
// reads the token, and the agent, which cannot read root's files, reads
// only that one. Under systemd the agent reads its own credential
// ($CREDENTIALS_DIRECTORY/gatehouse-token, LoadCredential=).
#pragma once

#include <cstddef>
#include <string>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace gh::agent {

inline constexpr size_t kMaxTokenFileBytes = 4096;
inline constexpr const char* kCredentialName = "gatehouse-token";  // systemd LoadCredential= name

// Opens the token for reading: `credentials_directory`/gatehouse-token when
// that is given (systemd's $CREDENTIALS_DIRECTORY: only the file is
// checked), else `auth_token_file`, which must be a regular file owned by
// root (or by `owner`, the reading process's own uid, for a credential),
// readable by nobody else, in directories only root can write. A symlink
// is followed and the real path is checked. Errors list every problem with
// its fix and never contain the token.
Result<UniqueFd> open_runner_token(const std::string& auth_token_file, const char* credentials_directory);

// Reads and checks the token from an fd open_runner_token returned (here or
// in the broker). One trailing newline is dropped; the rest must pass
// protocol::token_problem. `shown` names the source in errors.
Result<std::string> read_runner_token(int fd, const std::string& shown);

}  // namespace gh::agent

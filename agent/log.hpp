// The agent's own log (spdlog): stderr (the journal under systemd) or the
// file named by logging.file. Never given a token or a secret value: the
// callers pass messages built from names, ids and error texts only.
#pragma once

#include <string>

namespace gh::agent {

enum class LogLevel { Debug, Info, Warn, Error };

// Sets the level and the destination once, at start.
void init_agent_log(LogLevel level, const std::string& file);
void agent_log(LogLevel level, const std::string& message);

}  // namespace gh::agent

// The broker daemon's log: one line per event on stderr (the journal
// under systemd), in the agent's format, so `gatehouse serve`'s two
// processes read as one log. Never given a token or a secret value.
#pragma once

#include <string>

namespace gh::broker {

enum class LogLevel { Info, Warn, Error };
void broker_log(LogLevel level, const std::string& message);

}  // namespace gh::broker

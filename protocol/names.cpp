// The control plane's identifiers (task ids, tokens, runner names,
// resource classes): one charset rule each. Kept apart from the JSON codec
// (protocol.cpp) so the broker checks a task id without linking it.
#include <nlohmann/json.hpp>

#include "protocol/protocol.hpp"

namespace gh::protocol {

namespace {

// A piece of hostile input, quoted for a message (JSON escaping).
std::string quoted(std::string_view text) {
  return nlohmann::json(std::string(text)).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

// One charset check for the identifier rules; `secret` keeps the offending
// character out of the message (a near-token is still half a token).
std::string charset_problem(std::string_view s, size_t min_len, size_t max_len, const char* extra, bool secret) {
  const std::string rule =
      "must be " + std::to_string(min_len) + " to " + std::to_string(max_len) + " characters from A-Z a-z 0-9 " + extra;
  if (s.size() < min_len || s.size() > max_len) return rule + " (it is " + std::to_string(s.size()) + ")";
  const std::string_view allowed(extra);
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum || (c != ' ' && allowed.find(c) != std::string_view::npos)) continue;
    if (secret) return rule + " (position " + std::to_string(i) + " is not)";
    return rule + " (" + quoted(s.substr(i, 1)) + " at position " + std::to_string(i) + " is not)";
  }
  return "";
}

}  // namespace

std::string task_id_problem(std::string_view id) { return charset_problem(id, 1, 64, "_ -", false); }
std::string token_problem(std::string_view token) { return charset_problem(token, 16, 256, ". _ ~ + / = -", true); }
std::string runner_name_problem(std::string_view name) { return charset_problem(name, 1, 128, ". _ -", false); }
std::string resource_class_problem(std::string_view rc) { return charset_problem(rc, 1, 128, ". _ / -", false); }

}  // namespace gh::protocol

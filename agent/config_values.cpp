// Syntax checks of the agent's configuration values that others share:
// the control client (the API URL) and the broker, which checks the
// metrics address of the parse child's answer without linking the YAML
// parser (agent/config.cpp).
#include <string>
#include <string_view>

#include "agent/config.hpp"
#include "policy/values.hpp"

namespace gh::agent {

std::string api_url_problem(const std::string& url) {
  auto starts = [&](std::string_view p) {
    if (url.size() < p.size()) return false;
    for (size_t i = 0; i < p.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(url[i])) != p[i]) return false;
    return true;
  };
  if (starts("http://"))
    return "uses http://: the runner token and every job would cross the network in clear text; use https://";
  if (!starts("https://")) return "is not an https:// URL";
  if (url.size() > 2048) return "is longer than 2048 characters";
  for (unsigned char c : url)
    if (c <= 0x20 || c >= 0x7f || c == '\\') return "holds a space, a control character or a character URLs escape";
  if (url.find_first_of("?#") != std::string::npos) return "has a query or a fragment";
  const std::string rest = url.substr(8);
  const std::string host_port = rest.substr(0, rest.find('/'));
  if (host_port.find('@') != std::string::npos) return "holds credentials; put the token in api.auth_token_file";
  std::string host = host_port, port;
  if (host_port.starts_with("[")) {
    const size_t close = host_port.find(']');
    if (close == std::string::npos) return "has an unclosed [ in its host";
    host = host_port.substr(0, close + 1);
    if (close + 1 < host_port.size()) {
      if (host_port[close + 1] != ':') return "has something after its [IPv6] host that is not :PORT";
      port = host_port.substr(close + 2);
    }
  } else if (size_t colon = host_port.find(':'); colon != std::string::npos) {
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  }
  if (host.empty() || host == "[]") return "has no host";
  if (host_port.find(':') != std::string::npos && !host_port.starts_with("[") && port.empty()) return "has an empty port";
  if (!port.empty() && (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
                        std::stoi(port) < 1 || std::stoi(port) > 65535))
    return "has a port that is not 1 to 65535";
  for (size_t i = rest.find('/'); i != std::string::npos && i + 1 < rest.size();) {
    const size_t next = rest.find('/', i + 1);
    const std::string part = rest.substr(i + 1, next == std::string::npos ? std::string::npos : next - i - 1);
    if (part.empty() || part == "." || part == "..") return "has an empty, `.` or `..` path component";
    i = next;
  }
  return "";
}

std::string listen_problem(const std::string& listen) {
  if (listen.starts_with("unix:")) {
    const std::string path = listen.substr(5);
    if (std::string why = policy::detail::path_problem(path); !why.empty()) return "has a socket path that " + why;
    if (path.size() > 107) return "has a socket path longer than 107 bytes";
    return "";
  }
  std::string port;
  if (listen.starts_with("127.0.0.1:")) port = listen.substr(10);
  else if (listen.starts_with("[::1]:")) port = listen.substr(6);
  else return "is not unix:/PATH or a loopback address (the endpoint is not for the network)";
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535)
    return "has a port that is not 1 to 65535";
  return "";
}

}  // namespace gh::agent

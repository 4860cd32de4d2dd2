// The daemon side of the proxy: a fresh connection per request, and small
// internal calls (inspect, list, remove) whose whole answer is read and
// bounded. The daemon is trusted to speak HTTP, not to be small: every
// answer the proxy reads itself is bounded and parsed by http-parser.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "common/unique_fd.hpp"
#include "docker/proxy.hpp"

namespace gh::docker {

// Percent-encodes one path segment for an upstream target.
std::string encode_segment(std::string_view s);

class Upstream {
 public:
  explicit Upstream(std::string socket_path) : path_(std::move(socket_path)) {}

  // A new connection to the daemon, or a 502 Refusal saying why not.
  Checked<UniqueFd> connect() const;

  struct Reply {
    int status = 0;
    std::string body;  // de-chunked
  };
  // One internal call: `target` is versioned ("/v1.41/containers/ID/json").
  // The answer is bounded to kMaxInternalAnswer; a slower daemon than
  // `timeout` is a 504 Refusal.
  Checked<Reply> call(const std::string& method, const std::string& target, const std::string& body = "",
                      std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;
  // GET returning JSON: 200 gives the value; 404 is a 404 Refusal with
  // `not_found` as its message; anything else is a 502 Refusal.
  Checked<nlohmann::json> get_json(const std::string& target, const std::string& not_found) const;

  static constexpr size_t kMaxInternalAnswer = 16u << 20;

 private:
  std::string path_;
};

// Writes all of `data` to a socket (no SIGPIPE); false when the peer is gone.
bool send_all(int fd, std::string_view data);

// "/v1.41" + path, for internal calls.
std::string versioned(const std::string& path);

}  // namespace gh::docker

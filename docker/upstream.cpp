#include "docker/upstream.hpp"

#include <http_parser.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace gh::docker {

std::string encode_segment(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string versioned(const std::string& path) { return std::string("/v") + kApiVersion + path; }

Checked<UniqueFd> Upstream::connect() const {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) return refuse("upstream", "the daemon's socket path is too long", 502);
  memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return refuse("upstream", std::string("socket: ") + strerror(errno), 502);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return refuse("upstream", "cannot reach the Docker daemon at " + path_ + ": " + strerror(errno), 502);
  return fd;
}

namespace {

struct ParsedReply {
  Upstream::Reply reply;
  bool complete = false;
  bool too_large = false;
};

int on_body(http_parser* p, const char* at, size_t len) {
  auto* r = static_cast<ParsedReply*>(p->data);
  if (r->reply.body.size() + len > Upstream::kMaxInternalAnswer) {
    r->too_large = true;
    return 1;
  }
  r->reply.body.append(at, len);
  return 0;
}

int on_complete(http_parser* p) {
  auto* r = static_cast<ParsedReply*>(p->data);
  r->reply.status = static_cast<int>(p->status_code);
  r->complete = true;
  return 0;
}

}  // namespace

Checked<Upstream::Reply> Upstream::call(const std::string& method, const std::string& target, const std::string& body,
                                        std::chrono::milliseconds timeout) const {
  auto fd = connect();
  if (!fd) return fd.error();
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n";
  if (!body.empty()) req += "Content-Type: application/json\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!send_all(fd->get(), req)) return refuse("upstream", "the Docker daemon closed the connection", 502);

  ParsedReply parsed;
  http_parser parser;
  http_parser_init(&parser, HTTP_RESPONSE);
  parser.data = &parsed;
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_body = on_body;
  settings.on_message_complete = on_complete;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (!parsed.complete) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return refuse("upstream", "the Docker daemon did not answer " + method + " in time", 504);
    pollfd pfd{fd->get(), POLLIN, 0};
    int pr = poll(&pfd, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t n = recv(fd->get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return refuse("upstream", std::string("reading the Docker daemon's answer: ") + strerror(errno), 502);
    // n == 0 tells the parser the message ends at EOF (an answer without a length).
    size_t used = http_parser_execute(&parser, &settings, buf, static_cast<size_t>(n));
    if (parsed.too_large) return refuse("upstream", "the Docker daemon's answer to " + method + " " + target + " is too large", 502);
    if (HTTP_PARSER_ERRNO(&parser) != HPE_OK && !parsed.complete)
      return refuse("upstream", std::string("the Docker daemon's answer is not HTTP: ") +
                                    http_errno_description(HTTP_PARSER_ERRNO(&parser)), 502);
    if (n == 0 || used != static_cast<size_t>(n)) break;
  }
  if (!parsed.complete) return refuse("upstream", "the Docker daemon's answer ended early", 502);
  return parsed.reply;
}

Checked<nlohmann::json> Upstream::get_json(const std::string& target, const std::string& not_found) const {
  auto r = call("GET", target);
  if (!r) return r.error();
  if (r->status == 404) return refuse("not-owned", not_found, 404);
  if (r->status != 200) return refuse("upstream", "the Docker daemon answered " + std::to_string(r->status) + " to " + target, 502);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return refuse("upstream", "the Docker daemon's answer to " + target + " is not JSON", 502);
  return j;
}

}  // namespace gh::docker

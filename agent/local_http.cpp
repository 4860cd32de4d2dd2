// The agent's local HTTP endpoint. Clients are local but not trusted (any
// process that can reach the socket or the loopback port): requests are
// parsed by http-parser, bounded in size and in time, never carry a body,
// and every connection is closed after one answer.
#include "agent/local_http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "common/http_reason.hpp"

namespace gh::agent {

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  Clock::time_point deadline;
  http_parser parser{};
  std::string url;
  size_t received = 0;
  bool headers_done = false;
  bool has_body = false;
  std::string out;  // the answer, once decided
  size_t sent = 0;
  bool closed = false;
};

int on_url(http_parser* p, const char* at, size_t len) {
  static_cast<Conn*>(p->data)->url.append(at, len);
  return 0;
}

// The answer depends only on the request line and headers: stop there.
int on_headers_complete(http_parser* p) {
  auto* c = static_cast<Conn*>(p->data);
  c->headers_done = true;
  c->has_body = (p->flags & F_CHUNKED) != 0 || (p->content_length > 0 && p->content_length != ULLONG_MAX);
  http_parser_pause(p, 1);
  return 0;
}

http_parser_settings make_settings() {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = on_url;
  s.on_headers_complete = on_headers_complete;
  return s;
}

std::string render(const HttpAnswer& a) {
  std::string r = "HTTP/1.1 " + std::to_string(a.status) + " " + gh::http_reason(a.status) + "\r\n";
  r += "Content-Type: " + a.content_type + "\r\n";
  r += "Content-Length: " + std::to_string(a.body.size()) + "\r\n";
  if (a.status == 405) r += "Allow: GET\r\n";
  r += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  return r + a.body;
}

HttpAnswer plain(int status, std::string body) { return {status, "text/plain; charset=utf-8", std::move(body)}; }

void answer(Conn& c, const HttpAnswer& a) {
  c.out = render(a);
  c.sent = 0;
}

// Decides the answer once the headers are in (or the request is bad).
void decide(Conn& c, const Metrics& m, const LocalHttpOptions& o) {
  if (c.has_body) return answer(c, plain(400, "request bodies are not accepted\n"));
  http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(c.url.data(), c.url.size(), 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
    return answer(c, plain(400, "bad request target\n"));
  std::string path = c.url.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
  answer(c, route_request(http_method_str(static_cast<http_method>(c.parser.method)), path, m, o));
}

void read_request(Conn& c, const Metrics& m, const LocalHttpOptions& o, const http_parser_settings& settings) {
  char buf[4096];
  // Never take in more than one byte over the bound: that byte proves it.
  size_t room = std::min(sizeof buf, o.max_request_bytes + 1 - c.received);
  ssize_t n = recv(c.fd, buf, room, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {  // gone before asking anything complete
    c.closed = true;
    return;
  }
  c.received += static_cast<size_t>(n);
  size_t used = http_parser_execute(&c.parser, &settings, buf, static_cast<size_t>(n));
  auto e = HTTP_PARSER_ERRNO(&c.parser);
  if (c.headers_done) return decide(c, m, o);
  if ((e != HPE_OK && e != HPE_PAUSED) || used != static_cast<size_t>(n))
    return answer(c, plain(400, std::string("malformed request: ") + http_errno_name(e) + "\n"));
  if (c.received > o.max_request_bytes)
    return answer(c, plain(431, "request line and headers are limited to " + std::to_string(o.max_request_bytes) +
                                    " bytes\n"));
}

void write_answer(Conn& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) break;
    c.sent += static_cast<size_t>(n);
  }
  c.closed = true;  // all sent, or the client is gone
}

Result<int> parse_port(const std::string& s) {
  if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return err("the port `" + s + "` is not a number from 0 to 65535");
  int p = std::stoi(s);
  if (p > 65535) return err("the port " + s + " is over 65535");
  return p;
}

Result<int> listen_tcp(const std::string& listen, int& port_out) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string host, port_text;
  if (listen.starts_with("[")) {
    auto close_br = listen.find("]:");
    if (close_br == std::string::npos) return err("`" + listen + "`: write an IPv6 address as [::1]:PORT");
    host = listen.substr(1, close_br - 1);
    port_text = listen.substr(close_br + 2);
  } else {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) return err("`" + listen + "`: expected unix:/PATH, 127.0.0.1:PORT or [::1]:PORT");
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
  }
  auto port = parse_port(port_text);
  if (!port) return port.error();
  const std::string refuse = "`" + listen +
                             "`: the metrics endpoint listens on loopback only (127.0.0.1:PORT or [::1]:PORT) or on "
                             "unix:/PATH; put a proxy in front of it to publish it";
  int family = AF_INET;
  if (listen.starts_with("[")) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1 || !IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) return err(refuse);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(*port));
    len = sizeof *a6;
    family = AF_INET6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1 || (ntohl(a4->sin_addr.s_addr) >> 24) != 127)
      return err(refuse);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(*port));
    len = sizeof *a4;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return err(std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 16) != 0) {
    std::string e = strerror(errno);
    close(fd);
    return err("cannot listen on " + listen + ": " + e);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_out = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                      : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

// A fresh socket: a stale one (a socket left by an earlier agent) is
// replaced; anything else at the path is somebody's file and is refused,
// and so is a folder others could swap things into.
Result<int> listen_unix(const std::string& path, struct stat& bound) {
  sockaddr_un sa{};
  if (path.empty() || path[0] != '/') return err("unix:" + path + ": the socket path must be absolute");
  if (path.size() >= sizeof sa.sun_path) return err("unix:" + path + ": the path is too long for a unix socket");
  std::string parent = path.substr(0, path.rfind('/'));
  if (parent.empty()) parent = "/";
  struct stat st {};
  if (stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return err("unix:" + path + ": the folder " + parent + " does not exist");
  if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
    return err("unix:" + path + ": " + parent + " is world-writable without the sticky bit; use a folder like /run/gatehouse");
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return err("unix:" + path + ": something that is not a socket is there; refusing to replace it");
    if (unlink(path.c_str()) != 0) return err("unix:" + path + ": cannot remove the stale socket: " + strerror(errno));
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return err(std::string("socket: ") + strerror(errno));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || chmod(path.c_str(), 0660) != 0 ||
      lstat(path.c_str(), &bound) != 0 || ::listen(fd, 16) != 0) {
    std::string e = strerror(errno);
    close(fd);
    return err("cannot listen on unix:" + path + ": " + e);
  }
  return fd;
}

}  // namespace

HttpAnswer route_request(const std::string& method, const std::string& path, const Metrics& m,
                         const LocalHttpOptions& o) {
  if (method != "GET") return plain(405, "only GET is served here\n");
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", m.render_prometheus()};
  if (path == "/health") {
    auto now = Metrics::Clock::now();
    return {m.healthy(now, o.stale_after) ? 200 : 503, "application/json", m.health_json(now, o.stale_after)};
  }
  if (path == "/healthz" || path == "/readyz") {
    auto now = Metrics::Clock::now();
    const bool ready_probe = path == "/readyz";
    const bool ok = ready_probe ? m.ready(now, o.stale_after) : m.live();
    return {ok ? 200 : 503, "application/json", m.probe_json(ready_probe, now, o.stale_after)};
  }
  return plain(404, "not found: try /metrics, /health, /healthz or /readyz\n");
}

Result<std::unique_ptr<LocalHttpServer>> LocalHttpServer::start(const std::string& listen, const Metrics& metrics,
                                                                 LocalHttpOptions options) {
  std::unique_ptr<LocalHttpServer> s(new LocalHttpServer(metrics, options));
  if (listen.starts_with("unix:")) {
    struct stat bound {};
    auto fd = listen_unix(listen.substr(5), bound);
    if (!fd) return fd.error();
    s->listen_fd_ = *fd;
    s->unix_path_ = listen.substr(5);
    s->unix_dev_ = bound.st_dev;
    s->unix_ino_ = bound.st_ino;
  } else {
    auto fd = listen_tcp(listen, s->port_);
    if (!fd) return fd.error();
    s->listen_fd_ = *fd;
  }
  s->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd_ < 0) return err(std::string("eventfd: ") + strerror(errno));
  s->thread_ = std::thread([p = s.get()] { p->loop(); });
  return s;
}

LocalHttpServer::~LocalHttpServer() { stop(); }

void LocalHttpServer::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
  // Only our own socket: the path may have been replaced since.
  struct stat st {};
  if (!unix_path_.empty() && lstat(unix_path_.c_str(), &st) == 0 && st.st_dev == unix_dev_ && st.st_ino == unix_ino_)
    unlink(unix_path_.c_str());
  unix_path_.clear();
}

void LocalHttpServer::loop() {
  const http_parser_settings settings = make_settings();
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<pollfd> fds;
  for (;;) {
    auto now = Clock::now();
    long long wait = -1;  // until the nearest deadline; forever with no client
    for (const auto& c : conns) {
      long long left = std::chrono::duration_cast<std::chrono::milliseconds>(c->deadline - now).count() + 1;
      if (wait < 0 || left < wait) wait = left;
    }
    const int timeout = wait < 0 ? -1 : static_cast<int>(std::clamp<long long>(wait, 0, 60000));
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, static_cast<short>(conns.size() < options_.max_clients ? POLLIN : 0), 0});
    for (const auto& c : conns) fds.push_back({c->fd, static_cast<short>(c->out.empty() ? POLLIN : POLLOUT), 0});
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) break;
    now = Clock::now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = *conns[i];
      short ev = n > 0 ? fds[i + 2].revents : 0;
      if (now >= c.deadline) c.closed = true;  // too slow: dropped, unanswered
      else if (!c.out.empty() && (ev & (POLLOUT | POLLERR | POLLHUP))) write_answer(c);
      else if (c.out.empty() && (ev & (POLLIN | POLLERR | POLLHUP))) read_request(c, metrics_, options_, settings);
      if (!c.closed && !c.out.empty() && c.sent == 0) write_answer(c);  // most answers fit the socket buffer at once
    }
    std::erase_if(conns, [](const std::unique_ptr<Conn>& c) {
      if (c->closed) close(c->fd);
      return c->closed;
    });
    if (n > 0 && (fds[1].revents & POLLIN)) {
      while (conns.size() < options_.max_clients) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        c->deadline = Clock::now() + options_.client_timeout;
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c.get();
        conns.push_back(std::move(c));
      }
    }
  }
  for (auto& c : conns) close(c->fd);
}

}  // namespace gh::agent

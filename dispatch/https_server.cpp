#include "dispatch/https_server.hpp"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/http_reason.hpp"

namespace gh::dispatch {
namespace {

using Clock = std::chrono::steady_clock;

std::string ssl_errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no details from OpenSSL" : out;
}

void set_timeouts(int fd, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

constexpr int kKeepAliveIdleSeconds = 15;
constexpr int kMaxRequestsPerConnection = 1000;

bool write_all(SSL* ssl, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    int n = SSL_write(ssl, data.data() + off, static_cast<int>(data.size() - off));
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string render(const HttpResponse& r, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + gh::http_reason(r.status) + "\r\n";
  if (r.status != 204) {
    out += "Content-Type: application/json\r\n";
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  if (r.retry_after > 0) out += "Retry-After: " + std::to_string(r.retry_after) + "\r\n";
  out += keep_alive ? "Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\n"
                    : "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (r.status != 204) out += r.body;
  return out;
}

// What http-parser's callbacks collect from one request.
struct Collected {
  size_t max_body = 0;
  std::string url;
  std::string field, value;  // the header being read
  bool in_value = false;
  std::string authorization, content_type, expect;
  int authorization_count = 0;
  std::string body;
  bool headers_done = false;
  bool too_large = false;
  bool done = false;
  bool continue_due = false;  // "Expect: 100-continue" to answer
};

bool iequals(const std::string& a, const char* b) {
  size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

void finish_header(Collected& c) {
  if (c.field.empty()) return;
  if (iequals(c.field, "authorization")) {
    c.authorization = c.value;
    ++c.authorization_count;
  } else if (iequals(c.field, "content-type")) {
    c.content_type = c.value;
  } else if (iequals(c.field, "expect")) {
    c.expect = c.value;
  }
  c.field.clear();
  c.value.clear();
}

Collected& of(http_parser* p) { return *static_cast<Collected*>(p->data); }

int on_url(http_parser* p, const char* at, size_t len) {
  of(p).url.append(at, len);
  return 0;
}
int on_header_field(http_parser* p, const char* at, size_t len) {
  Collected& c = of(p);
  if (c.in_value) {
    finish_header(c);
    c.in_value = false;
  }
  c.field.append(at, len);
  return 0;
}
int on_header_value(http_parser* p, const char* at, size_t len) {
  Collected& c = of(p);
  c.in_value = true;
  c.value.append(at, len);
  return 0;
}
int on_headers_complete(http_parser* p) {
  Collected& c = of(p);
  finish_header(c);
  c.headers_done = true;
  // ULLONG_MAX when there is no Content-Length (chunked, or no body).
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > c.max_body) {
    c.too_large = true;
    return -1;
  }
  if (iequals(c.expect, "100-continue")) c.continue_due = true;
  return 0;
}
int on_chunk_header(http_parser* p) {
  Collected& c = of(p);
  if (p->content_length > c.max_body - c.body.size()) {
    c.too_large = true;
    return -1;
  }
  return 0;
}
int on_body(http_parser* p, const char* at, size_t len) {
  Collected& c = of(p);
  if (len > c.max_body - c.body.size()) {
    c.too_large = true;
    return -1;
  }
  c.body.append(at, len);
  return 0;
}
int on_message_complete(http_parser* p) {
  of(p).done = true;
  http_parser_pause(p, 1);  // one request at a time: the next waits for the answer
  return 0;
}

http_parser_settings parser_settings() {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = on_url;
  s.on_header_field = on_header_field;
  s.on_header_value = on_header_value;
  s.on_headers_complete = on_headers_complete;
  s.on_chunk_header = on_chunk_header;
  s.on_body = on_body;
  s.on_message_complete = on_message_complete;
  return s;
}

void log_line(const std::string& line) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s %s\n", stamp, line.c_str());
}

std::string peer_name(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "?";
}

}  // namespace

std::string error_body(const std::string& code, const std::string& message) {
  return nlohmann::json{{"error", code}, {"message", message}}.dump();
}

Result<std::unique_ptr<HttpsServer>> HttpsServer::create(const ServerOptions& options, Handler handler) {
  std::unique_ptr<HttpsServer> s(new HttpsServer(options, std::move(handler)));
  http_parser_set_max_header_size(options.max_header_bytes);

  s->ctx_ = SSL_CTX_new(TLS_server_method());
  if (!s->ctx_) return err("TLS: cannot create a context: " + ssl_errors());
  SSL_CTX_set_min_proto_version(s->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_options(s->ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_use_certificate_chain_file(s->ctx_, options.cert_file.c_str()) != 1)
    return err("TLS: cannot load the certificate chain from " + options.cert_file + " (PEM expected): " + ssl_errors());
  if (SSL_CTX_use_PrivateKey_file(s->ctx_, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return err("TLS: cannot load the private key from " + options.key_file + " (PEM expected): " + ssl_errors());
  if (SSL_CTX_check_private_key(s->ctx_) != 1)
    return err("TLS: the key in " + options.key_file + " does not match the certificate in " + options.cert_file);

  // HOST:PORT, HOST may be [IPv6]. Numeric only: no DNS at start-up.
  const std::string& l = options.listen;
  size_t colon = l.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == l.size())
    return err("--listen " + l + ": expected HOST:PORT, e.g. 127.0.0.1:8443");
  std::string host = l.substr(0, colon), port = l.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* ai = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &ai); rc != 0)
    return err("--listen " + l + ": " + gai_strerror(rc) + " (give a numeric address and port)");
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    std::string why = std::strerror(errno);
    freeaddrinfo(ai);
    if (fd >= 0) close(fd);
    return err("cannot listen on " + l + ": " + why);
  }
  freeaddrinfo(ai);
  s->listen_fd_ = fd;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  s->bound_ = peer_name(ss);
  return s;
}

HttpsServer::~HttpsServer() {
  if (listen_fd_ >= 0) close(listen_fd_);
  if (ctx_) SSL_CTX_free(ctx_);
}

std::string HttpsServer::bound_address() const { return bound_; }

void HttpsServer::run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 500) <= 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::string peer = peer_name(ss);
    // Over the cap the connection is closed unanswered: an answer would
    // need a TLS handshake, which is the expensive part. Agents retry.
    if (active_.load() >= options_.max_connections) {
      log_line(peer + " refused: " + std::to_string(options_.max_connections) + " connections already open");
      close(fd);
      continue;
    }
    // Answers are small and each is written whole: no Nagle wait behind
    // the client's delayed ACK on a kept connection.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++active_;
    std::thread([this, fd, peer] {
      serve_connection(fd, peer);
      close(fd);
      --active_;
    }).detach();
  }
  for (int i = 0; i < 50 && active_.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

void HttpsServer::serve_connection(int fd, const std::string& peer) {
  set_timeouts(fd, options_.handshake_timeout_seconds);
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return;
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) {
    ERR_clear_error();  // plain HTTP, a port scan, a client that gave up
    SSL_free(ssl);
    return;
  }
  // Keep-alive: an agent's calls reuse one connection (one TLS handshake
  // for many calls). The connection ends on the client's `Connection:
  // close`, a request refused while it was read, bytes sent ahead of an
  // answer (no pipelining), an idle wait over kKeepAliveIdleSeconds, or
  // after kMaxRequestsPerConnection requests.
  for (int served = 0; served < kMaxRequestsPerConnection; ++served) {
    set_timeouts(fd, served == 0 ? options_.read_timeout_seconds : kKeepAliveIdleSeconds);
    if (!serve_request(ssl, fd, peer, served == 0)) break;
  }
  ERR_clear_error();
  SSL_free(ssl);
}

bool HttpsServer::serve_request(SSL* ssl, int fd, const std::string& peer, bool first) {
  Collected c;
  c.max_body = options_.max_body_bytes;
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  parser.data = &c;
  const http_parser_settings settings = parser_settings();
  // A kept connection may wait idle for its next request first.
  auto deadline = Clock::now() + std::chrono::seconds(options_.read_timeout_seconds + (first ? 0 : kKeepAliveIdleSeconds));
  bool ahead = false;  // bytes after the request: pipelining, which is not served

  HttpResponse answer;
  bool have_answer = false;
  char buf[16384];
  while (!c.done && !have_answer) {
    if (Clock::now() > deadline) break;  // a client dripping bytes: drop it
    int n = SSL_read(ssl, buf, sizeof buf);
    if (n <= 0) break;  // closed, reset or timed out: nothing to answer
    const size_t parsed = http_parser_execute(&parser, &settings, buf, static_cast<size_t>(n));
    auto errno_ = HTTP_PARSER_ERRNO(&parser);
    if (c.done) {
      ahead = parsed < static_cast<size_t>(n);
      break;
    }
    if (c.too_large) {
      answer = {413, error_body("too_large", "the request body is over " + std::to_string(c.max_body) +
                                                 " bytes; split the batch"), 0};
      have_answer = true;
    } else if (errno_ == HPE_HEADER_OVERFLOW) {
      answer = {400, error_body("bad_request", "the request headers are over " +
                                                   std::to_string(options_.max_header_bytes) + " bytes"), 0};
      have_answer = true;
    } else if (errno_ != HPE_OK) {
      answer = {400, error_body("bad_request", std::string("malformed HTTP request: ") +
                                                   http_errno_description(errno_)), 0};
      have_answer = true;
    } else if (c.continue_due) {
      c.continue_due = false;
      if (!write_all(ssl, "HTTP/1.1 100 Continue\r\n\r\n")) break;
    }
  }
  bool handled = false;
  if (c.done) {
    if (c.authorization_count > 1) {
      answer = {400, error_body("bad_request", "more than one Authorization header"), 0};
      log_line(peer + " 400 (more than one Authorization header)");
    } else {
      HttpRequest req;
      req.method = http_method_str(static_cast<http_method>(parser.method));
      http_parser_url u;
      http_parser_url_init(&u);
      if (http_parser_parse_url(c.url.data(), c.url.size(), 0, &u) == 0 && (u.field_set & (1 << UF_PATH)))
        req.path = c.url.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
      req.authorization = std::move(c.authorization);
      req.content_type = std::move(c.content_type);
      req.body = std::move(c.body);
      req.peer = peer;
      req.client_gone = [fd] {
        pollfd p{fd, POLLRDHUP, 0};
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
      };
      answer = handler_(req);
      handled = true;
      log_line(peer + " " + req.method + " " + req.path + " " + std::to_string(answer.status));
    }
    have_answer = true;
  } else if (have_answer) {
    log_line(peer + " " + std::to_string(answer.status) + " (request refused while reading)");
  }
  const bool keep = handled && !ahead && http_should_keep_alive(&parser) != 0;
  const bool written = have_answer && write_all(ssl, render(answer, keep));
  if (have_answer && !written && answer.undelivered) answer.undelivered();
  if (!written) return false;
  if (keep) return true;
  {
    SSL_shutdown(ssl);
    if (!c.done) {
      // Lingering close: read (and drop) what the client is still sending
      // for a moment, so the kernel does not reset the connection before
      // the client has read the answer.
      shutdown(fd, SHUT_WR);
      set_timeouts(fd, 2);
      size_t drained = 0;
      auto until = Clock::now() + std::chrono::seconds(3);
      while (drained < 4 * options_.max_body_bytes && Clock::now() < until) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        drained += static_cast<size_t>(n);
      }
    }
  }
  return false;
}

}  // namespace gh::dispatch

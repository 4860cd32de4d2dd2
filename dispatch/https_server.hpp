// A small HTTPS/1.1 server for gatehouse-dispatch: OpenSSL (TLS 1.2 or
// newer), requests parsed by http-parser, one thread per connection, its
// requests one after another (keep-alive, no pipelining; idle 15 s at
// most, 1000 requests at most). Everything a client sends is
// bounded before it is buffered: headers, body (answered 413 from
// Content-Length or while a chunked body arrives), time, connections.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace gh::dispatch {

struct HttpRequest {
  std::string method;         // "POST", ...
  std::string path;           // without the query
  std::string authorization;  // the header's value, "" when absent
  std::string content_type;
  std::string body;
  std::string peer;  // "ADDR:PORT", for logs
  // Whether the client has closed its side (a long poll it gave up on: an
  // agent that began draining). A handler that would hand something out
  // asks first, so nothing is handed to a client that is gone.
  std::function<bool()> client_gone;
};

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON; empty for 204
  int retry_after = 0;  // seconds; 0: no Retry-After header
  // Called when the answer could not be written (the client went away
  // while the handler ran): what it handed out is taken back.
  std::function<void()> undelivered = {};
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;

struct ServerOptions {
  std::string listen;  // "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one
  std::string cert_file;
  std::string key_file;
  size_t max_body_bytes = 1 << 20;
  uint32_t max_header_bytes = 16 << 10;
  int handshake_timeout_seconds = 10;
  int read_timeout_seconds = 30;  // each read, and the whole request
  int max_connections = 64;
};

// {"error": CODE, "message": MESSAGE}
std::string error_body(const std::string& code, const std::string& message);

class HttpsServer {
 public:
  // Loads the certificate and key and binds the socket; serves nothing yet.
  static Result<std::unique_ptr<HttpsServer>> create(const ServerOptions& options, Handler handler);
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  std::string bound_address() const;  // "HOST:PORT" with the real port

  // Accepts until `stop` turns true, then waits (a few seconds at most)
  // for the connections in flight.
  void run(const std::atomic<bool>& stop);
  int active_connections() const { return active_.load(); }

 private:
  HttpsServer(ServerOptions options, Handler handler) : options_(std::move(options)), handler_(std::move(handler)) {}
  void serve_connection(int fd, const std::string& peer);
  // One request on the connection; true when the connection is kept for
  // the next (keep-alive).
  bool serve_request(SSL* ssl, int fd, const std::string& peer, bool first);

  ServerOptions options_;
  Handler handler_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  std::string bound_;
  std::atomic<int> active_{0};
};

}  // namespace gh::dispatch

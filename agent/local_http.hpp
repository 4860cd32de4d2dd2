// A small HTTP/1.1 server for /metrics and /health, on a unix socket or a
// loopback TCP port only: it serves operators on this host, never the
// network. One thread; every connection has a deadline, so a slow or
// silent client cannot hold it; requests are parsed by http-parser.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "agent/metrics.hpp"
#include "common/result.hpp"

namespace gh::agent {

struct LocalHttpOptions {
  // From accept to the last byte of the answer; then the connection is dropped.
  std::chrono::milliseconds client_timeout{5000};
  // /health answers 503 when the control plane has not answered for this long.
  std::chrono::seconds stale_after{180};
  size_t max_request_bytes = 8192;  // request line and headers; over it: 431
  size_t max_clients = 32;          // connections open at once; more wait in the backlog
};

class LocalHttpServer {
 public:
  // `listen`: "unix:/abs/path" (a fresh socket, mode 0660; a stale socket
  // there is replaced, anything else is refused), "127.0.0.1:PORT" (any
  // 127.0.0.0/8 address) or "[::1]:PORT"; PORT 0 picks a free one.
  // `metrics` must outlive the server.
  static Result<std::unique_ptr<LocalHttpServer>> start(const std::string& listen, const Metrics& metrics,
                                                        LocalHttpOptions options = {});
  ~LocalHttpServer();
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;

  // Stops serving, closes every connection, removes the unix socket. Idempotent.
  void stop();
  int port() const { return port_; }  // the bound TCP port; 0 on a unix socket
  const std::string& unix_path() const { return unix_path_; }

 private:
  LocalHttpServer(const Metrics& m, LocalHttpOptions o) : metrics_(m), options_(o) {}
  void loop();

  const Metrics& metrics_;
  LocalHttpOptions options_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() wakes the loop
  int port_ = 0;
  std::string unix_path_;
  dev_t unix_dev_ = 0;
  ino_t unix_ino_ = 0;
  std::thread thread_;
};

// The answer to one parsed request (exposed for tests): status, content
// type and body.
struct HttpAnswer {
  int status = 200;
  std::string content_type;
  std::string body;
};
HttpAnswer route_request(const std::string& method, const std::string& path, const Metrics& m,
                         const LocalHttpOptions& o);

}  // namespace gh::agent

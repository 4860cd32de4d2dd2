// HTTP framing between the job, the proxy and the daemon. Requests from the
// job are hostile: they are read with http-parser, bounded in size and in
// time, and every framing or header ambiguity that could make the proxy and
// the daemon (Go net/http) see different requests is refused. Requests are
// never passed through: the proxy sends a head it wrote itself
// (serialise_request_head) with only the headers the daemon needs.
#pragma once

#include <http_parser.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "docker/proxy.hpp"
#include "docker/target.hpp"

namespace gh::docker {

struct RequestLimits {
  size_t max_head = 64 * 1024;                          // request line and headers
  size_t max_body = 1 << 20;                            // for body(); body_piece() takes its own bound
  std::chrono::milliseconds head_timeout{30000};        // for the whole head, so a slow client cannot hold it open
  std::chrono::milliseconds body_idle_timeout{30000};   // between two reads of the body
};

struct RequestHead {
  std::string method;      // "GET", "POST", "HEAD", "PUT", "DELETE", ...
  std::string raw_target;  // as sent
  Target target;           // parse_target(raw_target)
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed, in order
  const std::string* header(std::string_view lower_name) const;
  bool chunked = false;
  std::optional<uint64_t> content_length;
  bool has_body() const { return chunked || (content_length && *content_length > 0); }
  // Connection: Upgrade with Upgrade: tcp (attach, exec start) or h2c
  // (BuildKit's /session and /grpc); the protocol is header("upgrade").
  bool upgrade = false;
};

// Reads one request from a connected socket. The parser stays alive from
// head() to the end of the body, and nothing read past the end of the
// request is dropped: take_leftover() hands it on (pipelined requests, or
// the job's side of an upgraded stream).
class RequestReader {
 public:
  RequestReader(int fd, RequestLimits limits);
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  // Reads until the head is complete. Refusals: 431 "head-too-large";
  // 400 "http-syntax", "http-version", "header-duplicate", "framing",
  // "expect", "upgrade", "incomplete", or any of parse_target's; 403
  // "form-body".
  Checked<RequestHead> head();
  // The whole body, de-chunked, at most limits.max_body (413 "body-too-large").
  Checked<std::string> body();
  // The next de-chunked piece of the body into `out` (cleared first):
  // true with a non-empty piece, false at the end of the body. `max_total`
  // bounds the whole body (413 "body-too-large").
  Checked<bool> body_piece(std::string& out, uint64_t max_total);
  // Bytes read past the end of this request; meaningful once the body is
  // read (for a request without a body, once head() returned).
  std::string take_leftover();

 private:
  struct Glue;  // http-parser's callbacks
  friend struct Glue;

  std::optional<Refusal> read_more(std::chrono::steady_clock::time_point deadline);
  std::optional<Refusal> feed_body(uint64_t max_total);
  std::optional<Refusal> check_head(RequestHead& h) const;

  int fd_;
  RequestLimits limits_;
  http_parser parser_{};
  std::string buf_;  // read from fd_, not yet taken by the parser
  size_t head_bytes_ = 0;
  std::string raw_head_;  // what the parser took for the head (line folding is checked on it)

  // Filled by the callbacks.
  RequestHead head_;
  bool header_in_value_ = false;
  bool head_done_ = false;
  bool message_done_ = false;
  std::string* sink_ = nullptr;  // where on_body appends
  uint64_t body_total_ = 0;
  uint64_t body_limit_ = 0;
  bool body_over_limit_ = false;

  std::optional<Refusal> failed_;  // once refused, always refused
  bool head_returned_ = false;
};

struct ResponseHead {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  const std::string* header(std::string_view lower_name) const;
  bool chunked = false;
  std::optional<uint64_t> content_length;
  // Status 101, or a Content-Type of application/vnd.docker.raw-stream or
  // application/vnd.docker.multiplexed-stream: bytes flow both ways until
  // either side closes.
  bool raw_stream() const;
};

// Reads the daemon's response head (at most 64 KiB, within `timeout`).
// `rest` receives the bytes read after the head: the start of the body,
// verbatim, chunk framing intact. Refusals are 502 "upstream-syntax",
// "upstream-head-too-large", "upstream-incomplete".
Checked<ResponseHead> read_response_head(int fd, std::string& rest, std::chrono::milliseconds timeout);

// The head for the job: status line, the daemon's headers except the
// hop-by-hop ones, then "Connection: close" (or, for 101, "Connection:
// Upgrade" and the daemon's Upgrade protocol, "tcp" when it named none).
std::string serialise_response_head(const ResponseHead& head);

// A complete answer with a JSON body {"message": message} and Connection: close.
std::string json_answer(int status, const std::string& message);
// json_answer for a refusal, in the wording proxy.hpp documents:
// "gatehouse docker proxy: <message> (rule <rule>)".
std::string refusal_answer(const Refusal& r);

// The request head for the daemon: method, the re-encoded versioned target,
// "Host: docker", the headers the daemon needs (content-type,
// x-registry-auth, x-registry-config, user-agent; connection and upgrade
// for an upgrade, else "Connection: close") and the body framing the caller
// chose: Transfer-Encoding: chunked when `chunked_body`, else Content-Length
// when `content_length` is set, else none.
std::string serialise_request_head(const RequestHead& head, std::optional<uint64_t> content_length, bool chunked_body);

}  // namespace gh::docker

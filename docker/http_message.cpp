#include "docker/http_message.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/http_reason.hpp"

namespace gh::docker {
namespace {

using Clock = std::chrono::steady_clock;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kReadSize = 64 * 1024;
constexpr size_t kMaxResponseHead = 64 * 1024;

char lower_char(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower_char);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7f;
  });
}

// Lower-cased media type without parameters, as Go's mime.ParseMediaType reads it.
std::string media_type(std::string_view content_type) {
  return lower(trim(content_type.substr(0, content_type.find(';'))));
}

const std::string* find_header(const HeaderList& headers, std::string_view lower_name) {
  for (const auto& [name, value] : headers)
    if (name == lower_name) return &value;
  return nullptr;
}

size_t count_header(const HeaderList& headers, std::string_view lower_name) {
  return static_cast<size_t>(std::count_if(headers.begin(), headers.end(), [&](const auto& h) { return h.first == lower_name; }));
}

// http-parser hands over names and values in pieces; a new name starts
// once a value has been seen.
void on_field_piece(HeaderList& headers, bool& in_value, const char* at, size_t len) {
  if (in_value || headers.empty()) headers.emplace_back();
  in_value = false;
  headers.back().first.append(at, len);
}

void on_value_piece(HeaderList& headers, bool& in_value, const char* at, size_t len) {
  if (headers.empty()) headers.emplace_back();
  in_value = true;
  headers.back().second.append(at, len);
}

// Idempotent, so it can run both at the end of the head and on an error.
void normalise_headers(HeaderList& headers) {
  for (auto& [name, value] : headers) {
    name = lower(name);
    value = std::string(trim(value));
  }
}

enum class Got { data, eof, timeout, error };

// Appends what one read brings, waiting until `deadline` at most.
Got read_some(int fd, std::string& buf, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Got::timeout;
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Got::error;
    if (n == 0) continue;  // the deadline check above ends it
    size_t old = buf.size();
    buf.resize(old + kReadSize);
    ssize_t r = recv(fd, buf.data() + old, kReadSize, MSG_DONTWAIT);
    if (r < 0 && errno == ENOTSOCK) r = read(fd, buf.data() + old, kReadSize);
    buf.resize(old + static_cast<size_t>(std::max<ssize_t>(r, 0)));
    if (r > 0) return Got::data;
    if (r == 0) return Got::eof;
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return Got::error;
  }
}

Refusal bad(std::string rule, std::string message) { return refuse(std::move(rule), std::move(message), 400); }

// Headers the proxy reads or forwards, where a second copy would leave it
// to each reader which one counts.
constexpr std::string_view kSingleHeaders[] = {"content-length", "transfer-encoding", "content-type",
                                               "host",           "connection",        "upgrade",
                                               "expect",         "x-registry-auth",   "x-registry-config"};

// Checks that also explain some of http-parser's errors (two
// Content-Lengths, Content-Length with Transfer-Encoding), so they run on
// whatever headers were collected when the parser stopped.
std::optional<Refusal> framing_refusal(const HeaderList& headers) {
  for (auto name : kSingleHeaders)
    if (count_header(headers, name) > 1)
      return bad("header-duplicate", "the header `" + std::string(name) + "` is given more than once");
  const std::string* te = find_header(headers, "transfer-encoding");
  if (te && find_header(headers, "content-length"))
    return bad("framing", "the request has both Content-Length and Transfer-Encoding; send one");
  if (te && lower(*te) != "chunked")
    return bad("framing", "Transfer-Encoding `" + *te + "` is not supported; only `chunked` is");
  return std::nullopt;
}

std::string canonical_name(std::string_view lower_name) {
  std::string out(lower_name);
  bool start = true;
  for (char& c : out) {
    if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    start = c == '-';
  }
  return out;
}

}  // namespace

const std::string* RequestHead::header(std::string_view lower_name) const { return find_header(headers, lower_name); }
const std::string* ResponseHead::header(std::string_view lower_name) const { return find_header(headers, lower_name); }

bool ResponseHead::raw_stream() const {
  if (status == 101) return true;
  const std::string* ct = header("content-type");
  if (!ct) return false;
  std::string mt = media_type(*ct);
  return mt == "application/vnd.docker.raw-stream" || mt == "application/vnd.docker.multiplexed-stream";
}

struct RequestReader::Glue {
  static RequestReader& of(http_parser* p) { return *static_cast<RequestReader*>(p->data); }

  static int on_url(http_parser* p, const char* at, size_t len) {
    of(p).head_.raw_target.append(at, len);
    return 0;
  }
  // After the head these are chunked trailers: never forwarded, so ignored.
  static int on_header_field(http_parser* p, const char* at, size_t len) {
    RequestReader& r = of(p);
    if (!r.head_done_) on_field_piece(r.head_.headers, r.header_in_value_, at, len);
    return 0;
  }
  static int on_header_value(http_parser* p, const char* at, size_t len) {
    RequestReader& r = of(p);
    if (!r.head_done_) on_value_piece(r.head_.headers, r.header_in_value_, at, len);
    return 0;
  }
  // The pause leaves the head's last byte unconsumed; resuming takes it.
  static int on_headers_complete(http_parser* p) {
    of(p).head_done_ = true;
    http_parser_pause(p, 1);
    return 0;
  }
  static int on_chunk_header(http_parser* p) {
    RequestReader& r = of(p);
    if (p->content_length > r.body_limit_ - r.body_total_) {
      r.body_over_limit_ = true;
      return -1;
    }
    return 0;
  }
  static int on_body(http_parser* p, const char* at, size_t len) {
    RequestReader& r = of(p);
    if (len > r.body_limit_ - r.body_total_ || !r.sink_) {
      r.body_over_limit_ = true;
      return -1;
    }
    r.body_total_ += len;
    r.sink_->append(at, len);
    return 0;
  }
  // Paused so that a pipelined request stays unparsed for take_leftover().
  static int on_message_complete(http_parser* p) {
    of(p).message_done_ = true;
    http_parser_pause(p, 1);
    return 0;
  }

  static const http_parser_settings& settings() {
    static const http_parser_settings s = [] {
      http_parser_settings v;
      http_parser_settings_init(&v);
      v.on_url = on_url;
      v.on_header_field = on_header_field;
      v.on_header_value = on_header_value;
      v.on_headers_complete = on_headers_complete;
      v.on_chunk_header = on_chunk_header;
      v.on_body = on_body;
      v.on_message_complete = on_message_complete;
      return v;
    }();
    return s;
  }
};

RequestReader::RequestReader(int fd, RequestLimits limits) : fd_(fd), limits_(limits) {
  http_parser_init(&parser_, HTTP_REQUEST);
}

std::optional<Refusal> RequestReader::read_more(Clock::time_point deadline) {
  switch (read_some(fd_, buf_, deadline)) {
    case Got::data: return std::nullopt;
    case Got::eof:
      return bad("incomplete", head_done_ ? "the connection closed before the request body was complete"
                                          : "the connection closed before the request head was complete");
    case Got::timeout:
      return bad("incomplete", head_done_ ? "the request body stalled; timed out waiting for it"
                                          : "timed out waiting for the request head");
    case Got::error: return bad("incomplete", std::string("reading the request failed: ") + strerror(errno));
  }
  return bad("incomplete", "reading the request failed");
}

std::optional<Refusal> RequestReader::check_head(RequestHead& h) const {
  if (parser_.http_major != 1 || parser_.http_minor != 1)
    return bad("http-version", "the proxy speaks HTTP/1.1 only, not HTTP/" + std::to_string(parser_.http_major) + "." +
                                   std::to_string(parser_.http_minor));
  // Readers differ on folded lines (joined with a space, or refused).
  if (raw_head_.find("\n ") != std::string::npos || raw_head_.find("\n\t") != std::string::npos)
    return bad("http-syntax", "the request folds a header over several lines (obsolete line folding)");
  for (const auto& [name, value] : h.headers)
    if (name.empty() || has_control(name) || has_control(value) || name.find_first_of(" \t") != std::string::npos)
      return bad("http-syntax", "the header `" + name + "` has a control character in its name or value");
  if (auto r = framing_refusal(h.headers)) return r;
  // What the parser framed the body by must be what we checked.
  if (h.chunked != (h.header("transfer-encoding") != nullptr) ||
      h.content_length.has_value() != (h.header("content-length") != nullptr))
    return bad("framing", "the request's body framing is ambiguous");
  if (h.header("expect"))
    return bad("expect", "the `Expect` header is not supported; send the body with the request");
  auto target = parse_target(h.raw_target);
  if (!target) return target.error();
  h.target = std::move(*target);
  if (const std::string* ct = h.header("content-type")) {
    std::string lowered = lower(*ct);
    // A substring, not the parsed media type: Go trims Unicode spaces we
    // would not, and a false match only costs a JSON client nothing.
    if (lowered.find("application/x-www-form-urlencoded") != std::string::npos ||
        lowered.find("multipart/form-data") != std::string::npos)
      return refuse("form-body",
                    "form bodies (" + *ct +
                        ") are refused: the daemon merges a form body into the query parameters, which the proxy "
                        "checks; send parameters in the query and JSON in the body");
  }
  if (h.upgrade) {
    const std::string* proto = h.header("upgrade");
    std::string p = proto ? lower(*proto) : "";
    if (p != "tcp" && p != "h2c")
      return bad("upgrade", "upgrading to `" + p + "` is not supported; the daemon's streams use `tcp` or `h2c`");
  }
  return std::nullopt;
}

Checked<RequestHead> RequestReader::head() {
  if (failed_) return *failed_;
  if (head_returned_) return head_;
  auto fail = [this](Refusal r) -> Refusal {
    failed_ = r;
    return r;
  };
  const auto deadline = Clock::now() + limits_.head_timeout;
  while (!head_done_) {
    if (buf_.empty())
      if (auto r = read_more(deadline)) return fail(*r);
    parser_.data = this;
    size_t n = http_parser_execute(&parser_, &Glue::settings(), buf_.data(), buf_.size());
    raw_head_.append(buf_, 0, n);
    head_bytes_ += n;
    buf_.erase(0, n);
    auto e = HTTP_PARSER_ERRNO(&parser_);
    if (e == HPE_HEADER_OVERFLOW || head_bytes_ > limits_.max_head)
      return fail(refuse("head-too-large",
                         "the request line and headers are limited to " + std::to_string(limits_.max_head) + " bytes",
                         431));
    if (e != HPE_OK && e != HPE_PAUSED) {
      normalise_headers(head_.headers);
      if (auto r = framing_refusal(head_.headers)) return fail(*r);
      return fail(bad("http-syntax", std::string("the request is malformed: ") + http_errno_description(e)));
    }
    if (!head_done_ && n == 0) return fail(bad("http-syntax", "the parser made no progress"));
  }
  http_parser_pause(&parser_, 0);
  normalise_headers(head_.headers);
  head_.method = http_method_str(static_cast<http_method>(parser_.method));
  head_.chunked = (parser_.flags & F_CHUNKED) != 0;
  if (parser_.flags & F_CONTENTLENGTH) head_.content_length = parser_.content_length;
  head_.upgrade = parser_.upgrade != 0;
  if (auto r = check_head(head_)) return fail(*r);
  // Without a body the request ends with the byte the pause left; taking
  // it now makes take_leftover() exact.
  if (!head_.has_body()) {
    std::string none;
    sink_ = &none;
    body_limit_ = 0;
    while (!message_done_)
      if (auto r = feed_body(0)) return fail(*r);
    sink_ = nullptr;
  }
  head_returned_ = true;
  return head_;
}

std::optional<Refusal> RequestReader::feed_body(uint64_t max_total) {
  if (buf_.empty())
    if (auto r = read_more(Clock::now() + limits_.body_idle_timeout)) return r;
  parser_.data = this;
  size_t n = http_parser_execute(&parser_, &Glue::settings(), buf_.data(), buf_.size());
  buf_.erase(0, n);
  auto e = HTTP_PARSER_ERRNO(&parser_);
  if (body_over_limit_)
    return refuse("body-too-large", "the request body is limited to " + std::to_string(max_total) + " bytes", 413);
  if (e != HPE_OK && e != HPE_PAUSED)
    return bad("http-syntax", std::string("the request body is malformed: ") + http_errno_description(e));
  if (!message_done_ && n == 0) return bad("http-syntax", "the parser made no progress in the body");
  return std::nullopt;
}

Checked<bool> RequestReader::body_piece(std::string& out, uint64_t max_total) {
  out.clear();
  if (!head_returned_) {
    auto h = head();
    if (!h) return h.error();
  }
  if (failed_) return *failed_;
  if (message_done_) return false;
  if (head_.content_length && *head_.content_length > max_total) {
    failed_ = refuse("body-too-large", "the request body is limited to " + std::to_string(max_total) + " bytes", 413);
    return *failed_;
  }
  sink_ = &out;
  body_limit_ = max_total;
  while (out.empty() && !message_done_) {
    if (auto r = feed_body(max_total)) {
      sink_ = nullptr;
      out.clear();
      failed_ = *r;
      return *r;
    }
  }
  sink_ = nullptr;
  return !out.empty();
}

Checked<std::string> RequestReader::body() {
  std::string all, piece;
  for (;;) {
    auto more = body_piece(piece, limits_.max_body);
    if (!more) return more.error();
    if (!*more) return all;
    all += piece;
  }
}

std::string RequestReader::take_leftover() { return std::exchange(buf_, std::string()); }

namespace {

struct ResponseCollector {
  ResponseHead head;
  bool in_value = false;
  bool done = false;

  static ResponseCollector& of(http_parser* p) { return *static_cast<ResponseCollector*>(p->data); }
  static int on_header_field(http_parser* p, const char* at, size_t len) {
    on_field_piece(of(p).head.headers, of(p).in_value, at, len);
    return 0;
  }
  static int on_header_value(http_parser* p, const char* at, size_t len) {
    on_value_piece(of(p).head.headers, of(p).in_value, at, len);
    return 0;
  }
  static int on_headers_complete(http_parser* p) {
    of(p).done = true;
    http_parser_pause(p, 1);
    return 0;
  }
};

Refusal upstream(std::string rule, std::string message) {
  return refuse(std::move(rule), "the daemon's answer: " + std::move(message), 502);
}

}  // namespace

Checked<ResponseHead> read_response_head(int fd, std::string& rest, std::chrono::milliseconds timeout) {
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_header_field = ResponseCollector::on_header_field;
  settings.on_header_value = ResponseCollector::on_header_value;
  settings.on_headers_complete = ResponseCollector::on_headers_complete;
  http_parser parser{};
  http_parser_init(&parser, HTTP_RESPONSE);
  ResponseCollector c;
  parser.data = &c;
  rest.clear();
  std::string buf;
  size_t head_bytes = 0;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (buf.empty()) {
      switch (read_some(fd, buf, deadline)) {
        case Got::data: break;
        case Got::eof: return upstream("upstream-incomplete", "the daemon closed the connection before its answer");
        case Got::timeout: return upstream("upstream-incomplete", "timed out waiting for the daemon");
        case Got::error: return upstream("upstream-incomplete", std::string("reading failed: ") + strerror(errno));
      }
    }
    size_t n = http_parser_execute(&parser, &settings, buf.data(), buf.size());
    head_bytes += n;
    if (head_bytes > kMaxResponseHead) return upstream("upstream-head-too-large", "the head is over 64 KiB");
    if (c.done) {
      // Paused on the head's last byte: the body starts after it.
      rest = buf.substr(n + 1);
      break;
    }
    auto e = HTTP_PARSER_ERRNO(&parser);
    if (e != HPE_OK) return upstream("upstream-syntax", http_errno_description(e));
    if (n == 0) return upstream("upstream-syntax", "the parser made no progress");
    buf.erase(0, n);
  }
  normalise_headers(c.head.headers);
  for (const auto& [name, value] : c.head.headers)
    if (has_control(name) || has_control(value))
      return upstream("upstream-syntax", "the header `" + name + "` has a control character");
  c.head.status = static_cast<int>(parser.status_code);
  c.head.chunked = (parser.flags & F_CHUNKED) != 0;
  if (parser.flags & F_CONTENTLENGTH) c.head.content_length = parser.content_length;
  return std::move(c.head);
}

std::string serialise_response_head(const ResponseHead& head) {
  const bool switching = head.status == 101;
  std::string out = "HTTP/1.1 " + std::to_string(head.status) + " " + gh::http_reason(head.status) + "\r\n";
  for (const auto& [name, value] : head.headers) {
    if (name == "connection" || name == "keep-alive" || name == "proxy-connection") continue;
    if (switching && name == "upgrade") continue;
    if (has_control(name) || has_control(value)) continue;  // never a line break of the daemon's into the job's stream
    out += canonical_name(name) + ": " + value + "\r\n";
  }
  if (switching) {
    const std::string* proto = head.header("upgrade");
    out += "Connection: Upgrade\r\nUpgrade: " + (proto && !has_control(*proto) ? *proto : std::string("tcp")) + "\r\n";
  } else {
    out += "Connection: close\r\n";
  }
  return out + "\r\n";
}

std::string json_answer(int status, const std::string& message) {
  // replace: a message quoting the job's bytes need not be valid UTF-8.
  std::string body = nlohmann::json{{"message", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  body += '\n';
  return "HTTP/1.1 " + std::to_string(status) + " " + gh::http_reason(status) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

std::string refusal_answer(const Refusal& r) {
  return json_answer(r.status, "gatehouse docker proxy: " + r.message + " (rule " + r.rule + ")");
}

std::string serialise_request_head(const RequestHead& head, std::optional<uint64_t> content_length, bool chunked_body) {
  std::string out = head.method + " " + head.target.upstream_target() + " HTTP/1.1\r\nHost: docker\r\n";
  for (std::string_view name : {"content-type", "x-registry-auth", "x-registry-config", "user-agent"})
    if (const std::string* v = head.header(name)) out += canonical_name(name) + ": " + *v + "\r\n";
  if (head.upgrade) {
    const std::string* proto = head.header("upgrade");
    out += "Connection: Upgrade\r\nUpgrade: " + (proto ? *proto : std::string("tcp")) + "\r\n";
  } else {
    out += "Connection: close\r\n";
  }
  if (chunked_body)
    out += "Transfer-Encoding: chunked\r\n";
  else if (content_length)
    out += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  return out + "\r\n";
}

}  // namespace gh::docker

// The docker proxy's HTTP layer: every refusal fires with its rule name,
// and what the Docker CLI really sends gets through.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "docker/http_message.hpp"
#include "docker/target.hpp"

using namespace gh::docker;
using namespace std::chrono_literals;

namespace {

// Bytes for a RequestReader: written from a thread (large inputs would
// fill the socket buffer), then the write side is shut unless kept open.
class Feed {
 public:
  explicit Feed(std::string bytes, bool keep_open = false) {
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_) == 0);
    writer_ = std::thread([this, b = std::move(bytes), keep_open] {
      size_t off = 0;
      while (off < b.size()) {
        ssize_t n = send(fds_[0], b.data() + off, b.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      if (!keep_open) shutdown(fds_[0], SHUT_WR);
    });
  }
  ~Feed() {
    close(fds_[1]);  // a writer blocked on a refused request gets EPIPE
    writer_.join();
    close(fds_[0]);
  }
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;
  int fd() const { return fds_[1]; }
  int peer() const { return fds_[0]; }

 private:
  int fds_[2] = {-1, -1};
  std::thread writer_;
};

template <typename T>
std::string rule_of(const Checked<T>& c) {
  return c.ok() ? std::string("<accepted>") : c.error().rule;
}

template <typename T>
int status_of(const Checked<T>& c) {
  return c.ok() ? 0 : c.error().status;
}

std::string head_rule(const std::string& bytes, RequestLimits limits = {}) {
  Feed f(bytes);
  RequestReader r(f.fd(), limits);
  return rule_of(r.head());
}

std::string body_rule(const std::string& bytes, RequestLimits limits = {}) {
  Feed f(bytes);
  RequestReader r(f.fd(), limits);
  auto h = r.head();
  if (!h) return "head:" + h.error().rule;
  return rule_of(r.body());
}

const std::string kCreate =
    "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nUser-Agent: Docker-Client/20.10.24+dfsg1 (linux)\r\n"
    "Content-Length: 2\r\nContent-Type: application/json\r\n\r\n{}";

std::string post_with(const std::string& headers, const std::string& body = "") {
  return "POST /v1.41/build HTTP/1.1\r\nHost: docker\r\n" + headers + "\r\n" + body;
}

}  // namespace

TEST_CASE("the Docker CLI's container create is read with its body") {
  Feed f(kCreate);
  RequestReader r(f.fd(), {});
  auto h = r.head();
  REQUIRE_MESSAGE(h.ok(), rule_of(h));
  CHECK(h->method == "POST");
  CHECK(h->raw_target == "/v1.41/containers/create");
  CHECK(h->target.versioned);
  CHECK(h->target.segments == std::vector<std::string>{"containers", "create"});
  REQUIRE(h->header("user-agent"));
  CHECK(*h->header("user-agent") == "Docker-Client/20.10.24+dfsg1 (linux)");
  CHECK(*h->header("content-type") == "application/json");
  CHECK(h->content_length == 2u);
  CHECK_FALSE(h->chunked);
  CHECK(h->has_body());
  CHECK_FALSE(h->upgrade);
  auto b = r.body();
  REQUIRE(b.ok());
  CHECK(*b == "{}");
  CHECK(r.take_leftover().empty());
}

TEST_CASE("HEAD /_ping is unversioned and has no body") {
  Feed f("HEAD /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: Docker-Client/20.10.24+dfsg1 (linux)\r\n\r\n");
  RequestReader r(f.fd(), {});
  auto h = r.head();
  REQUIRE_MESSAGE(h.ok(), rule_of(h));
  CHECK(h->method == "HEAD");
  CHECK_FALSE(h->target.versioned);
  CHECK(h->target.segments == std::vector<std::string>{"_ping"});
  CHECK(h->target.upstream_target() == "/v1.41/_ping");
  CHECK_FALSE(h->has_body());
  auto b = r.body();
  REQUIRE(b.ok());
  CHECK(b->empty());
}

TEST_CASE("Content-Length: 0 is an empty body") {
  Feed f(post_with("Content-Length: 0\r\n"));
  RequestReader r(f.fd(), {});
  auto h = r.head();
  REQUIRE(h.ok());
  CHECK(h->content_length == 0u);
  CHECK_FALSE(h->has_body());
  auto b = r.body();
  REQUIRE(b.ok());
  CHECK(b->empty());
}

TEST_CASE("a chunked body is de-chunked, chunk extensions and trailers dropped") {
  Feed f(post_with("Transfer-Encoding: chunked\r\nContent-Type: application/x-tar\r\n",
                   "5;name=value\r\nhello\r\n1\r\n \r\nA;x\r\nchunk-body\r\n0\r\nX-Trailer: t\r\n\r\n"));
  RequestReader r(f.fd(), {});
  auto h = r.head();
  REQUIRE_MESSAGE(h.ok(), rule_of(h));
  CHECK(h->chunked);
  CHECK_FALSE(h->content_length);
  CHECK(h->has_body());
  auto b = r.body();
  REQUIRE_MESSAGE(b.ok(), rule_of(b));
  CHECK(*b == "hello chunk-body");
  CHECK_FALSE(h->header("x-trailer"));
  CHECK(r.take_leftover().empty());
}

TEST_CASE("Transfer-Encoding is read case-insensitively") {
  Feed f(post_with("Transfer-Encoding: Chunked\r\n", "2\r\nok\r\n0\r\n\r\n"));
  RequestReader r(f.fd(), {});
  REQUIRE(r.head().ok());
  auto b = r.body();
  REQUIRE(b.ok());
  CHECK(*b == "ok");
}

TEST_CASE("a body over the limit is refused with 413") {
  RequestLimits small;
  small.max_body = 10;
  std::string eleven(11, 'x');
  CHECK(body_rule(post_with("Content-Length: 11\r\n", eleven), small) == "body-too-large");
  CHECK(body_rule(post_with("Transfer-Encoding: chunked\r\n", "b\r\n" + eleven + "\r\n0\r\n\r\n"), small) ==
        "body-too-large");
  CHECK(body_rule(post_with("Transfer-Encoding: chunked\r\n", "6\r\nxxxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n"), small) ==
        "body-too-large");
  CHECK(body_rule(post_with("Content-Length: 10\r\n", std::string(10, 'x')), small) == "<accepted>");
  Feed f(post_with("Content-Length: 11\r\n", eleven));
  RequestReader r(f.fd(), small);
  REQUIRE(r.head().ok());
  CHECK(status_of(r.body()) == 413);
}

TEST_CASE("body_piece streams a large body within its own bound") {
  std::string body;
  std::string chunked;
  for (int i = 0; i < 40; ++i) {
    std::string piece(10000, static_cast<char>('a' + i % 26));
    body += piece;
    chunked += "2710\r\n" + piece + "\r\n";
  }
  chunked += "0\r\n\r\n";
  {
    Feed f(post_with("Transfer-Encoding: chunked\r\n", chunked));
    RequestReader r(f.fd(), {});
    REQUIRE(r.head().ok());
    std::string got, piece;
    int pieces = 0;
    for (;;) {
      auto more = r.body_piece(piece, 1 << 20);
      REQUIRE_MESSAGE(more.ok(), rule_of(more));
      if (!*more) break;
      CHECK_FALSE(piece.empty());
      got += piece;
      ++pieces;
    }
    CHECK(got == body);
    CHECK(pieces > 1);
    CHECK(piece.empty());
  }
  {
    Feed f(post_with("Content-Length: " + std::to_string(body.size()) + "\r\n", body));
    RequestReader r(f.fd(), {});
    REQUIRE(r.head().ok());
    std::string got, piece;
    for (;;) {
      auto more = r.body_piece(piece, 1 << 20);
      REQUIRE(more.ok());
      if (!*more) break;
      got += piece;
    }
    CHECK(got == body);
  }
  {
    Feed f(post_with("Transfer-Encoding: chunked\r\n", chunked));
    RequestReader r(f.fd(), {});
    REQUIRE(r.head().ok());
    std::string piece;
    Checked<bool> more = true;
    while (more.ok() && *more) more = r.body_piece(piece, 100000);
    CHECK(rule_of(more) == "body-too-large");
  }
}

TEST_CASE("form bodies are refused with 403 form-body") {
  for (const char* ct : {"application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
                         "Application/X-WWW-Form-URLEncoded; charset=UTF-8", "MULTIPART/FORM-DATA",
                         "  application/x-www-form-urlencoded  ;charset=utf-8", "multipart/form-data\t; boundary=\"a\""}) {
    CAPTURE(ct);
    Feed f(post_with(std::string("Content-Type: ") + ct + "\r\nContent-Length: 3\r\n", "a=b"));
    RequestReader r(f.fd(), {});
    auto h = r.head();
    CHECK(rule_of(h) == "form-body");
    CHECK(status_of(h) == 403);
    if (!h.ok()) CHECK(h.error().message.find("merges") != std::string::npos);
  }
  CHECK(head_rule(post_with("Content-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\n", "{}")) ==
        "<accepted>");
}

TEST_CASE("body framing ambiguities are refused") {
  CHECK(head_rule(post_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n")) == "framing");
  CHECK(head_rule(post_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n")) == "framing");
  CHECK(head_rule(post_with("Transfer-Encoding: gzip\r\n", "xx")) == "framing");
  CHECK(head_rule(post_with("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n")) == "framing");
  CHECK(head_rule(post_with("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n")) == "framing");
  CHECK(head_rule(post_with("Content-Length: 2\r\nContent-Length: 2\r\n", "{}")) == "header-duplicate");
  CHECK(head_rule(post_with("Content-Length: 2\r\ncontent-length: 3\r\n", "{}")) == "header-duplicate");
  CHECK(head_rule(post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n")) ==
        "header-duplicate");
  CHECK(head_rule("GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == "header-duplicate");
  CHECK(head_rule(post_with("X-Registry-Auth: a\r\nX-Registry-Auth: b\r\n")) == "header-duplicate");
  CHECK(head_rule(post_with("Content-Type: application/json\r\nContent-Type: text/plain\r\n")) == "header-duplicate");
  auto status = [](const std::string& bytes) {
    Feed f(bytes);
    RequestReader r(f.fd(), {});
    return status_of(r.head());
  };
  CHECK(status(post_with("Transfer-Encoding: gzip\r\n")) == 400);
}

TEST_CASE("the head is bounded") {
  std::string big = "GET /_ping HTTP/1.1\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n";
  CHECK(head_rule(big) == "head-too-large");
  Feed f(big);
  RequestReader r(f.fd(), {});
  CHECK(status_of(r.head()) == 431);
  RequestLimits small;
  small.max_head = 100;
  CHECK(head_rule("GET /_ping HTTP/1.1\r\nX-A: " + std::string(100, 'a') + "\r\n\r\n", small) == "head-too-large");
  CHECK(head_rule("GET /_ping HTTP/1.1\r\nX-A: a\r\n\r\n", small) == "<accepted>");
}

TEST_CASE("other HTTP versions, Expect and malformed heads are refused") {
  CHECK(head_rule("GET /_ping HTTP/1.0\r\n\r\n") == "http-version");
  CHECK(head_rule("GET /_ping HTTP/2.0\r\n\r\n") == "http-version");
  CHECK(head_rule(post_with("Expect: 100-continue\r\nContent-Length: 2\r\n", "{}")) == "expect");
  CHECK(head_rule("GARBAGE\r\n\r\n") == "http-syntax");
  CHECK(head_rule("GET /_ping HTTP/1.1\r\nX-A: a\x01z\r\n\r\n") == "http-syntax");
  CHECK(head_rule("GET /_ping HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n") == "http-syntax");
  CHECK(head_rule(post_with("Content-Length: 2x\r\n", "{}")) == "http-syntax");
  Feed f("GARBAGE\r\n\r\n");
  RequestReader r(f.fd(), {});
  auto h = r.head();
  REQUIRE_FALSE(h.ok());
  CHECK(h.error().message.find("invalid") != std::string::npos);
}

TEST_CASE("a head cut short by EOF or a timeout is incomplete") {
  CHECK(head_rule("") == "incomplete");
  CHECK(head_rule("GET /_ping HTTP/1.1\r\nHost: do") == "incomplete");
  {
    Feed f("GET /_ping HTTP/1.1\r\n", true);
    RequestLimits quick;
    quick.head_timeout = 50ms;
    RequestReader r(f.fd(), quick);
    auto h = r.head();
    CHECK(rule_of(h) == "incomplete");
    CHECK(status_of(h) == 400);
    shutdown(f.peer(), SHUT_WR);
  }
  CHECK(body_rule(post_with("Content-Length: 10\r\n", "short")) == "incomplete");
  CHECK(body_rule(post_with("Transfer-Encoding: chunked\r\n", "5\r\nhel")) == "incomplete");
}

TEST_CASE("the target rules fire through the reader") {
  CHECK(head_rule("GET http://host/v1.41/containers/json HTTP/1.1\r\n\r\n") == "target-form");
  CHECK(head_rule("GET /v1.44/containers/json HTTP/1.1\r\n\r\n") == "api-version");
  CHECK(head_rule("GET /v1.41/containers/%2e%2e/json HTTP/1.1\r\n\r\n") == "path-dot-segment");
}

TEST_CASE("parse_target refuses ambiguous targets by rule") {
  struct Case {
    std::string target, rule;
  };
  const Case cases[] = {
      {"//containers/json", "path-empty-segment"},
      {"/v1.41//containers/json", "path-empty-segment"},
      {"/containers//json", "path-empty-segment"},
      {"/containers/json/", "path-empty-segment"},
      {"/", "path-empty-segment"},
      {"/containers/./json", "path-dot-segment"},
      {"/containers/../json", "path-dot-segment"},
      {"/v1.41/containers/%2e%2e/json", "path-dot-segment"},
      {"/v1.41/containers/%2E/json", "path-dot-segment"},
      {"/v1.41/containers/.%2E/json", "path-dot-segment"},
      {"/containers/a%2Fb/json", "path-encoding"},
      {"/containers/a%2fb/json", "path-encoding"},
      {"/containers/a%00/json", "path-encoding"},
      {"/containers/a%5Cb/json", "path-encoding"},
      {"/containers/a%5cb/json", "path-encoding"},
      {"/containers/a\\b/json", "path-encoding"},
      {"/containers/a%0a/json", "path-encoding"},
      {"/containers/a%7f/json", "path-encoding"},
      {"/containers/%C3%A9/json", "path-encoding"},
      {"/containers/a%zz/json", "path-encoding"},
      {"/containers/a%4", "path-encoding"},
      {"/containers/a%", "path-encoding"},
      {"http://host/v1.41/x", "target-form"},
      {"docker:2375", "target-form"},
      {"*", "target-form"},
      {"", "target-form"},
      {"/v1.41/x#frag", "target-form"},
      {"/v1.40/containers/json", "api-version"},
      {"/v1.44/containers/json", "api-version"},
      {"/v1/containers/json", "api-version"},
      {"/V1.41/containers/json", "api-version"},
      {"/v1.41.0/containers/json", "api-version"},
      {"/containers/json?a=1;b=2", "query-separator"},
      {"/containers/json?a=1%3B;", "query-separator"},
      {"/containers/json?all=1&all=0", "query-duplicate-key"},
      {"/containers/json?all=1&%61ll=0", "query-duplicate-key"},
      {"/containers/json?all&all=1", "query-duplicate-key"},
      {"/containers/json?=1", "query-encoding"},
      {"/containers/json?a=%zz", "query-encoding"},
      {"/containers/json?a%=1", "query-encoding"},
      {"/containers/json?a=%0a", "query-encoding"},
      {"/containers/json?a=%00", "query-encoding"},
      {"/" + std::string(8192, 'a'), "target-too-long"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.target);
    auto t = parse_target(c.target);
    CHECK(rule_of(t) == c.rule);
    if (!t.ok()) CHECK(t.error().status == (c.rule == "target-too-long" ? 414 : 400));
  }
  auto v = parse_target("/v1.40/_ping");
  REQUIRE_FALSE(v.ok());
  CHECK(v.error().message.find("1.41 only") != std::string::npos);
}

TEST_CASE("parse_target decodes valid targets") {
  auto t = parse_target("/v1.41/containers/abc/json");
  REQUIRE(t.ok());
  CHECK(t->versioned);
  CHECK(t->segments == std::vector<std::string>{"containers", "abc", "json"});
  CHECK(t->path() == "/containers/abc/json");
  CHECK(t->query.empty());

  auto u = parse_target("/containers/json");
  REQUIRE(u.ok());
  CHECK_FALSE(u->versioned);
  CHECK(u->upstream_target() == "/v1.41/containers/json");

  auto q = parse_target("/v1.41/images/json?a=b+c&d=%2B&flag&e=%3B&&");
  REQUIRE_MESSAGE(q.ok(), rule_of(q));
  REQUIRE(q->query.size() == 4);
  CHECK(*q->param("a") == "b c");
  CHECK(*q->param("d") == "+");
  CHECK(*q->param("flag") == "");
  CHECK(*q->param("e") == ";");
  CHECK(q->param("missing") == nullptr);

  auto img = parse_target("/v1.41/images/registry:5000/team/app@sha256:abc/json");
  REQUIRE(img.ok());
  CHECK(img->segments.size() == 5);
  CHECK(img->path() == "/images/registry:5000/team/app@sha256:abc/json");

  auto bare = parse_target("/v1.41");
  REQUIRE(bare.ok());
  CHECK(bare->segments.empty());
  CHECK(bare->path() == "/");
}

TEST_CASE("upstream_target re-encodes canonically and round-trips") {
  auto t = parse_target(
      "/v1.41/containers/my%20box/json?filters=%7B%22label%22%3A%5B%22org.gatehouse.job%3Dj1%22%5D%7D&name=a+b&x=%c3%a9");
  REQUIRE_MESSAGE(t.ok(), rule_of(t));
  CHECK(t->segments[1] == "my box");
  CHECK(*t->param("filters") == R"({"label":["org.gatehouse.job=j1"]})");
  std::string up = t->upstream_target();
  CHECK(up ==
        "/v1.41/containers/my%20box/json?filters=%7B%22label%22%3A%5B%22org.gatehouse.job%3Dj1%22%5D%7D&name=a%20b&x=%C3%A9");
  auto again = parse_target(up);
  REQUIRE(again.ok());
  CHECK(again->segments == t->segments);
  CHECK(again->query == t->query);
  CHECK(again->upstream_target() == up);
}

TEST_CASE("query parameters are replaced, appended and erased in order") {
  auto t = parse_target("/containers/json?all=1&limit=5");
  REQUIRE(t.ok());
  t->set_param("all", "0");
  t->set_param("filters", "{\"label\":[\"a=b\"]}");
  t->erase_param("limit");
  t->erase_param("absent");
  CHECK(t->upstream_target() == "/v1.41/containers/json?all=0&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
}

TEST_CASE("pipelined bytes after the request are kept") {
  const std::string second = "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n";
  {
    Feed f(kCreate + second);
    RequestReader r(f.fd(), {});
    REQUIRE(r.head().ok());
    auto b = r.body();
    REQUIRE(b.ok());
    CHECK(*b == "{}");
    CHECK(r.take_leftover() == second);
  }
  {
    Feed f(second + second);
    RequestReader r(f.fd(), {});
    REQUIRE(r.head().ok());
    CHECK(r.take_leftover() == second);
  }
  {
    Feed f(post_with("Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n") + second);
    RequestReader r(f.fd(), {});
    REQUIRE(r.head().ok());
    REQUIRE(r.body().ok());
    CHECK(r.take_leftover() == second);
  }
}

TEST_CASE("upgrade requests keep the stream that follows") {
  const std::string attach =
      "POST /v1.41/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1 HTTP/1.1\r\nHost: docker\r\n"
      "Connection: Upgrade\r\nContent-Type: text/plain\r\nUpgrade: tcp\r\n\r\n";
  {
    Feed f(attach + "raw stdin bytes");
    RequestReader r(f.fd(), {});
    auto h = r.head();
    REQUIRE_MESSAGE(h.ok(), rule_of(h));
    CHECK(h->upgrade);
    CHECK(*h->target.param("stream") == "1");
    CHECK(r.take_leftover() == "raw stdin bytes");
    std::string up = serialise_request_head(*h, std::nullopt, false);
    CHECK(up ==
          "POST /v1.41/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1 HTTP/1.1\r\nHost: docker\r\n"
          "Content-Type: text/plain\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
  }
  {
    Feed f("POST /v1.41/exec/e1/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
           "Content-Type: application/json\r\nContent-Length: 28\r\n\r\n{\"Detach\":false,\"Tty\":false}"
           "stdin");
    RequestReader r(f.fd(), {});
    auto h = r.head();
    REQUIRE(h.ok());
    CHECK(h->upgrade);
    auto b = r.body();
    REQUIRE(b.ok());
    CHECK(*b == "{\"Detach\":false,\"Tty\":false}");
    CHECK(r.take_leftover() == "stdin");
  }
  CHECK(head_rule("GET /v1.41/x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n") == "upgrade");
}

TEST_CASE("serialise_request_head writes only what the daemon needs") {
  Feed f("POST /images/create?fromImage=alpine&tag=3.18 HTTP/1.1\r\nHost: evil\r\nX-Registry-Auth: e30=\r\n"
         "User-Agent: Docker-Client/20.10.24+dfsg1 (linux)\r\nX-Other: dropped\r\nContent-Length: 0\r\n\r\n");
  RequestReader r(f.fd(), {});
  auto h = r.head();
  REQUIRE(h.ok());
  CHECK(serialise_request_head(*h, 0, false) ==
        "POST /v1.41/images/create?fromImage=alpine&tag=3.18 HTTP/1.1\r\nHost: docker\r\nX-Registry-Auth: e30=\r\n"
        "User-Agent: Docker-Client/20.10.24+dfsg1 (linux)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  std::string chunked = serialise_request_head(*h, std::nullopt, true);
  CHECK(chunked.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(chunked.find("Content-Length") == std::string::npos);
}

namespace {

Checked<ResponseHead> response(const std::string& bytes, std::string& rest) {
  Feed f(bytes);
  return read_response_head(f.fd(), rest, 2000ms);
}

}  // namespace

TEST_CASE("response heads keep the start of the body verbatim") {
  std::string rest;
  auto h = response("HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                    "Content-Length: 10\r\n\r\n[{\"Id\":1}]",
                    rest);
  REQUIRE_MESSAGE(h.ok(), rule_of(h));
  CHECK(h->status == 200);
  CHECK(h->content_length == 10u);
  CHECK_FALSE(h->chunked);
  CHECK(*h->header("api-version") == "1.41");
  CHECK_FALSE(h->raw_stream());
  CHECK(rest == "[{\"Id\":1}]");

  h = response("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               "Connection: keep-alive\r\n\r\n5\r\n{\"a\":\r\n",
               rest);
  REQUIRE(h.ok());
  CHECK(h->chunked);
  CHECK(rest == "5\r\n{\"a\":\r\n");
  CHECK(serialise_response_head(*h) ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");

  const std::string frame("\x01\x00\x00\x00\x00\x00\x00\x02hi", 10);
  h = response("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\n"
               "Upgrade: tcp\r\n\r\n" + frame,
               rest);
  REQUIRE(h.ok());
  CHECK(h->status == 101);
  CHECK(h->raw_stream());
  CHECK(rest == frame);
  CHECK(serialise_response_head(*h) ==
        "HTTP/1.1 101 Switching Protocols\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
        "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n");

  h = response("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n", rest);
  REQUIRE(h.ok());
  CHECK(h->raw_stream());
  CHECK(rest.empty());
  h = response("HTTP/1.1 200 OK\r\nContent-Type: Application/VND.docker.multiplexed-stream; x=y\r\n\r\n", rest);
  REQUIRE(h.ok());
  CHECK(h->raw_stream());
}

TEST_CASE("bad daemon answers are refused as upstream errors") {
  std::string rest;
  CHECK(rule_of(response("", rest)) == "upstream-incomplete");
  CHECK(rule_of(response("HTTP/1.1 200 OK\r\nContent-", rest)) == "upstream-incomplete");
  CHECK(rule_of(response("NOT HTTP\r\n\r\n", rest)) == "upstream-syntax");
  CHECK(rule_of(response("HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'a') + "\r\n\r\n", rest)) ==
        "upstream-head-too-large");
  CHECK(status_of(response("", rest)) == 502);
}

TEST_CASE("json_answer and refusal_answer are complete responses") {
  std::string a = json_answer(403, "no \"privileged\"");
  std::string body = "{\"message\":\"no \\\"privileged\\\"\"}\n";
  CHECK(a == "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  std::string r = refusal_answer(refuse("bind-mount", "binds outside the workspace are refused"));
  CHECK(r.find("gatehouse docker proxy: binds outside the workspace are refused (rule bind-mount)") != std::string::npos);
  CHECK(json_answer(400, std::string("bad \xff byte")).find("Content-Length") != std::string::npos);
}

// The control-plane client (broker/control_client.cpp) against an
// in-process TLS server on a loopback port that plays scripted answers. A
// test CA and certificates are made with the openssl command at start.
// What is proved: exact request bodies, paths and Authorization headers;
// TLS verification and pinning; and that every hostile or failing answer
// becomes the expected CallError within its time bound.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/control_client.hpp"

using gh::agent::AgentConfig;
using gh::agent::CallError;
using gh::agent::ClientOptions;
using gh::agent::ControlClient;
namespace protocol = gh::protocol;
using Kind = CallError::Kind;

namespace {

const std::string kRunnerToken = "runner-token-0123456789";
const std::string kTaskToken = "task-token-abcdefghijklmnop";

// ---- certificates ----------------------------------------------------------

struct Certs {
  std::string dir, ca, server_cert, server_key, rogue_cert, rogue_key, pin;
  Certs() {
    char tmpl[] = "/tmp/gh-client-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    ca = dir + "/ca.pem";
    server_cert = dir + "/server.pem";
    server_key = dir + "/server.key";
    rogue_cert = dir + "/rogue.pem";
    rogue_key = dir + "/rogue.key";
    const std::string d = "'" + dir + "'";
    const std::string script =
        "set -e; cd " + d + "; exec 2>/dev/null\n"
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=gh-test-ca "
        "  -keyout ca.key -out ca.pem\n"
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 "
        "  -keyout server.key -out server.csr\n"
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext\n"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext "
        "  -out server.pem\n"
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 "
        "  -addext subjectAltName=IP:127.0.0.1 -keyout rogue.key -out rogue.pem\n"
        "openssl pkey -in server.key -pubout -outform der | openssl dgst -sha256 -binary | openssl base64 -A > pin\n";
    REQUIRE_MESSAGE(system(script.c_str()) == 0, "the openssl command could not make the test certificates");
    std::ifstream f(dir + "/pin");
    std::getline(f, pin);
    REQUIRE(pin.size() == 44);
    pin = "sha256//" + pin;
  }
  ~Certs() { (void)!system(("rm -rf '" + dir + "'").c_str()); }
};

const Certs& certs() {
  static Certs c;
  return c;
}

// ---- the scripted server ---------------------------------------------------

struct Answer {
  enum class Mode {
    Normal,
    NoLength,        // the body without Content-Length, ended by closing
    Stall,           // reads the request, then says nothing
    StallHandshake,  // accepts TCP, never speaks TLS
  };
  int status = 200;
  std::string body;
  std::vector<std::string> headers;
  Mode mode = Mode::Normal;
};

struct Seen {
  std::string request_line, authorization, content_type, user_agent, body;
};

class TlsServer {
 public:
  TlsServer(const std::string& cert, const std::string& key) {
    signal(SIGPIPE, SIG_IGN);  // this test's server writes to clients that gave up
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx_);
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) == 1);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd_, 8) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~TlsServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
    SSL_CTX_free(ctx_);
  }
  void push(Answer a) {
    std::lock_guard lk(mu_);
    answers_.push_back(std::move(a));
  }
  std::vector<Seen> seen() {
    std::lock_guard lk(mu_);
    return seen_;
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }

  int port = 0;

 private:
  // Reads and drops whatever arrives until the client goes away (or the test ends).
  void hold(int c) {
    char sink[4096];
    while (!stop_) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 50) > 0 && recv(c, sink, sizeof sink, MSG_DONTWAIT) <= 0) return;
    }
  }

  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{5, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      Answer a;
      {
        std::lock_guard lk(mu_);
        if (!answers_.empty()) {
          a = answers_.front();
          answers_.pop_front();
        } else {
          a.status = 500;
        }
      }
      if (a.mode == Answer::Mode::StallHandshake) {
        hold(c);
        close(c);
        continue;
      }
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) serve_one(ssl, c, a);
      SSL_free(ssl);
      close(c);
      ERR_clear_error();
    }
  }

  void serve_one(SSL* ssl, int c, const Answer& a) {
    std::string in;
    char buf[16384];
    size_t header_end = std::string::npos;
    while ((header_end = in.find("\r\n\r\n")) == std::string::npos && in.size() < 65536) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
    }
    if (header_end == std::string::npos) return;
    Seen s;
    std::istringstream hs(in.substr(0, header_end));
    std::getline(hs, s.request_line);
    if (!s.request_line.empty() && s.request_line.back() == '\r') s.request_line.pop_back();
    size_t length = 0;
    for (std::string line; std::getline(hs, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const std::string value = line.substr(line.find_first_not_of(' ', colon + 1));
      if (name == "authorization") s.authorization = value;
      if (name == "content-type") s.content_type = value;
      if (name == "user-agent") s.user_agent = value;
      if (name == "content-length") length = std::stoul(value);
    }
    std::string body = in.substr(header_end + 4);
    while (body.size() < length) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return;
      body.append(buf, static_cast<size_t>(n));
    }
    s.body = body;
    {
      std::lock_guard lk(mu_);
      seen_.push_back(s);
    }
    if (a.mode == Answer::Mode::Stall) {
      hold(c);
      return;
    }
    std::string out = "HTTP/1.1 " + std::to_string(a.status) + " X\r\nConnection: close\r\n";
    if (a.status != 204) out += "Content-Type: application/json\r\n";
    if (a.mode == Answer::Mode::Normal && a.status != 204) out += "Content-Length: " + std::to_string(a.body.size()) + "\r\n";
    for (const auto& h : a.headers) out += h + "\r\n";
    out += "\r\n";
    out += a.body;
    for (size_t off = 0; off < out.size();) {
      int n = SSL_write(ssl, out.data() + off, static_cast<int>(std::min<size_t>(out.size() - off, 1 << 16)));
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
    SSL_shutdown(ssl);
  }

  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::deque<Answer> answers_;
  std::vector<Seen> seen_;
};

AgentConfig config_for(const TlsServer& s) {
  AgentConfig c;
  c.api.url = s.url();
  c.api.ca_file = certs().ca;
  c.runner.name = "host-1";
  c.runner.resource_class = "acme/linux";
  return c;
}

ControlClient client_for(const AgentConfig& c, ClientOptions o = {}) {
  auto made = ControlClient::create(c, kRunnerToken, o);
  INFO((made ? std::string() : made.error().message));
  REQUIRE(made);
  return std::move(*made);
}

protocol::ClaimRequest claim_request(int wait = 0) { return {"host-1", "acme/linux", 2, wait}; }

protocol::Task sample_task() {
  protocol::Task t;
  t.id = "t-0001";
  t.token = kTaskToken;
  t.job_name = "build";
  t.job_config = "version: 2.1\njobs:\n  build:\n    machine: true\n    steps: [checkout]\n";
  t.meta = {"acme/app", "main", "", "push", "0123abcd"};
  return t;
}

Answer json(int status, std::string body, std::vector<std::string> headers = {}) {
  return Answer{status, std::move(body), std::move(headers), Answer::Mode::Normal};
}

// The error of a claim answered with `a`.
CallError claim_error(const Answer& a, ClientOptions o = {}) {
  TlsServer s(certs().server_cert, certs().server_key);
  s.push(a);
  auto c = client_for(config_for(s), o);
  auto r = c.claim(claim_request());
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message);
  return r.error();
}

bool says(const CallError& e, const std::string& fragment) {
  INFO(e.message);
  return e.message.find(fragment) != std::string::npos;
}

}  // namespace

TEST_CASE("a round trip: claim, nothing to claim, heartbeat, records, complete") {
  TlsServer s(certs().server_cert, certs().server_key);
  const protocol::Task task = sample_task();
  s.push(json(200, protocol::encode_task_answer(task)));
  s.push(json(204, ""));
  s.push(json(200, protocol::encode(protocol::HeartbeatAnswer{true, 3})));
  s.push(json(200, protocol::encode_acked(5)));
  s.push(json(200, protocol::encode_ok()));
  auto c = client_for(config_for(s));

  auto claimed = c.claim(claim_request(0));
  REQUIRE(claimed.ok());
  REQUIRE(claimed.value());
  CHECK(*claimed.value() == task);
  auto nothing = c.claim(claim_request(0));
  REQUIRE(nothing.ok());
  CHECK_FALSE(nothing.value());
  auto beat = c.heartbeat(task.id, task.token, "running");
  REQUIRE(beat.ok());
  CHECK(beat.value() == protocol::HeartbeatAnswer{true, 3});
  protocol::Record out;
  out.seq = 4;
  out.data = std::string("line\n\0\xff", 7);
  protocol::Record step;
  step.seq = 5;
  step.type = protocol::RecordType::Step;
  step.name = "Checkout code";
  step.state = "started";
  const std::vector<protocol::Record> records{out, step};
  auto acked = c.send_records(task.id, task.token, records);
  REQUIRE(acked.ok());
  CHECK(acked.value() == 5);
  const protocol::Completion done{"failed", 1, "step 2 exited 1", 5, 100, 200, 300};
  auto completed = c.complete(task.id, task.token, done);
  CHECK(completed.ok());

  const auto seen = s.seen();
  REQUIRE(seen.size() == 5);
  CHECK(seen[0].request_line == "POST /api/v1/claim HTTP/1.1");
  CHECK(seen[0].body == protocol::encode(claim_request(0)));
  CHECK(seen[0].authorization == "Bearer " + kRunnerToken);
  CHECK(seen[1].authorization == "Bearer " + kRunnerToken);
  CHECK(seen[2].request_line == "POST /api/v1/tasks/t-0001/heartbeat HTTP/1.1");
  CHECK(seen[2].body == protocol::encode_heartbeat("running"));
  CHECK(seen[3].request_line == "POST /api/v1/tasks/t-0001/records HTTP/1.1");
  CHECK(seen[3].body == protocol::encode_records(records));
  CHECK(seen[4].request_line == "POST /api/v1/tasks/t-0001/complete HTTP/1.1");
  CHECK(seen[4].body == protocol::encode(done));
  for (size_t i = 2; i < 5; ++i) CHECK(seen[i].authorization == "Bearer " + kTaskToken);
  for (const auto& x : seen) {
    CHECK(x.content_type == "application/json");
    CHECK(x.user_agent.starts_with("gatehouse/"));
  }
}

TEST_CASE("api.url's path prefix is kept") {
  TlsServer s(certs().server_cert, certs().server_key);
  s.push(json(204, ""));
  AgentConfig cfg = config_for(s);
  cfg.api.url += "/ci";
  auto c = client_for(cfg);
  CHECK(c.claim(claim_request()).ok());
  REQUIRE(s.seen().size() == 1);
  CHECK(s.seen()[0].request_line == "POST /ci/api/v1/claim HTTP/1.1");
}

TEST_CASE("a server certificate from a CA the agent does not trust is refused") {
  TlsServer s(certs().rogue_cert, certs().rogue_key);
  s.push(json(204, ""));
  auto c = client_for(config_for(s));
  auto r = c.claim(claim_request());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == Kind::Network);
  CHECK(says(r.error(), "TLS certificate is not trusted"));
  CHECK(r.error().retryable());
  CHECK(s.seen().empty());  // nothing, not even the token, was sent
}

TEST_CASE("the public key pin: a wrong pin is refused, the right one accepted") {
  TlsServer s(certs().server_cert, certs().server_key);
  s.push(json(204, ""));
  s.push(json(204, ""));
  AgentConfig wrong = config_for(s);
  wrong.api.pinned_public_key = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  auto bad = client_for(wrong).claim(claim_request());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == Kind::Network);
  CHECK(says(bad.error(), "does not match api.pinned_public_key"));
  CHECK(s.seen().empty());
  AgentConfig right = config_for(s);
  right.api.pinned_public_key = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;" + certs().pin;
  auto good = client_for(right).claim(claim_request());
  INFO((good.ok() ? std::string() : good.error().message));
  CHECK(good.ok());
  CHECK(s.seen().size() == 1);
}

TEST_CASE("malformed answers are retryable errors that say what was wrong") {
  auto not_json = claim_error(json(200, "{not json"));
  CHECK(not_json.kind == Kind::Malformed);
  CHECK(says(not_json, "the control plane's answer to claim is malformed"));
  CHECK(not_json.retryable());

  // A task with an unknown key: refused, but its id and token are handed
  // back so the agent can complete it as `refused`.
  std::string body = protocol::encode_task_answer(sample_task());
  body.insert(body.find("\"token\""), "\"shell\":\"rm -rf /\",");
  auto unknown = claim_error(json(200, body));
  CHECK(unknown.kind == Kind::Malformed);
  CHECK(says(unknown, "task.shell"));
  REQUIRE(unknown.unreadable_task);
  CHECK(unknown.unreadable_task->id == "t-0001");
  CHECK(unknown.unreadable_task->token == kTaskToken);
  CHECK(unknown.message.find(kTaskToken) == std::string::npos);

  TlsServer s(certs().server_cert, certs().server_key);
  s.push(json(200, R"({"cancel":false,"acked":1,"extra":true})"));
  s.push(json(200, R"({"acked":"five"})"));
  s.push(json(204, ""));
  auto c = client_for(config_for(s));
  auto beat = c.heartbeat("t-1", kTaskToken, "running");
  REQUIRE_FALSE(beat.ok());
  CHECK(beat.error().kind == Kind::Malformed);
  CHECK(says(beat.error(), "extra"));
  auto recs = c.send_records("t-1", kTaskToken, {});
  REQUIRE_FALSE(recs.ok());
  CHECK(recs.error().kind == Kind::Malformed);
  CHECK(says(recs.error(), "acked"));
  auto empty = c.complete("t-1", kTaskToken, {"passed", 0, "", -1, 0, 0, 0});
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().kind == Kind::Malformed);
  CHECK(says(empty.error(), "status 204 is not 200"));
}

TEST_CASE("an answer over 4 MiB is cut off, announced or not") {
  const std::string big = "{\"acked\":1,\"pad\":\"" + std::string(5 << 20, 'x') + "\"}";
  for (auto mode : {Answer::Mode::Normal, Answer::Mode::NoLength}) {
    CAPTURE(static_cast<int>(mode));
    auto e = claim_error(Answer{200, big, {}, mode});
    CHECK(e.kind == Kind::Malformed);
    CHECK(says(e, "the control plane's answer exceeded 4 MiB"));
    CHECK(e.retryable());
  }
}

TEST_CASE("a server that accepts and then stalls is cut off within the bound") {
  ClientOptions quick;
  quick.call_timeout = std::chrono::milliseconds(1500);
  quick.stall_timeout = std::chrono::seconds(1);
  for (auto mode : {Answer::Mode::Stall, Answer::Mode::StallHandshake}) {
    CAPTURE(static_cast<int>(mode));
    const auto t0 = std::chrono::steady_clock::now();
    auto e = claim_error(Answer{200, "", {}, mode}, quick);
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(e.kind == Kind::Network);
    CHECK(says(e, "no answer within the time limit"));
    CHECK(e.retryable());
    CHECK(took < std::chrono::seconds(4));
  }
}

TEST_CASE("error statuses follow the protocol's table") {
  auto unauthorized = claim_error(json(401, R"({"error":"unauthorized","message":"who are you"})"));
  CHECK(unauthorized.kind == Kind::Http);
  CHECK(unauthorized.status == 401);
  CHECK(unauthorized.code == "unauthorized");
  CHECK(says(unauthorized, "who are you"));
  CHECK(says(unauthorized, "the runner token was refused"));
  CHECK_FALSE(unauthorized.retryable());

  auto busy = claim_error(json(503, R"({"error":"busy","message":"later"})", {"Retry-After: 12"}));
  CHECK(busy.status == 503);
  CHECK(busy.retry_after == 12);
  CHECK(busy.retryable());
  auto capped = claim_error(json(429, R"({"error":"busy"})", {"Retry-After: 100000"}));
  CHECK(capped.retry_after == 300);
  auto dated = claim_error(json(503, "", {"Retry-After: Wed, 21 Oct 2015 07:28:00 GMT"}));
  CHECK(dated.retry_after == 0);
  CHECK(dated.retryable());

  auto not_v1 = claim_error(json(404, ""));
  CHECK(says(not_v1, "does not speak protocol v1"));
  CHECK(not_v1.retryable());

  auto garbled = claim_error(json(500, "<html>oops</html>"));
  CHECK(garbled.kind == Kind::Http);
  CHECK(says(garbled, "its error body is not readable"));
  CHECK(garbled.retryable());

  TlsServer s(certs().server_cert, certs().server_key);
  s.push(json(409, R"({"error":"out_of_order","message":"gap","acked":7})"));
  s.push(json(409, R"({"error":"already_completed","message":"no"})"));
  s.push(json(404, R"({"error":"unknown_task","message":"never heard of it"})"));
  s.push(json(410, R"({"error":"task_gone","message":"canceled"})"));
  auto c = client_for(config_for(s));
  auto ooo = c.send_records("t-1", kTaskToken, {});
  REQUIRE_FALSE(ooo.ok());
  CHECK(ooo.error().status == 409);
  CHECK(ooo.error().code == "out_of_order");
  CHECK(ooo.error().acked == 7);
  CHECK(ooo.error().retryable());
  auto twice = c.complete("t-1", kTaskToken, {"passed", 0, "", -1, 0, 0, 0});
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().code == "already_completed");
  CHECK_FALSE(twice.error().retryable());
  auto unknown = c.heartbeat("t-1", kTaskToken, "running");
  REQUIRE_FALSE(unknown.ok());
  CHECK(says(unknown.error(), "does not know this task"));
  CHECK_FALSE(unknown.error().retryable());
  auto gone = c.heartbeat("t-1", kTaskToken, "running");
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().status == 410);
  CHECK_FALSE(gone.error().retryable());
}

TEST_CASE("a redirect is not followed") {
  TlsServer s(certs().server_cert, certs().server_key);
  s.push(json(302, "", {"Location: " + s.url() + "/api/v1/claim"}));
  s.push(json(204, ""));
  auto c = client_for(config_for(s));
  auto r = c.claim(claim_request());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == Kind::Http);
  CHECK(r.error().status == 302);
  CHECK(says(r.error(), "which the agent does not follow"));
  CHECK(s.seen().size() == 1);
}

TEST_CASE("requests the protocol forbids are not sent") {
  TlsServer s(certs().server_cert, certs().server_key);
  auto c = client_for(config_for(s));
  std::vector<protocol::Record> many(257);
  for (size_t i = 0; i < many.size(); ++i) many[i].seq = static_cast<int64_t>(i);
  auto r = c.send_records("t-1", kTaskToken, many);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == Kind::Request);
  CHECK_FALSE(r.error().retryable());
  std::vector<protocol::Record> fat(20);
  for (size_t i = 0; i < fat.size(); ++i) {
    fat[i].seq = static_cast<int64_t>(i);
    fat[i].data = std::string(64 << 10, 'x');
  }
  r = c.send_records("t-1", kTaskToken, fat);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == Kind::Request);
  CHECK(says(r.error(), "over the protocol's 1 MiB bound"));
  auto traversal = c.heartbeat("../../claim", kTaskToken, "running");
  REQUIRE_FALSE(traversal.ok());
  CHECK(traversal.error().kind == Kind::Request);
  auto injected = c.heartbeat("t-1", "token-long-enough\r\nX-Evil: 1", "running");
  REQUIRE_FALSE(injected.ok());
  CHECK(injected.error().kind == Kind::Request);
  CHECK(s.seen().empty());
}

TEST_CASE("create refuses what cannot work") {
  AgentConfig c;
  c.api.url = "http://127.0.0.1:1";
  auto r = ControlClient::create(c, kRunnerToken);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("uses http://") != std::string::npos);
  c.api.url = "https://127.0.0.1:1";
  r = ControlClient::create(c, "short");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("the runner token must be") != std::string::npos);
  c.api.ca_file = "/nonexistent/ca.pem";
  r = ControlClient::create(c, kRunnerToken);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("api.ca_file /nonexistent/ca.pem cannot be read") != std::string::npos);
}

TEST_CASE("nothing listening is a retryable network error") {
  int port = 0;
  {
    TlsServer gone(certs().server_cert, certs().server_key);
    port = gone.port;
  }
  AgentConfig c;
  c.api.url = "https://127.0.0.1:" + std::to_string(port);
  c.api.ca_file = certs().ca;
  auto r = client_for(c).claim(claim_request());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == Kind::Network);
  CHECK(says(r.error(), "cannot connect"));
  CHECK(r.error().retryable());
}

TEST_CASE("backoff: 1 s doubling to 60 s, times a factor in [0.5, 1.5]") {
  std::mt19937_64 rng(42);
  const std::pair<int, int64_t> bases[] = {{0, 1000}, {1, 2000}, {3, 8000}, {5, 32000}, {6, 60000}, {40, 60000}};
  for (auto [attempt, base] : bases) {
    int64_t lo = base * 3, hi = 0;
    for (int i = 0; i < 200; ++i) {
      const int64_t d = gh::agent::backoff_delay(attempt, rng).count();
      CHECK(d >= base / 2);
      CHECK(d <= base * 3 / 2);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    CHECK(hi - lo > base / 2);  // jittered, not a constant
  }
}

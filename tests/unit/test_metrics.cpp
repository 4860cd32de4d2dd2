// Metrics rendering and health, and the local HTTP server that serves them.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/local_http.hpp"
#include "agent/metrics.hpp"

using gh::agent::LocalHttpOptions;
using gh::agent::LocalHttpServer;
using gh::agent::Metrics;
using namespace std::chrono_literals;

namespace {

const Metrics::Clock::time_point kT0{std::chrono::seconds(1700000000)};

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/gh-metrics.XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { (void)!system(("rm -rf '" + path + "'").c_str()); }
};

int connect_unix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  return fd;
}

int connect_tcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  return fd;
}

// Sends `request` and reads the answer until the server closes (3 s at most).
std::string http_exchange(int fd, const std::string& request) {
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!request.empty()) REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, size_t(n));
  close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return -1;
  return std::stoi(response.substr(9, 3));
}

std::string body_of(const std::string& response) {
  auto p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

std::string get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n"; }

}  // namespace

TEST_CASE("the Prometheus text for a known state, exactly") {
  Metrics m(kT0);
  m.set_slots(4);
  m.set_slots_free(3);
  m.job_started();
  m.job_started();
  m.job_ended();
  m.job_finished("passed");
  m.job_finished("passed");
  m.job_finished("timed_out");
  m.job_finished("something-else");  // counts as infra_error
  m.claim_error();
  m.control_plane_error();
  m.control_plane_error();
  m.contact_succeeded(kT0 + 42s);
  m.add_log_bytes(1000);
  m.add_log_bytes(24);
  m.observe_setup_seconds(0.25);
  m.observe_setup_seconds(0.5);
  m.observe_setup_seconds(-1);  // not a duration: ignored
  CHECK(m.render_prometheus() ==
        "# HELP gatehouse_jobs_total Jobs completed, by outcome.\n"
        "# TYPE gatehouse_jobs_total counter\n"
        "gatehouse_jobs_total{outcome=\"passed\"} 2\n"
        "gatehouse_jobs_total{outcome=\"failed\"} 0\n"
        "gatehouse_jobs_total{outcome=\"refused\"} 0\n"
        "gatehouse_jobs_total{outcome=\"infra_error\"} 1\n"
        "gatehouse_jobs_total{outcome=\"canceled\"} 0\n"
        "gatehouse_jobs_total{outcome=\"timed_out\"} 1\n"
        "# HELP gatehouse_jobs_running Jobs running now.\n"
        "# TYPE gatehouse_jobs_running gauge\n"
        "gatehouse_jobs_running 1\n"
        "# HELP gatehouse_claim_errors_total Claims that failed (network, server or protocol errors).\n"
        "# TYPE gatehouse_claim_errors_total counter\n"
        "gatehouse_claim_errors_total 1\n"
        "# HELP gatehouse_control_plane_errors_total Calls about a task (records, heartbeat, complete) that failed.\n"
        "# TYPE gatehouse_control_plane_errors_total counter\n"
        "gatehouse_control_plane_errors_total 2\n"
        "# HELP gatehouse_last_successful_contact_timestamp_seconds Unix time of the last call the control plane "
        "answered; 0 before the first.\n"
        "# TYPE gatehouse_last_successful_contact_timestamp_seconds gauge\n"
        "gatehouse_last_successful_contact_timestamp_seconds 1700000042\n"
        "# HELP gatehouse_log_bytes_total Bytes of job output received from jobs.\n"
        "# TYPE gatehouse_log_bytes_total counter\n"
        "gatehouse_log_bytes_total 1024\n"
        "# HELP gatehouse_sandbox_setup_seconds Time from admission until the job's sandbox ran.\n"
        "# TYPE gatehouse_sandbox_setup_seconds summary\n"
        "gatehouse_sandbox_setup_seconds_sum 0.75\n"
        "gatehouse_sandbox_setup_seconds_count 2\n"
        "# HELP gatehouse_slots_total Jobs this agent may run at once (runner.slots).\n"
        "# TYPE gatehouse_slots_total gauge\n"
        "gatehouse_slots_total 4\n"
        "# HELP gatehouse_slots_free Slots free now.\n"
        "# TYPE gatehouse_slots_free gauge\n"
        "gatehouse_slots_free 3\n"
        "# HELP gatehouse_claiming 1 while the agent claims jobs, 0 while it does not (see "
        "gatehouse_not_claiming_info).\n"
        "# TYPE gatehouse_claiming gauge\n"
        "gatehouse_claiming 1\n"
        "# HELP gatehouse_not_claiming_info Why the agent does not claim jobs now; absent while it does.\n"
        "# TYPE gatehouse_not_claiming_info gauge\n"
        "# HELP gatehouse_start_time_seconds Unix time the agent started.\n"
        "# TYPE gatehouse_start_time_seconds gauge\n"
        "gatehouse_start_time_seconds 1700000000\n");
}

TEST_CASE("label values are escaped as the exposition format wants") {
  CHECK(gh::agent::prometheus_escape_label("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  Metrics m(kT0);
  m.set_not_claiming("only 1 GiB free under /var/\"odd\"\\dir\nnext");
  std::string text = m.render_prometheus();
  CHECK(text.find("gatehouse_claiming 0\n") != std::string::npos);
  CHECK(text.find("gatehouse_not_claiming_info{reason=\"only 1 GiB free under /var/\\\"odd\\\"\\\\dir\\nnext\"} 1\n") !=
        std::string::npos);
  // Every line is a comment or `name{labels} value`: no raw newline escaped the label.
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = text.substr(start, nl - start);
    CHECK((line.rfind("# ", 0) == 0 || line.rfind("gatehouse_", 0) == 0));
  }
  m.set_not_claiming(std::string(1000, 'x'));
  CHECK(m.render_prometheus().find("reason=\"" + std::string(256, 'x') + "\"}") != std::string::npos);
}

TEST_CASE("counters stay exact under concurrent updates") {
  Metrics m(kT0);
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        m.add_log_bytes(3);
        m.job_finished("failed");
        m.job_started();
        m.job_ended();
        if (i % 100 == 0) (void)m.render_prometheus();
      }
    });
  for (auto& t : ts) t.join();
  std::string text = m.render_prometheus();
  CHECK(text.find("gatehouse_log_bytes_total 120000\n") != std::string::npos);
  CHECK(text.find("gatehouse_jobs_total{outcome=\"failed\"} 40000\n") != std::string::npos);
  CHECK(text.find("gatehouse_jobs_running 0\n") != std::string::npos);
}

TEST_CASE("health: starting, ok, stale, no contact") {
  Metrics m(kT0);
  auto j = nlohmann::json::parse(m.health_json(kT0 + 10s, 60s));
  CHECK(j["healthy"] == true);
  CHECK(j["status"] == "starting");
  CHECK(j["last_successful_contact"].is_null());
  CHECK(m.healthy(kT0 + 60s, 60s));
  CHECK_FALSE(m.healthy(kT0 + 61s, 60s));
  CHECK(nlohmann::json::parse(m.health_json(kT0 + 61s, 60s))["status"] == "no_contact");
  m.contact_succeeded(kT0 + 100s);
  m.contact_succeeded(kT0 + 90s);  // an older answer does not move it back
  j = nlohmann::json::parse(m.health_json(kT0 + 130s, 60s));
  CHECK(j["healthy"] == true);
  CHECK(j["status"] == "ok");
  CHECK(j["last_successful_contact"] == 1700000100);
  CHECK(j["seconds_since_contact"] == 30);
  j = nlohmann::json::parse(m.health_json(kT0 + 161s, 60s));
  CHECK(j["healthy"] == false);
  CHECK(j["status"] == "stale");
}

TEST_CASE("/healthz is liveness, /readyz says why the agent would not claim") {
  Metrics m(kT0);
  m.set_slots(1);
  m.set_slots_free(1);
  gh::agent::LocalHttpOptions o;
  o.stale_after = 60s;
  auto now = kT0 + 10s;
  auto probe = [&](const char* path) { return gh::agent::route_request("GET", path, m, o); };
  m.contact_succeeded(kT0 + 5s);
  CHECK(probe("/healthz").status == 200);
  CHECK(m.ready(now, 60s));
  m.set_slots_free(0);
  CHECK_FALSE(m.ready(now, 60s));
  CHECK(nlohmann::json::parse(m.probe_json(true, now, 60s))["reason"] == "all 1 slots are busy");
  CHECK(m.live());  // busy is not dead
  m.set_slots_free(1);
  m.set_not_claiming("only 1 MiB free under /w, below runner.min_free_space (1 GiB)");
  CHECK(nlohmann::json::parse(m.probe_json(true, now, 60s))["reason"] == "only 1 MiB free under /w, below runner.min_free_space (1 GiB)");
  m.set_not_claiming("");
  // A control-plane outage: not ready, still live (no restart for it).
  CHECK_FALSE(m.ready(kT0 + 100s, 60s));
  CHECK(nlohmann::json::parse(m.probe_json(false, kT0 + 100s, 60s))["ok"] == true);
  m.set_draining();
  CHECK(nlohmann::json::parse(m.probe_json(true, now, 60s))["reason"] == "draining: no new claims");
  CHECK(m.live());
  m.set_stopping();
  CHECK_FALSE(m.live());
  CHECK(probe("/healthz").status == 503);
  CHECK(probe("/readyz").status == 503);
  CHECK(probe("/nope").status == 404);
}

TEST_CASE("the server on a unix socket: routes, status codes, bounds") {
  TempDir dir;
  const std::string sock = dir.path + "/metrics.sock";
  Metrics m;
  m.set_slots(2);
  m.contact_succeeded();
  auto made = LocalHttpServer::start("unix:" + sock, m);
  REQUIRE_MESSAGE(made.ok(), made.error().message);
  auto& srv = *made.value();
  CHECK(srv.port() == 0);
  struct stat st {};
  REQUIRE(lstat(sock.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0660);

  std::string r = http_exchange(connect_unix(sock), get("/metrics"));
  CHECK(status_of(r) == 200);
  CHECK(r.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  CHECK(r.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(body_of(r) == m.render_prometheus());
  CHECK(r.find("Content-Length: " + std::to_string(body_of(r).size()) + "\r\n") != std::string::npos);

  r = http_exchange(connect_unix(sock), get("/health?verbose=1"));
  CHECK(status_of(r) == 200);
  CHECK(r.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(nlohmann::json::parse(body_of(r))["status"] == "ok");

  CHECK(status_of(http_exchange(connect_unix(sock), get("/nothing"))) == 404);
  r = http_exchange(connect_unix(sock), "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(status_of(r) == 405);
  CHECK(r.find("\r\nAllow: GET\r\n") != std::string::npos);
  CHECK(status_of(http_exchange(connect_unix(sock), "DELETE /health HTTP/1.1\r\n\r\n")) == 405);
  CHECK(status_of(http_exchange(connect_unix(sock), "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")) == 400);
  CHECK(status_of(http_exchange(connect_unix(sock), "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")) == 400);
  CHECK(status_of(http_exchange(connect_unix(sock), "GARBAGE\x01\x02 nonsense\r\n\r\n")) == 400);
  CHECK(status_of(http_exchange(connect_unix(sock), "GET /metrics HTTP/1.1\r\nBad Header Line\r\n\r\n")) == 400);
  // 9 KiB of headers, sent without the final blank line: refused at the bound.
  r = http_exchange(connect_unix(sock), "GET /metrics HTTP/1.1\r\nX-Fill: " + std::string(9000, 'a') + "\r\n");
  CHECK(status_of(r) == 431);
  // Just under the bound is fine.
  CHECK(status_of(http_exchange(connect_unix(sock), "GET /health HTTP/1.1\r\nX-Fill: " + std::string(8000, 'a') + "\r\n\r\n")) ==
        200);

  srv.stop();
  CHECK(lstat(sock.c_str(), &st) != 0);  // the socket is gone
  srv.stop();                            // idempotent
}

TEST_CASE("health over HTTP: 503 once the control plane is stale") {
  Metrics m(Metrics::Clock::now() - 600s);  // started long ago, never answered
  LocalHttpOptions o;
  o.stale_after = 60s;
  auto made = LocalHttpServer::start("127.0.0.1:0", m, o);
  REQUIRE_MESSAGE(made.ok(), made.error().message);
  const int port = made.value()->port();
  CHECK(port > 0);
  std::string r = http_exchange(connect_tcp(port), get("/health"));
  CHECK(status_of(r) == 503);
  CHECK(nlohmann::json::parse(body_of(r))["status"] == "no_contact");
  m.contact_succeeded(Metrics::Clock::now() - 120s);
  r = http_exchange(connect_tcp(port), get("/health"));
  CHECK(status_of(r) == 503);
  CHECK(nlohmann::json::parse(body_of(r))["status"] == "stale");
  m.contact_succeeded();
  CHECK(status_of(http_exchange(connect_tcp(port), get("/health"))) == 200);
  CHECK(status_of(http_exchange(connect_tcp(port), get("/metrics"))) == 200);
}

TEST_CASE("a silent client is dropped after the timeout while others are served") {
  Metrics m;
  LocalHttpOptions o;
  o.client_timeout = 400ms;
  auto made = LocalHttpServer::start("127.0.0.1:0", m, o);
  REQUIRE_MESSAGE(made.ok(), made.error().message);
  const int port = made.value()->port();
  int silent = connect_tcp(port);
  int partial = connect_tcp(port);
  REQUIRE(send(partial, "GET /met", 8, MSG_NOSIGNAL) == 8);  // and then nothing
  auto t0 = std::chrono::steady_clock::now();
  CHECK(status_of(http_exchange(connect_tcp(port), get("/metrics"))) == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < 300ms);  // not behind the silent ones
  // The silent ones are closed unanswered once their time is up.
  CHECK(http_exchange(silent, "").empty());
  CHECK(http_exchange(partial, "").empty());
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited >= 350ms);
  CHECK(waited < 2500ms);
}

TEST_CASE("listen addresses: loopback or a safe unix path only") {
  Metrics m;
  for (const char* bad : {"0.0.0.0:9000", "10.1.2.3:9000", "[::]:9000", "[2001:db8::1]:80", "localhost:9000",
                          "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http", "unix:relative.sock", "9000"}) {
    auto r = LocalHttpServer::start(bad, m);
    CHECK_MESSAGE(!r.ok(), bad);
  }
  auto r = LocalHttpServer::start("0.0.0.0:9000", m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("loopback only") != std::string::npos);

  TempDir dir;
  // Not a socket at the path: somebody's file, never replaced.
  std::ofstream(dir.path + "/file.sock") << "keep me";
  r = LocalHttpServer::start("unix:" + dir.path + "/file.sock", m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("not a socket") != std::string::npos);
  std::ifstream kept(dir.path + "/file.sock");
  std::string content;
  std::getline(kept, content);
  CHECK(content == "keep me");
  // A folder anyone may write into without the sticky bit.
  const std::string open_dir = dir.path + "/open";
  REQUIRE(mkdir(open_dir.c_str(), 0777) == 0);
  REQUIRE(chmod(open_dir.c_str(), 0777) == 0);
  r = LocalHttpServer::start("unix:" + open_dir + "/m.sock", m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("world-writable") != std::string::npos);

  // A stale socket left behind is replaced.
  const std::string sock = dir.path + "/stale.sock";
  {
    auto first = LocalHttpServer::start("unix:" + sock, m);
    REQUIRE(first.ok());
    // Simulate a crash: the file stays, its listener goes.
    std::string copy = dir.path + "/keep";
    REQUIRE(link(sock.c_str(), copy.c_str()) == 0);
    first.value()->stop();
    REQUIRE(rename(copy.c_str(), sock.c_str()) == 0);
  }
  auto second = LocalHttpServer::start("unix:" + sock, m);
  REQUIRE_MESSAGE(second.ok(), second.error().message);
  CHECK(status_of(http_exchange(connect_unix(sock), get("/health"))) == 200);
}

TEST_CASE("IPv6 loopback") {
  Metrics m;
  auto r = LocalHttpServer::start("[::1]:0", m);
  if (!r.ok()) {
    MESSAGE("SKIP: no IPv6 loopback here: " << r.error().message);
    return;
  }
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(static_cast<uint16_t>(r.value()->port()));
  sa.sin6_addr = in6addr_loopback;
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  CHECK(status_of(http_exchange(fd, get("/metrics"))) == 200);
}

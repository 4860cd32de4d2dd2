// gatehouse-docker-proxy: the Docker proxy of one job (docs/docker.md).
// The broker starts it for a profile with `docker: {mode: proxy}`, already
// as nobody with the Docker socket's group and no capabilities, with:
//   fd 3  the listening socket the job sees as /var/run/docker.sock
//   fd 4  a memfd holding the JobRules (docker/proxy_config.hpp)
//   fd 5  a pipe to the broker: one typed report per refusal, for the audit
//         log, and the cleanup's result (docker/reports.hpp)
//   argv  --upstream PATH (the daemon's socket)
// It never reads a file or opens a network socket after start (seccomp).
// SIGTERM (the job ended): stop accepting, shut every stream down, remove
// everything the job owns from the daemon, exit.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "docker/connection.hpp"
#include "docker/proxy_config.hpp"
#include "docker/reports.hpp"
#include "docker/proxy_seccomp.hpp"

using namespace gh::docker;

namespace {

constexpr int kListenFd = 3, kConfigFd = 4, kEventsFd = 5;
constexpr size_t kMaxConnections = 64;
constexpr size_t kMaxConfig = 1 << 20;

[[noreturn]] void die(const std::string& why) {
  std::cerr << "gatehouse-docker-proxy: " << why << "\n";
  _exit(4);
}

std::string read_config() {
  std::string text;
  char buf[8192];
  if (lseek(kConfigFd, 0, SEEK_SET) != 0) die("fd 4 is not the config memfd");
  for (;;) {
    ssize_t n = read(kConfigFd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die(std::string("reading the config: ") + strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfig) die("the config is larger than 1 MiB");
  }
  close(kConfigFd);
  return text;
}

struct Events {
  std::mutex mu;
  void write_report(const ProxyReport& r) {
    std::string line = frame_report(r);
    std::lock_guard lk(mu);
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      ssize_t n = write(kEventsFd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the broker is gone; the job is ending anyway
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
};

struct Tracker {
  std::mutex mu;
  std::condition_variable cv;
  std::set<int> fds;
  size_t active = 0;
  bool stopping = false;
  void shut_all() {
    std::lock_guard lk(mu);
    stopping = true;
    for (int fd : fds) shutdown(fd, SHUT_RDWR);
    cv.notify_all();
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string upstream_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--upstream" && i + 1 < argc) upstream_path = argv[++i];
    else die("usage: gatehouse-docker-proxy --upstream SOCKET (started by gatehouse run, not by hand)");
  }
  if (upstream_path.empty()) die("--upstream is required");
  if (geteuid() == 0 || getegid() == 0) die("refusing to run as root: the broker starts the proxy as nobody");
  for (int fd : {kListenFd, kConfigFd, kEventsFd})
    if (fcntl(fd, F_GETFD) < 0) die("fd " + std::to_string(fd) + " is not open (started by gatehouse run, not by hand)");
  // Not dumpable: no other process of the same uid (another job's proxy)
  // may ptrace it or read its memory.
  if (prctl(PR_SET_DUMPABLE, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("prctl failed");
  auto rules = rules_from_json(read_config());
  if (!rules) die(rules.error().message);

  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (auto s = confine_proxy(); !s) die(s.error().message);

  Upstream upstream(upstream_path);
  Events events;
  Tracker tracker;
  OwnedIds known;
  ProxyContext ctx{upstream, *rules, Limits{}, nullptr, nullptr, &known};
  ctx.refused = [&](const Refusal& r, const std::string& request) {
    events.write_report({ProxyReport::Kind::Refusal, r.rule, static_cast<uint32_t>(r.status), request, r.message});
  };
  ctx.track = [&](int fd, bool open) {
    std::lock_guard lk(tracker.mu);
    if (open) {
      tracker.fds.insert(fd);
      if (tracker.stopping) shutdown(fd, SHUT_RDWR);
    } else {
      tracker.fds.erase(fd);
    }
  };

  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_set, &sig);
    tracker.shut_all();
    shutdown(kListenFd, SHUT_RDWR);  // wakes the accept loop
  });
  stopper.detach();

  for (;;) {
    {
      std::unique_lock lk(tracker.mu);
      tracker.cv.wait(lk, [&] { return tracker.active < kMaxConnections || tracker.stopping; });
      if (tracker.stopping) break;
    }
    int c = accept4(kListenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;  // shut down by the stopper, or the socket is gone
    }
    std::unique_lock lk(tracker.mu);
    if (tracker.stopping) {
      close(c);
      break;
    }
    tracker.fds.insert(c);
    ++tracker.active;
    lk.unlock();
    std::thread([&, c] {
      serve_connection(c, ctx);
      std::lock_guard g(tracker.mu);
      tracker.fds.erase(c);
      close(c);
      --tracker.active;
      tracker.cv.notify_all();
    }).detach();
  }
  tracker.shut_all();
  // Give connections a moment to notice the shutdown before the daemon's
  // objects go; a stream still open does not stop the cleanup.
  {
    std::unique_lock lk(tracker.mu);
    tracker.cv.wait_for(lk, std::chrono::seconds(2), [&] { return tracker.active == 0; });
  }
  JobObjects objects(upstream, *rules);
  auto left = objects.remove_all();
  for (const auto& l : left) events.write_report({ProxyReport::Kind::CleanupFailed, "", 0, "", l});
  events.write_report({ProxyReport::Kind::CleanupDone, "", 0, "", ""});
  _exit(left.empty() ? 0 : 1);
}

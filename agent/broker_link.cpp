#include "agent/broker_link.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gh::agent {

namespace {

constexpr int kWelcomeTimeoutMs = 30000;

// Reads one whole message, for the greeting (before the reader thread).
Result<ipc::BrokerMessage> read_one(int fd, ipc::BrokerStreamReader& in, int timeout_ms) {
  char buf[65536];
  for (;;) {
    if (auto m = in.next()) return *m;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r == 0) return err("the broker did not answer within " + std::to_string(timeout_ms / 1000) + "s");
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err("the broker closed the link");
    if (!in.feed(std::string_view(buf, static_cast<size_t>(n)))) return err("the broker broke the protocol: " + in.error());
  }
}

}  // namespace

Result<std::unique_ptr<BrokerLink>> BrokerLink::from_fd(int fd, const std::string& runner) {
  return greet(std::unique_ptr<BrokerLink>(new BrokerLink(fd)), runner);
}

Result<std::unique_ptr<BrokerLink>> BrokerLink::connect(const std::string& socket_path, const std::string& runner) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return err("the broker's socket path " + socket_path + " is too long");
  memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return err(std::string("socket: ") + strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    close(fd);
    return err("cannot reach the broker at " + socket_path + ": " + strerror(e) +
               " (is gatehouse-broker.service running?)");
  }
  return greet(std::unique_ptr<BrokerLink>(new BrokerLink(fd)), runner);
}

Result<std::unique_ptr<BrokerLink>> BrokerLink::greet(std::unique_ptr<BrokerLink> l, const std::string& runner) {
  if (!l->send(ipc::BrokerMsg::Hello, ipc::encode(ipc::HelloRequest{ipc::kBrokerProtocolVersion, runner})))
    return err("the broker closed the link before the greeting");
  auto m = read_one(l->fd_, l->in_, kWelcomeTimeoutMs);
  if (!m) return m.error();
  if (m->type != ipc::BrokerMsg::Welcome)
    return err(std::string("the broker answered Hello with ") + ipc::broker_msg_name(m->type));
  auto w = ipc::decode<ipc::WelcomeEvent>(m->payload);
  if (!w) return err("the broker's Welcome is malformed: " + w.error().message);
  l->welcome_ = std::move(*w);
  return l;
}

BrokerLink::~BrokerLink() {
  shutdown(fd_, SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
  close(fd_);
}

void BrokerLink::start(std::function<void()> changed) {
  changed_ = std::move(changed);
  reader_ = std::thread([this] { reader(); });
}

std::shared_ptr<TaskInbox> BrokerLink::inbox(const std::string& task_id) {
  std::lock_guard lk(inbox_mu_);
  auto& b = inboxes_[task_id];
  if (!b) b = std::make_shared<TaskInbox>();
  return b;
}

void BrokerLink::forget(const std::string& task_id) {
  std::lock_guard lk(inbox_mu_);
  inboxes_.erase(task_id);
}

bool BrokerLink::send(ipc::BrokerMsg t, const std::string& payload) {
  std::lock_guard lk(write_mu_);
  return ipc::write_all(fd_, ipc::frame(t, payload));
}

bool BrokerLink::run_task(const ipc::RunTaskRequest& r) { return send(ipc::BrokerMsg::RunTask, ipc::encode(r)); }

bool BrokerLink::cancel(const std::string& task_id, ipc::CancelWhy why) {
  return send(ipc::BrokerMsg::CancelTask, ipc::encode(ipc::CancelTaskRequest{task_id, why}));
}

bool BrokerLink::ack(const std::string& task_id, uint64_t seq) {
  return send(ipc::BrokerMsg::Ack, ipc::encode(ipc::AckRequest{task_id, seq}));
}

void BrokerLink::mark_lost(const std::string& why) {
  if (lost_.exchange(true)) return;
  lost_why_ = why;
  {
    std::lock_guard lk(inbox_mu_);
    for (auto& [id, b] : inboxes_) {
      std::lock_guard blk(b->mu);
      b->cv.notify_all();
    }
  }
  if (changed_) changed_();
}

void BrokerLink::reader() {
  char buf[65536];
  // The messages first, then the socket: the greeting's read may have taken
  // the events the broker sent right after its Welcome (the replay of a
  // task that ended while no agent was there). Reading first would leave
  // them in the buffer until the broker sent something else, which for
  // a finished task is never: the task would wait for ever.
  for (bool first = true;; first = false) {
    if (!first) {
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return mark_lost("the broker closed the link");
      if (!in_.feed(std::string_view(buf, static_cast<size_t>(n))))
        return mark_lost("the broker broke the protocol: " + in_.error());
    }
    while (auto m = in_.next()) {
      switch (m->type) {
        case ipc::BrokerMsg::TaskEvent: {
          auto e = ipc::decode<ipc::TaskEventMsg>(m->payload);
          if (!e) return mark_lost("a malformed TaskEvent: " + e.error().message);
          auto b = inbox(e->task_id);
          std::lock_guard lk(b->mu);
          b->events.push_back(std::move(*e));
          b->cv.notify_all();
          break;
        }
        case ipc::BrokerMsg::TaskRejected: {
          auto r = ipc::decode<ipc::TaskRejectedEvent>(m->payload);
          if (!r) return mark_lost("a malformed TaskRejected: " + r.error().message);
          auto b = inbox(r->task_id);
          std::lock_guard lk(b->mu);
          b->rejected = r->why;
          b->cv.notify_all();
          break;
        }
        case ipc::BrokerMsg::Drain: {
          auto d = ipc::decode<ipc::DrainEvent>(m->payload);
          if (!d) return mark_lost("a malformed Drain: " + d.error().message);
          drain_ = std::max(drain_.load(), d->now ? 2 : 1);
          if (changed_) changed_();
          break;
        }
        case ipc::BrokerMsg::JobHeader:
        case ipc::BrokerMsg::StepStarted:
        case ipc::BrokerMsg::Output:
        case ipc::BrokerMsg::StepFinished:
        case ipc::BrokerMsg::Note:
        case ipc::BrokerMsg::Diagnostic:
        case ipc::BrokerMsg::Setup:
        case ipc::BrokerMsg::Summary:
        case ipc::BrokerMsg::Result:
        case ipc::BrokerMsg::Cancel:
        case ipc::BrokerMsg::Plan:
        case ipc::BrokerMsg::Hello:
        case ipc::BrokerMsg::RunTask:
        case ipc::BrokerMsg::CancelTask:
        case ipc::BrokerMsg::Ack:
        case ipc::BrokerMsg::Welcome:
          return mark_lost(std::string("the broker sent ") + ipc::broker_msg_name(m->type) + " out of place");
      }
    }
  }
}

}  // namespace gh::agent

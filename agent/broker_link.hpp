// The agent's end of the link to the broker (ipc/broker_messages.hpp).
// The agent asks the broker to run a task, to cancel one, and acknowledges
// the job events it has put in its spool; the broker answers with each
// task's events, numbered. The agent decides nothing about privilege: the
// broker checks the task's signature, the rules and the profile itself.
//
// Threads: one reader thread takes everything the broker sends and files
// it in the task's inbox; task threads wait on their inbox. Writes (from
// any thread) go out one whole message at a time under a lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.hpp"
#include "ipc/broker_messages.hpp"

namespace gh::agent {

// What the broker sent about one task, waiting for the task's thread.
struct TaskInbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<ipc::TaskEventMsg> events;
  std::optional<std::string> rejected;  // the broker did not start it, and why
};

class BrokerLink {
 public:
  // The broker that started this agent passed the link as `fd`; under
  // systemd the agent connects to the broker's socket. Either way the
  // agent says Hello and waits (bounded) for the Welcome.
  static Result<std::unique_ptr<BrokerLink>> from_fd(int fd, const std::string& runner);
  static Result<std::unique_ptr<BrokerLink>> connect(const std::string& socket_path, const std::string& runner);
  ~BrokerLink();
  BrokerLink(const BrokerLink&) = delete;
  BrokerLink& operator=(const BrokerLink&) = delete;

  const ipc::WelcomeEvent& welcome() const { return welcome_; }
  // Starts the reader thread; `changed` is called (from it) when the link
  // is lost or the broker asks for a drain.
  void start(std::function<void()> changed);

  // The inbox of a task; made on first use (the broker may replay a
  // task's events before its thread asks).
  std::shared_ptr<TaskInbox> inbox(const std::string& task_id);
  void forget(const std::string& task_id);

  bool run_task(const ipc::RunTaskRequest& r);
  bool cancel(const std::string& task_id, ipc::CancelWhy why);
  bool ack(const std::string& task_id, uint64_t seq);

  bool lost() const { return lost_; }
  const std::string& lost_why() const { return lost_why_; }
  // The broker's drain: 0 none, 1 stop claiming, 2 also cancel running tasks.
  int drain() const { return drain_; }

 private:
  explicit BrokerLink(int fd) : fd_(fd) {}
  static Result<std::unique_ptr<BrokerLink>> greet(std::unique_ptr<BrokerLink> l, const std::string& runner);
  bool send(ipc::BrokerMsg t, const std::string& payload);
  void reader();
  void mark_lost(const std::string& why);

  int fd_;
  std::mutex write_mu_;
  ipc::BrokerStreamReader in_;
  ipc::WelcomeEvent welcome_;
  std::mutex inbox_mu_;
  std::map<std::string, std::shared_ptr<TaskInbox>> inboxes_;
  std::thread reader_;
  std::function<void()> changed_;
  std::atomic<bool> lost_{false};
  std::string lost_why_;
  std::atomic<int> drain_{0};
};

}  // namespace gh::agent

// The agent's HTTPS client to the control plane (docs/protocol.md), on
// libcurl's easy interface. One ControlClient per thread: it owns one curl
// handle and reuses its connection between calls.
//
// Whatever the control plane answers is hostile input: answers are bounded
// (4 MiB, checked while they arrive), decoded strictly, and every failure
// becomes a CallError saying what went wrong and whether a retry can help.
// TLS verification is always on; redirects are never followed; the
// Authorization header is never logged.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "agent/config.hpp"
#include "protocol/protocol.hpp"
#include "common/result.hpp"

namespace gh::agent {

struct CallError {
  enum class Kind {
    Network,    // no answer: connect, TLS (untrusted certificate, wrong pin), timeout, stall
    Http,       // an answer with a non-2xx status (or a 3xx: redirects are not followed)
    Malformed,  // a 2xx answer the codec refused, or one over 4 MiB
    Request,    // not sent: the request itself is not valid (over 1 MiB, a bad task id)
  };
  Kind kind = Kind::Network;
  int status = 0;          // the HTTP status; 0 when none arrived
  std::string code;        // the protocol's error code ("out_of_order"), "" when none
  std::string message;     // for the operator's log; never holds a token
  int64_t acked = -1;      // with out_of_order / missing_records: the server's last stored record
  int retry_after = 0;     // seconds from Retry-After (429/503), at most 300; 0 = none
  bool interrupted = false;  // ended by interrupt(), not by the network
  // A claim answer whose task was refused by the decoder but whose id and
  // token are readable: the caller completes it as `refused` (protocol.md).
  std::optional<protocol::TaskIdentity> unreadable_task;

  // docs/protocol.md's error table: network errors, malformed answers,
  // 5xx, 429, out_of_order/missing_records (after resending) and a 404
  // without `unknown_task` (a server not speaking v1) are worth retrying;
  // 400, 401, 410, 413, unknown_task and already_completed are not.
  bool retryable() const;
};

template <typename T>
class [[nodiscard]] Reply {
 public:
  Reply(T value) : v_(std::move(value)) {}
  Reply(CallError e) : v_(std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  const CallError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, CallError> v_;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds call_timeout{30'000};  // total per call; a claim gets its wait on top
  // A transfer below 1 byte/s for this long is cut off (a claim: its wait on top).
  std::chrono::seconds stall_timeout{15};
};

class ControlClient {
 public:
  // Checks the config's TLS files are readable and the token well-formed;
  // errors say what to fix.
  static Result<ControlClient> create(const AgentConfig& config, std::string runner_token, ClientOptions options = {});

  ControlClient(ControlClient&&) noexcept;
  ControlClient& operator=(ControlClient&&) noexcept;
  ~ControlClient();

  // nullopt: nothing to run (204).
  Reply<std::optional<protocol::Task>> claim(const protocol::ClaimRequest& request);
  Reply<protocol::HeartbeatAnswer> heartbeat(const std::string& task_id, const std::string& task_token,
                                             const std::string& state);
  // The server's acked: every record through it is stored.
  Reply<int64_t> send_records(const std::string& task_id, const std::string& task_token,
                              const std::vector<protocol::Record>& records);
  Reply<Ok> complete(const std::string& task_id, const std::string& task_token, const protocol::Completion& completion);
  // Hands back a task claimed after a drain began: the control plane
  // queues it again for another runner.
  Reply<Ok> release(const std::string& task_id, const std::string& task_token);

  // From any thread: the claim in progress (or, if none, the next claim)
  // ends at once with an error whose `interrupted` is set. Used by the
  // signal thread and the drain so a claim's long poll does not make them
  // wait. The other calls are short and never cut: a release or a
  // completion after a drain began must go through.
  void interrupt();

 private:
  struct Impl;
  explicit ControlClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The wait before retry number `attempt` (0-based): 1 s doubling to 60 s,
// times a random factor in [0.5, 1.5].
std::chrono::milliseconds backoff_delay(int attempt, std::mt19937_64& rng);

}  // namespace gh::agent

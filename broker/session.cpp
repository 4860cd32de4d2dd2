// The broker's side of the worker channel. Everything the worker sends is
// hostile: each packet is checked for size, then framing, then type, then
// phase (ipc/messages.hpp), then meaning (step indexes, the order of
// events, the `when` rules), and any violation ends the job as an
// infrastructure error. The broker never trusts the worker's verdict: it
// recomputes which steps should have run and whether the job passed.
//
// Each handler's effect stays inside the job: it only passes job output
// on to the client (as the worker masked it, through JobEvents) and
// updates this job's results. No message can name a file, a process or anything on the host.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "broker/session.hpp"

namespace gh::broker {

namespace {

using Clock = std::chrono::steady_clock;

class Session {
 public:
  Session(int ch, const ipc::JobSpec& spec, const std::vector<StepView>& views, JobEvents& rep)
      : ch_(ch), spec_(spec), views_(views), rep_(rep) {
    out_.results.resize(spec.steps.size());
    started_at_.resize(spec.steps.size());
  }

  // Returns false to stop reading.
  bool handle(const ipc::Message& m) {
    if (!ipc::worker_message_allowed(m.type, phase_))
      return fail("message type " + std::to_string(static_cast<uint32_t>(m.type)) + " is not allowed in this phase");
    ipc::Reader r(m.payload);
    switch (m.type) {
      case ipc::Type::Hello: {
        uint32_t v = 0;
        if (!r.u32(v) || !r.at_end()) return fail("malformed Hello");
        if (v != ipc::kProtocolVersion) return fail("worker speaks protocol " + std::to_string(v));
        std::string frame = ipc::encode(ipc::Type::JobSpec, ipc::encode_job_spec(spec_));
        if (send(ch_, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size()))
          return fail(std::string("cannot send the job to the worker: ") + strerror(errno));
        phase_ = ipc::Phase::Running;
        return true;
      }
      case ipc::Type::StepStarted: {
        uint32_t i = 0;
        if (!r.u32(i) || !r.at_end()) return fail("malformed StepStarted");
        if (i != next_ || i >= spec_.steps.size()) return fail("step " + std::to_string(i) + " started out of order");
        if (!should_run(i)) return fail("step " + std::to_string(i + 1) + " started although its `when` rule says no");
        ++next_;
        out_.results[i].started = true;
        started_at_[i] = Clock::now();
        rep_.step_started(i, spec_.steps.size(), views_[i]);
        return true;
      }
      case ipc::Type::Output: {
        uint32_t i = 0;
        if (!r.u32(i)) return fail("malformed Output");
        if (i >= spec_.steps.size() || !out_.results[i].started) return fail("output for a step that has not started");
        if (r.rest().size() > ipc::kMaxOutputChunk) return fail("output chunk too large");
        rep_.output(i, r.rest());
        return true;
      }
      case ipc::Type::StepFinished: {
        uint32_t i = 0, outcome = 0, code = 0;
        if (!r.u32(i) || !r.u32(outcome) || !r.u32(code) || !r.at_end()) return fail("malformed StepFinished");
        if (outcome < 1 || outcome > 5) return fail("unknown step outcome " + std::to_string(outcome));
        if (i >= spec_.steps.size()) return fail("result for step " + std::to_string(i) + " which does not exist");
        auto o = static_cast<ipc::StepOutcome>(outcome);
        StepResult& res = out_.results[i];
        if (res.finished) return fail("step " + std::to_string(i + 1) + " finished twice");
        if (o == ipc::StepOutcome::NotRun) {
          if (i != next_) return fail("step " + std::to_string(i) + " skipped out of order");
          if (should_run(i) && !canceled_) return fail("step " + std::to_string(i + 1) + " skipped although it had to run");
          ++next_;
        } else if (o == ipc::StepOutcome::SpawnFailed && !res.started) {
          return fail("a step that never started cannot fail to spawn");
        } else if (!res.started) {
          return fail("result for step " + std::to_string(i + 1) + " which has not started");
        }
        res.finished = true;
        res.outcome = o;
        res.code = code;
        if (res.started) res.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_at_[i]);
        bool ok = o == ipc::StepOutcome::NotRun || (o == ipc::StepOutcome::Exited && code == 0);
        if (!ok && !spec_.steps[i].background) failed_ = true;
        rep_.step_finished(i, views_[i], res);
        return true;
      }
      case ipc::Type::JobFinished: {
        if (!r.at_end()) return fail("malformed JobFinished");
        for (size_t i = 0; i < out_.results.size(); ++i)
          if (!out_.results[i].finished) return fail("job finished before step " + std::to_string(i + 1) + " had a result");
        out_.job_finished = true;
        phase_ = ipc::Phase::Done;
        return true;
      }
      case ipc::Type::JobSpec:
      case ipc::Type::Cancel: break;
    }
    return fail("unexpected message");
  }

  void cancel(ipc::CancelReason why) {
    if (canceled_) return;
    canceled_ = true;
    std::string payload;
    ipc::put_u32(payload, static_cast<uint32_t>(why));
    std::string frame = ipc::encode(ipc::Type::Cancel, payload);
    (void)send(ch_, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  bool fail(const std::string& why) {
    if (out_.misbehaviour.empty()) out_.misbehaviour = why;
    return false;
  }

  ipc::Phase phase() const { return phase_; }
  SessionOutcome& outcome() { return out_; }

 private:
  // The same rule the worker applies; the broker checks, never believes.
  bool should_run(uint32_t i) const {
    switch (spec_.steps[i].when) {
      case 0: return !failed_;
      case 1: return failed_;
      default: return true;
    }
  }

  int ch_;
  const ipc::JobSpec& spec_;
  const std::vector<StepView>& views_;
  JobEvents& rep_;
  ipc::Phase phase_ = ipc::Phase::AwaitHello;
  SessionOutcome out_;
  std::vector<Clock::time_point> started_at_;
  uint32_t next_ = 0;
  bool failed_ = false;
  bool canceled_ = false;
};

}  // namespace

SessionOutcome run_session(int ch, const ipc::JobSpec& spec, const std::vector<StepView>& views, JobEvents& reporter,
                           std::chrono::seconds max_run_time) {
  Session s(ch, spec, views, reporter);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigset_t before;
  sigprocmask(SIG_BLOCK, &set, &before);
  int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

  const auto start = Clock::now();
  const auto hello_deadline = start + std::chrono::seconds(30);
  const auto deadline = start + max_run_time;
  auto cancel_deadline = Clock::time_point::max();
  static char buf[ipc::kMaxWorkerMessageBytes + 1];  // not zeroed per job

  for (;;) {
    auto now = Clock::now();
    if (s.phase() == ipc::Phase::AwaitHello && now >= hello_deadline) {
      s.fail("the worker did not say hello within 30s");
      break;
    }
    if (now >= deadline && !s.outcome().timed_out) {
      s.outcome().timed_out = true;
      reporter.note("the job reached its maximum run time (" + std::to_string(max_run_time.count()) + "s): canceling");
      s.cancel(ipc::CancelReason::MaxRunTime);
      cancel_deadline = now + std::chrono::seconds(10);
    }
    if (now >= cancel_deadline) break;  // the caller kills the cgroup
    auto next = std::min({deadline, cancel_deadline, s.phase() == ipc::Phase::AwaitHello ? hello_deadline : deadline});
    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    int timeout = static_cast<int>(std::clamp<long long>(wait_ms + 1, 1, 1000));

    // The client is polled until it is gone: a cancel from it, or its
    // going away, ends the job like the operator's signal does.
    const int client = reporter.sink_lost() ? -1 : reporter.fd();
    pollfd fds[3] = {{ch, POLLIN, 0}, {sigfd, POLLIN, 0}, {client, POLLIN, 0}};
    int n = poll(fds, 3, timeout);
    if (n < 0 && errno != EINTR) {
      s.fail(std::string("poll: ") + strerror(errno));
      break;
    }
    if (n <= 0 && !reporter.sink_lost()) continue;
    bool cancel_now = false;
    if (n > 0 && (fds[1].revents & POLLIN)) {
      signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {}
      cancel_now = true;
    }
    if (n > 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) reporter.read_client();
    if (reporter.cancel_requested() || reporter.sink_lost()) cancel_now = true;
    if (cancel_now && !s.outcome().interrupted) {
      s.outcome().interrupted = true;
      reporter.note("interrupted: canceling the job");
      s.cancel(ipc::CancelReason::Operator);
      cancel_deadline = Clock::now() + std::chrono::seconds(10);
    }
    if (n <= 0) continue;
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t len = recv(ch, buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT);
    if (len < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (len <= 0) {
      if (s.phase() != ipc::Phase::Done) s.fail("the worker exited before the job finished");
      break;  // EOF: the worker is gone
    }
    auto d = ipc::decode(std::string_view(buf, std::min(static_cast<size_t>(len), sizeof buf)),
                         ipc::kMaxWorkerMessageBytes);
    if (static_cast<size_t>(len) > ipc::kMaxWorkerMessageBytes) d = {std::nullopt, "message of " + std::to_string(len) + " bytes is over the limit"};
    if (!d.message) {
      s.fail(d.error);
      break;
    }
    if (!s.handle(*d.message)) break;
  }
  if (sigfd >= 0) close(sigfd);
  sigprocmask(SIG_SETMASK, &before, nullptr);  // a late cancel must still let the broker clean up
  return s.outcome();
}

}  // namespace gh::broker

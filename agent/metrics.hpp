// What the agent counts, for Prometheus (/metrics) and for a health check
// (/health). Every member is safe to call from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace gh::agent {

// The protocol's completion outcomes (docs/protocol.md), in render order.
inline constexpr const char* kJobOutcomes[] = {"passed", "failed", "refused", "infra_error", "canceled", "timed_out"};
inline constexpr size_t kJobOutcomeCount = sizeof kJobOutcomes / sizeof kJobOutcomes[0];

class Metrics {
 public:
  using Clock = std::chrono::system_clock;
  explicit Metrics(Clock::time_point started = Clock::now());

  void job_started();  // a `gatehouse run` child now runs
  void job_ended();    // ... and is gone
  // Counts a completion; an outcome not in kJobOutcomes counts as
  // infra_error (the label set stays fixed, whatever a child reports).
  void job_finished(std::string_view outcome);
  void claim_error();
  void control_plane_error();  // a task call (records, heartbeat, complete) failed
  void contact_succeeded(Clock::time_point at = Clock::now());
  void add_log_bytes(uint64_t n);
  void observe_setup_seconds(double seconds);
  void set_slots(int total);
  void set_slots_free(int free);
  // Why the agent does not claim now ("" when it does).
  void set_not_claiming(std::string why);
  // Draining: it claims nothing new, for good. Stopping: it lost the
  // broker and ends once its tasks are safe in the spool.
  void set_draining();
  void set_stopping();

  // Prometheus text exposition format 0.0.4.
  std::string render_prometheus() const;

  // Healthy while the control plane answered within `stale_after`, or,
  // before any answer, for `stale_after` after the agent started.
  bool healthy(Clock::time_point now, std::chrono::seconds stale_after) const;
  std::string health_json(Clock::time_point now, std::chrono::seconds stale_after) const;

  // For Kubernetes-style probes. Live (/healthz): the agent runs and has
  // its broker; it does not depend on the control plane, so an outage
  // there does not get a healthy agent restarted. Ready (/readyz): it
  // would claim now: healthy() as above, not draining, a free slot, and
  // nothing else holding claims back (the disk watermark).
  bool live() const;
  bool ready(Clock::time_point now, std::chrono::seconds stale_after) const;
  std::string probe_json(bool ready_probe, Clock::time_point now, std::chrono::seconds stale_after) const;

 private:
  mutable std::mutex mu_;
  Clock::time_point started_;
  uint64_t jobs_total_[kJobOutcomeCount] = {};
  int64_t jobs_running_ = 0;
  uint64_t claim_errors_ = 0, control_plane_errors_ = 0, log_bytes_ = 0;
  std::optional<Clock::time_point> last_contact_;
  double setup_sum_ = 0;
  uint64_t setup_count_ = 0;
  int slots_total_ = 0, slots_free_ = 0;
  std::string not_claiming_;
  bool draining_ = false, stopping_ = false;
  bool healthy_locked(Clock::time_point now, std::chrono::seconds stale_after) const;
};

// Label values and HELP text escaped as the 0.0.4 format wants them.
std::string prometheus_escape_label(std::string_view v);

}  // namespace gh::agent

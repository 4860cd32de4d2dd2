// The agent's counters and their two renderings. One mutex guards them
// all: updates are rare next to a job's work, and a scrape then sees one
// consistent state (jobs_running never disagrees with slots_free).
#include "agent/metrics.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

namespace gh::agent {

namespace {

// Label value and HELP escaping differ only in the quote.
std::string escape(std::string_view v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
  return out;
}

// Shortest text that reads back as the same double (Prometheus parses Go
// floats; `%g` would lose precision on a long-running sum).
std::string number(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += escape(help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const std::string& name_and_labels, const std::string& value) {
  out += name_and_labels;
  out += ' ';
  out += value;
  out += '\n';
}

int64_t unix_seconds(Metrics::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string prometheus_escape_label(std::string_view v) { return escape(v, true); }

Metrics::Metrics(Clock::time_point started) : started_(started) {}

void Metrics::job_started() {
  std::lock_guard lk(mu_);
  ++jobs_running_;
}

void Metrics::job_ended() {
  std::lock_guard lk(mu_);
  if (jobs_running_ > 0) --jobs_running_;
}

void Metrics::job_finished(std::string_view outcome) {
  size_t i = 0;
  while (i < kJobOutcomeCount && outcome != kJobOutcomes[i]) ++i;
  if (i == kJobOutcomeCount) i = 3;  // infra_error
  std::lock_guard lk(mu_);
  ++jobs_total_[i];
}

void Metrics::claim_error() {
  std::lock_guard lk(mu_);
  ++claim_errors_;
}

void Metrics::control_plane_error() {
  std::lock_guard lk(mu_);
  ++control_plane_errors_;
}

void Metrics::contact_succeeded(Clock::time_point at) {
  std::lock_guard lk(mu_);
  if (!last_contact_ || at > *last_contact_) last_contact_ = at;
}

void Metrics::add_log_bytes(uint64_t n) {
  std::lock_guard lk(mu_);
  log_bytes_ += n;
}

void Metrics::observe_setup_seconds(double seconds) {
  if (!(seconds >= 0)) return;  // NaN or negative: not a duration
  std::lock_guard lk(mu_);
  setup_sum_ += seconds;
  ++setup_count_;
}

void Metrics::set_slots(int total) {
  std::lock_guard lk(mu_);
  slots_total_ = total;
}

void Metrics::set_slots_free(int free) {
  std::lock_guard lk(mu_);
  slots_free_ = free;
}

void Metrics::set_not_claiming(std::string why) {
  if (why.size() > 256) why.resize(256);  // a label value, kept short
  std::lock_guard lk(mu_);
  not_claiming_ = std::move(why);
}

std::string Metrics::render_prometheus() const {
  std::lock_guard lk(mu_);
  std::string o;
  family(o, "gatehouse_jobs_total", "counter", "Jobs completed, by outcome.");
  for (size_t i = 0; i < kJobOutcomeCount; ++i)
    sample(o, std::string("gatehouse_jobs_total{outcome=\"") + kJobOutcomes[i] + "\"}", std::to_string(jobs_total_[i]));
  family(o, "gatehouse_jobs_running", "gauge", "Jobs running now.");
  sample(o, "gatehouse_jobs_running", std::to_string(jobs_running_));
  family(o, "gatehouse_claim_errors_total", "counter", "Claims that failed (network, server or protocol errors).");
  sample(o, "gatehouse_claim_errors_total", std::to_string(claim_errors_));
  family(o, "gatehouse_control_plane_errors_total", "counter",
         "Calls about a task (records, heartbeat, complete) that failed.");
  sample(o, "gatehouse_control_plane_errors_total", std::to_string(control_plane_errors_));
  family(o, "gatehouse_last_successful_contact_timestamp_seconds", "gauge",
         "Unix time of the last call the control plane answered; 0 before the first.");
  sample(o, "gatehouse_last_successful_contact_timestamp_seconds",
         std::to_string(last_contact_ ? unix_seconds(*last_contact_) : 0));
  family(o, "gatehouse_log_bytes_total", "counter", "Bytes of job output received from jobs.");
  sample(o, "gatehouse_log_bytes_total", std::to_string(log_bytes_));
  family(o, "gatehouse_sandbox_setup_seconds", "summary", "Time from admission until the job's sandbox ran.");
  sample(o, "gatehouse_sandbox_setup_seconds_sum", number(setup_sum_));
  sample(o, "gatehouse_sandbox_setup_seconds_count", std::to_string(setup_count_));
  family(o, "gatehouse_slots_total", "gauge", "Jobs this agent may run at once (runner.slots).");
  sample(o, "gatehouse_slots_total", std::to_string(slots_total_));
  family(o, "gatehouse_slots_free", "gauge", "Slots free now.");
  sample(o, "gatehouse_slots_free", std::to_string(slots_free_));
  family(o, "gatehouse_claiming", "gauge", "1 while the agent claims jobs, 0 while it does not (see gatehouse_not_claiming_info).");
  sample(o, "gatehouse_claiming", not_claiming_.empty() ? "1" : "0");
  family(o, "gatehouse_not_claiming_info", "gauge", "Why the agent does not claim jobs now; absent while it does.");
  if (!not_claiming_.empty())
    sample(o, "gatehouse_not_claiming_info{reason=\"" + prometheus_escape_label(not_claiming_) + "\"}", "1");
  family(o, "gatehouse_start_time_seconds", "gauge", "Unix time the agent started.");
  sample(o, "gatehouse_start_time_seconds", std::to_string(unix_seconds(started_)));
  return o;
}

bool Metrics::healthy_locked(Clock::time_point now, std::chrono::seconds stale_after) const {
  const Clock::time_point since = last_contact_ ? *last_contact_ : started_;
  return now - since <= stale_after;
}

bool Metrics::healthy(Clock::time_point now, std::chrono::seconds stale_after) const {
  std::lock_guard lk(mu_);
  return healthy_locked(now, stale_after);
}

std::string Metrics::health_json(Clock::time_point now, std::chrono::seconds stale_after) const {
  std::lock_guard lk(mu_);
  const bool ok = healthy_locked(now, stale_after);
  nlohmann::json j;
  j["healthy"] = ok;
  // "starting": no answer yet, still within the grace; "no_contact": no
  // answer ever; "stale": the last answer is too old.
  j["status"] = ok ? (last_contact_ ? "ok" : "starting") : (last_contact_ ? "stale" : "no_contact");
  if (last_contact_) {
    j["last_successful_contact"] = unix_seconds(*last_contact_);
    j["seconds_since_contact"] = std::chrono::duration_cast<std::chrono::seconds>(now - *last_contact_).count();
  } else {
    j["last_successful_contact"] = nullptr;
    j["seconds_since_contact"] = nullptr;
  }
  j["stale_after_seconds"] = stale_after.count();
  j["jobs_running"] = jobs_running_;
  j["slots_total"] = slots_total_;
  j["slots_free"] = slots_free_;
  j["not_claiming"] = not_claiming_;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void Metrics::set_draining() {
  std::lock_guard lk(mu_);
  draining_ = true;
}

void Metrics::set_stopping() {
  std::lock_guard lk(mu_);
  stopping_ = true;
}

bool Metrics::live() const {
  std::lock_guard lk(mu_);
  return !stopping_;
}

bool Metrics::ready(Clock::time_point now, std::chrono::seconds stale_after) const {
  std::lock_guard lk(mu_);
  return !stopping_ && !draining_ && slots_free_ > 0 && not_claiming_.empty() && healthy_locked(now, stale_after);
}

std::string Metrics::probe_json(bool ready_probe, Clock::time_point now, std::chrono::seconds stale_after) const {
  std::lock_guard lk(mu_);
  std::string why;  // the first reason the probe fails, "" when it passes
  if (stopping_) why = "stopping: the agent lost its broker";
  else if (ready_probe && draining_) why = "draining: no new claims";
  else if (ready_probe && !healthy_locked(now, stale_after))
    why = "no answer from the control plane for over " + std::to_string(stale_after.count()) + "s";
  else if (ready_probe && slots_free_ <= 0) why = "all " + std::to_string(slots_total_) + " slots are busy";
  else if (ready_probe && !not_claiming_.empty()) why = not_claiming_;
  nlohmann::json j;
  j["ok"] = why.empty();
  j["reason"] = why;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace gh::agent

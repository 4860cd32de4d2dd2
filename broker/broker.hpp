// Broker internals shared by `gatehouse run` (and later `serve`).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/exit_status.hpp"
#include "common/result.hpp"
#include "ipc/messages.hpp"

namespace gh::broker {

// uid_pool.cpp: one host uid per concurrent job, held by an flock on
// <lock_dir>/<uid>.lock for the job's whole life; a crashed run's lock
// dies with its process, which is how leftovers are recognised.
class UidLease {
 public:
  UidLease() = default;
  UidLease(uint32_t uid, int fd) : uid_(uid), fd_(fd) {}
  UidLease(UidLease&& o) noexcept;
  UidLease& operator=(UidLease&& o) noexcept;
  UidLease(const UidLease&) = delete;
  UidLease& operator=(const UidLease&) = delete;
  ~UidLease();
  uint32_t uid() const { return uid_; }

 private:
  uint32_t uid_ = 0;
  int fd_ = -1;
};
// Takes the first free uid of [first, first+count); `on_acquired` runs with
// the lock held, before use, to sweep what a crashed job with that uid left.
Result<UidLease> acquire_uid(const std::string& lock_dir, uint32_t first, uint32_t count,
                             void (*on_acquired)(uint32_t uid, void* ctx), void* ctx);
// Runs fn with uid's lock held if nobody holds it; false when it is in use.
bool run_if_uid_free(const std::string& lock_dir, uint32_t uid, void (*fn)(uint32_t uid, void* ctx), void* ctx);

// libexec.cpp: a helper binary (gatehouse-worker, gatehouse-agent,
// gatehouse-docker-proxy) beside this one, in ../libexec/gatehouse, in the
// build folder's `build_subdir`, else /usr/libexec/gatehouse/NAME.
std::string find_libexec(const std::string& name, const std::string& build_subdir = "");

// workdir.cpp
struct JobDir {
  std::string path;       // <work_root>/<uid>-<name>-<random>
  std::string root;       // mount point for the job's new root (root-owned)
  std::string workspace;  // the job's working directory (job uid, 0700)
  std::string checkout;   // checkout staging (job uid, read-only in the job)
};
Result<JobDir> create_job_dir(const std::string& work_root, uint32_t host_uid, const std::string& job_name);
// The work root (made if missing) must be on a nosuid,nodev mount: job
// workspaces are written by job uids and by their Docker containers (as
// root), so a setuid file or device node left there must stay inert on the
// host. The error says how to make such a mount.
Status check_work_root_mount(const std::string& work_root);
// Removes a tree whose files belong to a job uid, with only CAP_CHOWN and
// CAP_FOWNER (no CAP_DAC_OVERRIDE): each directory is taken back before
// it is entered.
Status remove_tree(const std::string& path);
// Removes job directories and cgroups left by runs that are gone.
void sweep_leftovers(const std::string& work_root, const std::string& lock_dir);
void sweep_uid(const std::string& work_root, uint32_t uid);

// checkout.cpp
struct CheckoutInfo {
  std::string source;  // the work tree or folder copied
  bool git = false;
  std::string branch, sha1, reponame;
  size_t files = 0;
  uint64_t bytes = 0;
};
Result<CheckoutInfo> stage_checkout(const std::string& job_file, const std::string& staging, uid_t uid, gid_t gid);

// report.cpp: what the operator sees.
struct StepView {
  std::string name;
  bool background = false;
};
struct StepResult {
  ipc::StepOutcome outcome = ipc::StepOutcome::NotRun;
  uint32_t code = 0;
  std::chrono::milliseconds duration{0};
  bool started = false, finished = false;
};
std::string describe_result(const StepResult& r);

class Masker;  // masker.hpp

// How `gatehouse run` ended, for the stream's result record.
struct RunVerdict {
  int exit_code = 0;
  std::string reason;
  bool canceled = false;   // SIGTERM/SIGINT, or the stream's reader went away
  bool timed_out = false;  // max_run_time reached
  uint64_t peak_memory_bytes = 0, cpu_usec = 0;
  std::chrono::milliseconds duration{0};
};
// "passed", "failed", "refused", "infra_error", "canceled" or "timed_out".
const char* verdict_outcome(const RunVerdict& v);
// The protocol's step outcome for a finished step (docs/jobs.md).
const char* step_outcome_name(const StepResult& r);

// Human mode writes text to a terminal or file. Stream mode
// (`--stream-fd`) writes JSON lines instead: the same text as `output`
// records (base64, at most kStreamChunk bytes each), plus `step`, `setup`
// and `result` records (docs/jobs.md has the format).
class Reporter {
 public:
  static constexpr size_t kStreamChunk = 64 * 1024;
  enum class Mode { Human, Stream };
  Reporter(int fd, bool colour, Mode mode = Mode::Human);
  ~Reporter();
  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;
  // (name, value) of every secret the job can see: all job output is
  // masked from here on (masker.hpp), one stream per step.
  void mask_secrets(std::vector<std::pair<std::string, std::string>> secrets);
  void job_header(const std::string& job, const std::string& file, const std::string& profile, const std::string& sandbox);
  void step_started(size_t index, size_t total, const StepView& s);
  void output(size_t index, std::string_view bytes);
  void step_finished(size_t index, const StepView& s, const StepResult& r);
  // `ending` names how steps that never finished ended ("canceled",
  // "timed_out" or "killed"; the stream closes them with that outcome).
  void summary(const std::vector<StepView>& steps, const std::vector<StepResult>& results, int exit_code,
               const std::string& reason, uint64_t peak_memory, uint64_t cpu_usec, std::chrono::milliseconds wall,
               const char* ending = "killed");
  void note(const std::string& line);
  // Messages about the run itself (errors, refusals): stderr in human
  // mode; in stream mode also `output` records, so a control plane sees why.
  void diagnostic(const std::string& text);
  // Stream mode: how long the sandbox took to set up; the final record.
  void setup_time(std::chrono::duration<double> seconds);
  void result(const RunVerdict& v);
  bool streaming() const { return mode_ == Mode::Stream; }
  // The stream's reader went away: nothing more can be reported, so the
  // job must not go on (the session sees a SIGTERM, see report.cpp).
  bool sink_lost() const { return sink_lost_; }

 private:
  void write(std::string_view s);
  void write_fd(std::string_view s);
  void stream_line(const std::string& json_line);
  void relay(size_t index, std::string_view bytes);  // job bytes, already masked
  void flush_masker(size_t index);
  std::string paint(const char* code, const std::string& s) const;
  int fd_;
  bool colour_;
  Mode mode_;
  bool sink_lost_ = false;
  long last_step_ = -1;
  bool at_line_start_ = true;
  std::vector<std::pair<std::string, std::string>> secrets_;
  static constexpr size_t kKeptMaskers = 8;
  std::map<size_t, std::unique_ptr<Masker>> maskers_;
  std::deque<size_t> finished_maskers_;  // finished steps whose masker is kept (report.cpp)
  std::map<size_t, std::chrono::steady_clock::time_point> open_steps_;  // started, not finished
};

// broker_session.cpp: the broker's side of the channel.
struct SessionOutcome {
  std::vector<StepResult> results;
  bool job_finished = false;      // JobFinished received after every step
  std::string misbehaviour;       // set when the worker broke the protocol
  bool timed_out = false;         // max_run_time hit
  bool interrupted = false;       // operator's SIGINT/SIGTERM
};
SessionOutcome run_session(int channel, const ipc::JobSpec& spec, const std::vector<StepView>& views,
                           Reporter& reporter, std::chrono::seconds max_run_time);

}  // namespace gh::broker

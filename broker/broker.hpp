// Broker internals shared by `gatehouse run` (and later `serve`).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "ipc/messages.hpp"

namespace gh::broker {

// Exit statuses of `gatehouse run` (DESIGN.md).
enum Exit : int { kPassed = 0, kStepFailed = 1, kBadInput = 2, kRefused = 3, kInfra = 4 };

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

// workdir.cpp
struct JobDir {
  std::string path;       // <work_root>/<uid>-<name>-<random>
  std::string root;       // mount point for the job's new root (root-owned)
  std::string workspace;  // the job's working directory (job uid, 0700)
  std::string checkout;   // checkout staging (job uid, read-only in the job)
};
Result<JobDir> create_job_dir(const std::string& work_root, uint32_t host_uid, const std::string& job_name);
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

class Reporter {
 public:
  Reporter(int fd, bool colour);
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
  void summary(const std::vector<StepView>& steps, const std::vector<StepResult>& results, int exit_code,
               const std::string& reason, uint64_t peak_memory, uint64_t cpu_usec, std::chrono::milliseconds wall);
  void note(const std::string& line);

 private:
  void write(std::string_view s);
  void relay(size_t index, std::string_view bytes);  // job bytes, already masked
  void flush_masker(size_t index);
  std::string paint(const char* code, const std::string& s) const;
  int fd_;
  bool colour_;
  long last_step_ = -1;
  bool at_line_start_ = true;
  std::vector<std::pair<std::string, std::string>> secrets_;
  std::map<size_t, std::unique_ptr<Masker>> maskers_;
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

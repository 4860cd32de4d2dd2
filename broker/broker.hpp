// Broker internals: the uid pool, helper binaries, the job's folder and its checkout.
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
#include "common/libexec.hpp"
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

using gh::find_libexec;

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
// host. The error says how to make such a mount. Checked first, before
// anything is made: every folder from / to the work root is root's, not
// writable by group or others (a sticky folder above it is fine), and has
// o+x, which the jobs' uids need to set up their sandboxes; the error
// names the folder, its mode and owner, and the chmod or chown to run.
Status check_work_root_mount(const std::string& work_root);
// Removes a tree whose files belong to a job uid, with only CAP_CHOWN and
// CAP_FOWNER (no CAP_DAC_OVERRIDE): each directory is taken back before
// it is entered.
Status remove_tree(const std::string& path);
// Removes job directories and cgroups left by runs that are gone.
void sweep_leftovers(const std::string& work_root, const std::string& lock_dir);
void sweep_uid(const std::string& work_root, uint32_t uid);

}  // namespace gh::broker

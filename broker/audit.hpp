// The audit log: one JSON object per line, each chained to the line before
// it by SHA-256, so `gatehouse audit verify` can prove nothing was edited,
// removed, inserted or reordered since the last hash an operator recorded.
// docs/audit.md is the operator's reference; this comment is the contract
// the broker's callers follow.
//
// Line format. The caller's fields plus four the log adds (a caller may not
// set them):
//   time  RFC 3339 UTC with milliseconds, "2024-05-01T12:34:56.789Z"
//   seq   1 for the first line of a file, then the previous line's seq + 1
//   prev  hex SHA-256 of the previous line's exact bytes (without its
//         newline); 64 zeros on the first line
//   hash  hex SHA-256 of this line serialized without "hash"
// Serialization is nlohmann dump() of the object: keys sorted, no spaces,
// ensure_ascii (every non-ASCII character as \uXXXX), invalid UTF-8 replaced
// by U+FFFD (hostile job metadata never makes the broker throw). The line
// written is the same serialization with "hash" in its sorted place. A line
// holds at most kMaxAuditLine bytes; a larger record is refused, not cut.
//
// Events (field "event"). docs/audit.md describes every field; these are
// the names, and the broker (admission.cpp, run_command.cpp) uses exactly
// them. Every record of one job carries the same "job_id" and, once the
// policy is known, policy (path or "(built-in)"), policy_digest (hex, as
// `policy digest` prints), profile and rule (1-based, or null with profile_override true when
// the operator overrode the rules):
//   admitted  metadata {project, branch, tag, trigger, job, signed_by}
//             ("" when unknown), job_file
//   refused   metadata, reason (what the operator was told), exit_code
//             (2 bad input, 3 refused by policy, 4 infrastructure); the
//             policy fields only when admission got that far
//   sandbox   sandbox {host_uid, job_uid, root_in_namespace, root, network,
//             docker, binds, hidden, secrets (names and exposure, never
//             values), seccomp_allow, seccomp_deny, landlock_abi, cgroup,
//             memory_bytes, pids, cpus, max_run_time_s}
//   denial    denial (what the broker refused or saw a limit refuse)
//   result    exit_code (0 passed, 1 a step failed, 4 infrastructure),
//             reason ("" when passed), peak_memory_bytes, cpu_usec, wall_ms
//
// Order and failure. The broker appends "admitted" (or "refused") and
// "sandbox" before the job's first step runs, and refuses the job if an
// append fails: no job runs unaudited. Each append is one write() under
// flock(LOCK_EX) followed by fdatasync(), so concurrent jobs and several
// agents on one host can share the file and the chain stays linear.
//
// A torn tail (the file does not end in "\n": power was lost mid-write)
// makes append() fail, and with it every job, until the operator looks:
// `gatehouse audit verify FILE` names the incomplete last line; keep a copy,
// remove that line, verify again. Appending after it instead would either
// hide the damage or leave a file that never verifies again. A write that
// fails while the broker is alive (disk full) is cut back off, so it never
// leaves a torn tail.
//
// Rotation: rename the file; the next append notices (under the lock) that
// the path names a new file and starts a new chain there (prev = zeros).
// Each file verifies on its own; record the old file's last hash (printed by
// verify) before rotating.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/audit_chain.hpp"
#include "common/result.hpp"

namespace gh::broker {

using audit::kMaxAuditLine;

class AuditLog {
 public:
  // Opens (creating if missing, mode 0640) the log for appending. Creates a
  // missing parent directory (mode 0750) only when the grandparent exists.
  // Refuses a symlink, anything but a regular file, and a file that group
  // or other may write.
  static Result<AuditLog> open(const std::string& path);

  // Appends one record: `record` must be a JSON object with a string
  // "event" and without time/seq/prev/hash. Durable (fdatasync) on return.
  Status append(nlohmann::json record);

  const std::string& path() const { return path_; }

  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&& other) noexcept;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();

 private:
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  Status reopen();
  Status append_locked(nlohmann::json record, off_t size);  // flock held

  std::string path_;
  int fd_ = -1;
};

}  // namespace gh::broker

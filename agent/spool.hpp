// The agent's per-task spool (docs/protocol.md, "What survives what"):
// everything a job printed and every step event, on disk before it is sent
// and kept until the control plane acknowledges it, across control-plane
// outages and agent restarts.
//
// On disk, <spool_root>/<task id>/ (0700, the root must not be writable by
// anyone but the agent) holds:
//   task.json    the claimed task with its token (0600; format 1)
//   state.json   acked, completion, drop counters (0600; format 1; replaced
//                atomically: temp file, fsync, rename, fsync of the folder)
//   broker_seq   "B S": B, the number of the last broker event whose
//                records are in records.log, and S, the spool's next seq
//                after them (0600; replaced atomically), so events the
//                broker sends again after a restart are not spooled twice,
//                and records past S (spooled, made durable, but the agent
//                died before it wrote B) are cut before the broker's
//                replay spools them again
//   records.log  append-only: a header (magic "GHSPOOL1", the first seq it
//                holds, checksum) then frames [sha256 prefix(8)][len(4)]
//                [payload]; the checksum covers len and payload, so a torn
//                last frame is found and cut off on recovery.
//
// Seq numbers start at 0, are consecutive, and a record keeps its seq
// forever: a resend after a restart carries the same seq, so the server's
// "ignore what is at or below acked" makes retries idempotent.
//
// Bound: unacknowledged output stays within limit_bytes. When an outage
// pushes it over, the oldest half of the bound (the head) and the newest
// quarter (the tail, which then grows back to about half) are kept and the
// middle becomes one gap record. Records already handed out by pending()
// are never dropped or changed (the server may hold them), so later drops
// extend an unsent gap or add a new one after a sent one.
//
// Not thread-safe: one thread (the task's) owns a TaskSpool.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/protocol.hpp"
#include "common/result.hpp"

namespace gh::agent {

// Below this the head and tail would hold only a handful of records.
inline constexpr uint64_t kMinSpoolLimitBytes = 1 << 20;

class TaskSpool {
 public:
  // Creates <spool_root>/<task id>/ atomically (built under a name no task
  // id can have, then renamed). Refuses an id that fails
  // protocol::task_id_problem, a bad token, and an id already spooled.
  static Result<TaskSpool> create(const std::string& spool_root, const protocol::Task& task, uint64_t limit_bytes);

  // Every task folder left by an earlier agent, oldest first. A folder that
  // cannot be trusted is left in place and described in `problems` (with
  // what to do); half-created folders are removed and mentioned there.
  // A torn last record is cut off silently: it was never durable, so it was
  // never sent.
  static Result<std::vector<TaskSpool>> recover(const std::string& spool_root, uint64_t limit_bytes,
                                                std::vector<std::string>& problems);

  TaskSpool(TaskSpool&&) noexcept;
  TaskSpool& operator=(TaskSpool&&) noexcept;
  ~TaskSpool();

  const protocol::Task& task() const;
  const std::string& path() const;  // the task's folder

  // Output is split into records of at most protocol::kMaxOutputRecordBytes;
  // callers should batch small writes (one record per append).
  Status append_output(std::string_view bytes);
  Status append_step(protocol::Record step);  // type must be Step; seq assigned here
  Status sync();                              // fdatasync: what was appended is durable

  // Records after acked(), in seq order: at most max_records, and at most
  // max_bytes once encoded for the wire (base64 output and each record's JSON;
  // always one record if any is pending).
  // Syncs first (a record is durable before it is sent) and freezes what it
  // returns against later compaction. An I/O error or a checksum mismatch
  // in the spool's own file is an error.
  Result<std::vector<protocol::Record>> pending(size_t max_records, size_t max_bytes);

  // Forgets records through `acked` (persisted). An older acked is ignored;
  // one beyond last_seq() is refused (the server claims what was never sent).
  Status acknowledge(int64_t acked);
  int64_t last_seq() const;  // -1 before the first record
  int64_t acked() const;     // -1 when nothing is acknowledged
  uint64_t pending_output_bytes() const;

  // Durable before it returns. last_seq is set to last_seq(); records are
  // synced first. After it, appends are refused (the stream has ended).
  Status set_completion(protocol::Completion completion);
  std::optional<protocol::Completion> completion() const;

  // The broker's job events through this number are spooled (0: none).
  // Set after the records they made are synced, before the broker is told.
  uint64_t broker_seq() const;
  Status set_broker_seq(uint64_t seq);
  // After a restart, before the broker's replay: cuts the records past the
  // broker_seq file's S (never sent: records go out only after B is
  // written) and returns how many were cut. Leaves everything in place
  // when a gap record spans S or the task is complete.
  Result<uint64_t> cut_unmarked_records();

  // Deletes the folder (after the completion was acknowledged). The object
  // is unusable afterwards.
  Status remove();

  uint64_t dropped_bytes() const;    // output bytes replaced by gaps, ever
  uint64_t dropped_records() const;  // output and step records replaced by gaps, ever

  struct Impl;  // spool.cpp

 private:
  explicit TaskSpool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gh::agent

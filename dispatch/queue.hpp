// The task queue of gatehouse-dispatch: one SQLite file (WAL,
// synchronous=FULL) that the server and the admin commands share. SQLite's
// locking is what keeps two runners from claiming the same task and the
// record stream in order, so every change is one IMMEDIATE transaction.
//
// The queue never stores a task token: only its SHA-256, set at claim.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/protocol.hpp"
#include "common/result.hpp"

struct sqlite3;

namespace gh::dispatch {

struct NewTask {
  std::string job_name;
  std::string config;
  protocol::JobMetaWire meta;
  std::optional<protocol::Signature> signature;
};

// One row of `tasks`, as the admin commands show it.
struct TaskRow {
  std::string id;
  std::string job_name;
  std::string config;
  protocol::JobMetaWire meta;
  std::optional<protocol::Signature> signature;
  std::string state;  // queued running lost completed canceled
  std::string runner;
  std::string token_sha256;  // hex; "" until claimed
  bool cancel = false;
  int64_t acked = -1;
  int64_t record_count = 0;
  int64_t created_at = 0, claimed_at = 0, heartbeat_at = 0, completed_at = 0;
  std::optional<protocol::Completion> completion;
};

// One stored record, as `logs` renders it.
struct StoredRecord {
  int64_t seq = 0;
  int64_t end_seq = 0;  // seq, or last_seq for a gap
  std::string type;     // output step gap
  std::string payload;  // output: the bytes; step and gap: JSON
};

struct HeartbeatResult {
  enum class Kind { Ok, Gone };
  Kind kind = Kind::Ok;
  bool cancel = false;
  int64_t acked = -1;
};

struct RecordsResult {
  enum class Kind { Acked, OutOfOrder, Completed, Gone, Bad };
  Kind kind = Kind::Acked;
  int64_t acked = -1;
  std::string message;  // Bad, Completed
};

struct CompleteResult {
  enum class Kind { Stored, Same, MissingRecords, Different, Gone, Bad };
  Kind kind = Kind::Stored;
  int64_t acked = -1;
  std::string message;  // Bad
};

struct CancelResult {
  enum class Kind { NotFound, CanceledQueued, Flagged, AlreadyFinal };
  Kind kind = Kind::NotFound;
  std::string state;  // the state after the call
};

std::string sha256_hex(const std::string& bytes);

class Queue {
 public:
  enum class Mode { Create, Existing };
  static Result<Queue> open(const std::string& path, Mode mode);

  Queue(Queue&& other) noexcept;
  Queue& operator=(Queue&&) = delete;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;
  ~Queue();

  Result<std::string> submit(const NewTask& task);  // the new task's id

  // Hands the oldest queued task to `runner`, atomically, with a fresh token
  // (returned here once, stored only as its hash). nullopt: nothing queued.
  Result<std::optional<protocol::Task>> claim(const std::string& runner, const std::string& token_name);

  Result<std::optional<TaskRow>> find(const std::string& id);
  Result<std::vector<TaskRow>> list();
  Result<std::vector<StoredRecord>> records_after(const std::string& id, int64_t after_seq, int limit);

  // Task calls; the caller has checked the task token already.
  Result<HeartbeatResult> heartbeat(const std::string& id);
  Result<RecordsResult> add_records(const std::string& id, const std::vector<protocol::Record>& records);
  Result<CompleteResult> complete(const std::string& id, const protocol::Completion& completion);

  Result<CancelResult> cancel(const std::string& id);
  // Marks running tasks with no heartbeat since `before` (unix seconds) lost.
  // A running task the agent hands back before it started it (it claimed
  // it as a drain began): queued again, its token void, its runner
  // cleared. false when the task is not running or has records.
  Result<bool> release(const std::string& id);
  Result<int> mark_lost(int64_t before);
  // SQLite's data_version: changes when another connection (a `submit`, a
  // cancel) commits. A long poll reads it often and claims only after a
  // change, which costs a page read, not a query.
  Result<int64_t> data_version();

 private:
  explicit Queue(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  Status begin_immediate() { return exec("BEGIN IMMEDIATE"); }
  void rollback();
  Error fail(const std::string& what);  // the database's error, then ROLLBACK
  sqlite3* db_ = nullptr;
};

int64_t unix_now();

}  // namespace gh::dispatch

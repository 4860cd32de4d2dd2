#include "dispatch/queue.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace gh::dispatch {
namespace {

using json = nlohmann::json;

constexpr int kBusyTimeoutMs = 10000;
constexpr int kSchemaVersion = 1;

const char* const kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS tasks(
  num INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  job_name TEXT NOT NULL,
  config TEXT NOT NULL,
  meta TEXT NOT NULL,
  signature TEXT,
  state TEXT NOT NULL,
  runner TEXT NOT NULL DEFAULT '',
  runner_token_name TEXT NOT NULL DEFAULT '',
  token_sha256 TEXT NOT NULL DEFAULT '',
  cancel INTEGER NOT NULL DEFAULT 0,
  acked INTEGER NOT NULL DEFAULT -1,
  created_at INTEGER NOT NULL,
  claimed_at INTEGER NOT NULL DEFAULT 0,
  heartbeat_at INTEGER NOT NULL DEFAULT 0,
  completed_at INTEGER NOT NULL DEFAULT 0,
  completion TEXT);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state, num);
CREATE TABLE IF NOT EXISTS records(
  task_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  end_seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  payload BLOB NOT NULL,
  PRIMARY KEY(task_id, seq)) WITHOUT ROWID;
)SQL";

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) st_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return st_ != nullptr; }
  Stmt& reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    return *this;
  }
  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& s) {
    sqlite3_bind_blob(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Stmt& bind_null(int i) {
    sqlite3_bind_null(st_, i);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE, or an error code.
  int step() { return sqlite3_step(st_); }
  int64_t i64(int col) const { return sqlite3_column_int64(st_, col); }
  bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  std::string text(int col) const {
    const void* p = sqlite3_column_blob(st_, col);
    int n = sqlite3_column_bytes(st_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }

 private:
  sqlite3_stmt* st_ = nullptr;
};

Error db_error(sqlite3* db, const std::string& what) {
  return err("database: " + what + ": " + sqlite3_errmsg(db));
}

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) return "";
  static const char* const digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : buf) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

json meta_json(const protocol::JobMetaWire& m) {
  return {{"project", m.project}, {"branch", m.branch}, {"tag", m.tag}, {"trigger", m.trigger}, {"revision", m.revision}};
}

protocol::JobMetaWire meta_from(const std::string& text) {
  protocol::JobMetaWire m;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return m;
  m.project = j.value("project", "");
  m.branch = j.value("branch", "");
  m.tag = j.value("tag", "");
  m.trigger = j.value("trigger", "");
  m.revision = j.value("revision", "");
  return m;
}

// The stored form of a completion; also what "the same completion" means.
std::string completion_text(const protocol::Completion& c) {
  return json{{"outcome", c.outcome},         {"exit_code", c.exit_code},
              {"reason", c.reason},           {"last_seq", c.last_seq},
              {"peak_memory_bytes", c.peak_memory_bytes}, {"cpu_usec", c.cpu_usec},
              {"duration_ms", c.duration_ms}}
      .dump();
}

std::optional<protocol::Completion> completion_from(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  protocol::Completion c;
  c.outcome = j.value("outcome", "");
  c.exit_code = j.value("exit_code", 0);
  c.reason = j.value("reason", "");
  c.last_seq = j.value("last_seq", int64_t{-1});
  c.peak_memory_bytes = j.value("peak_memory_bytes", uint64_t{0});
  c.cpu_usec = j.value("cpu_usec", uint64_t{0});
  c.duration_ms = j.value("duration_ms", uint64_t{0});
  return c;
}

int64_t end_seq_of(const protocol::Record& r) { return r.type == protocol::RecordType::Gap ? r.last_seq : r.seq; }

const char* type_name(protocol::RecordType t) {
  switch (t) {
    case protocol::RecordType::Output: return "output";
    case protocol::RecordType::Step: return "step";
    case protocol::RecordType::Gap: return "gap";
  }
  return "output";
}

std::string payload_of(const protocol::Record& r) {
  switch (r.type) {
    case protocol::RecordType::Output: return r.data;
    case protocol::RecordType::Step: {
      json j{{"index", r.index}, {"name", r.name}, {"state", r.state}};
      if (r.state == "finished") {
        j["outcome"] = r.outcome;
        j["code"] = r.code;
        j["duration_ms"] = r.duration_ms;
      }
      return j.dump();
    }
    case protocol::RecordType::Gap: return json{{"last_seq", r.last_seq}, {"bytes", r.bytes}}.dump();
  }
  return "";
}

const char* const kTaskColumns =
    "id, job_name, config, meta, signature, state, runner, token_sha256, cancel, acked, created_at, "
    "claimed_at, heartbeat_at, completed_at, completion, "
    "(SELECT count(*) FROM records r WHERE r.task_id = tasks.id)";

TaskRow row_from(const Stmt& st) {
  TaskRow t;
  t.id = st.text(0);
  t.job_name = st.text(1);
  t.config = st.text(2);
  t.meta = meta_from(st.text(3));
  if (!st.is_null(4)) {
    json j = json::parse(st.text(4), nullptr, false);
    if (j.is_object()) t.signature = protocol::Signature{j.value("key", ""), j.value("ed25519", "")};
  }
  t.state = st.text(5);
  t.runner = st.text(6);
  t.token_sha256 = st.text(7);
  t.cancel = st.i64(8) != 0;
  t.acked = st.i64(9);
  t.created_at = st.i64(10);
  t.claimed_at = st.i64(11);
  t.heartbeat_at = st.i64(12);
  t.completed_at = st.i64(13);
  if (!st.is_null(14)) t.completion = completion_from(st.text(14));
  t.record_count = st.i64(15);
  return t;
}

}  // namespace

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  static const char* const digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

Result<Queue> Queue::open(const std::string& path, Mode mode) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (mode == Mode::Create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    if (mode == Mode::Existing)
      return err("cannot open the database " + path + ": " + why +
                 " (create it with `gatehouse-dispatch submit` or `serve`, or check --db)");
    return err("cannot open or create the database " + path + ": " + why);
  }
  Queue q(db);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  sqlite3_extended_result_codes(db, 1);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    Status s = q.exec(pragma);
    if (!s) return s.error();
  }
  Stmt version(db, "PRAGMA user_version");
  if (!version.ok() || version.step() != SQLITE_ROW) return db_error(db, "reading the schema version of " + path);
  int64_t v = version.i64(0);
  if (v > kSchemaVersion)
    return err("the database " + path + " has schema version " + std::to_string(v) +
               ", newer than this gatehouse-dispatch understands (" + std::to_string(kSchemaVersion) + ")");
  if (v < kSchemaVersion) {
    if (Status s = q.exec(kSchema); !s) return s.error();
    if (Status s = q.exec("PRAGMA user_version = 1"); !s) return s.error();
  }
  return q;
}

Queue::Queue(Queue&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }

Queue::~Queue() {
  if (db_) sqlite3_close(db_);
}

Status Queue::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string why = msg ? msg : sqlite3_errmsg(db_);
    sqlite3_free(msg);
    return err(std::string("database: ") + why);
  }
  return ok_status();
}

void Queue::rollback() { (void)exec("ROLLBACK"); }

Error Queue::fail(const std::string& what) {
  Error e = db_error(db_, what);  // before ROLLBACK replaces the message
  rollback();
  return e;
}

Result<std::string> Queue::submit(const NewTask& task) {
  if (Status s = begin_immediate(); !s) return s.error();
  // A unique placeholder, then the id from the row number: readable ids
  // (t-000001) without a second counter.
  Stmt ins(db_,
           "INSERT INTO tasks(id, job_name, config, meta, signature, state, created_at) "
           "VALUES(?1, ?2, ?3, ?4, ?5, 'queued', ?6)");
  if (!ins.ok()) return fail("preparing submit");
  ins.bind(1, "new-" + random_hex(16)).bind(2, task.job_name).bind(3, task.config).bind(4, meta_json(task.meta).dump());
  if (task.signature)
    ins.bind(5, json{{"key", task.signature->key}, {"ed25519", task.signature->ed25519}}.dump());
  else
    ins.bind_null(5);
  ins.bind(6, unix_now());
  if (ins.step() != SQLITE_DONE) return fail("adding the task");
  int64_t num = sqlite3_last_insert_rowid(db_);
  char id[32];
  std::snprintf(id, sizeof id, "t-%06lld", static_cast<long long>(num));
  Stmt upd(db_, "UPDATE tasks SET id = ?1 WHERE num = ?2");
  if (!upd.ok()) return fail("preparing submit");
  upd.bind(1, std::string(id)).bind(2, num);
  if (upd.step() != SQLITE_DONE) return fail("naming the task");
  if (Status s = exec("COMMIT"); !s) return rollback(), s.error();
  return std::string(id);
}

Result<std::optional<protocol::Task>> Queue::claim(const std::string& runner, const std::string& token_name) {
  {
    // Long polls ask often; a plain read first keeps them off the write lock.
    Stmt any(db_, "SELECT 1 FROM tasks WHERE state = 'queued' AND cancel = 0 LIMIT 1");
    if (!any.ok()) return db_error(db_, "preparing claim");
    int rc = any.step();
    if (rc == SQLITE_DONE) return std::optional<protocol::Task>();
    if (rc != SQLITE_ROW) return db_error(db_, "looking for a queued task");
  }
  if (Status s = begin_immediate(); !s) return s.error();
  Stmt sel(db_,
           "SELECT id, job_name, config, meta, signature FROM tasks "
           "WHERE state = 'queued' AND cancel = 0 ORDER BY num LIMIT 1");
  if (!sel.ok()) return fail("preparing claim");
  int rc = sel.step();
  if (rc == SQLITE_DONE) {
    rollback();
    return std::optional<protocol::Task>();
  }
  if (rc != SQLITE_ROW) return fail("looking for a queued task");
  protocol::Task t;
  t.id = sel.text(0);
  t.job_name = sel.text(1);
  t.job_config = sel.text(2);
  t.meta = meta_from(sel.text(3));
  if (!sel.is_null(4)) {
    json j = json::parse(sel.text(4), nullptr, false);
    if (j.is_object()) t.signature = protocol::Signature{j.value("key", ""), j.value("ed25519", "")};
  }
  t.token = random_hex(32);
  std::string hash = sha256_hex(t.token);
  if (t.token.size() != 64 || hash.empty()) return rollback(), err("could not generate a task token (RAND_bytes failed)");
  int64_t now = unix_now();
  Stmt upd(db_,
           "UPDATE tasks SET state = 'running', runner = ?1, runner_token_name = ?2, token_sha256 = ?3, "
           "claimed_at = ?4, heartbeat_at = ?4 WHERE id = ?5 AND state = 'queued'");
  if (!upd.ok()) return fail("preparing claim");
  upd.bind(1, runner).bind(2, token_name).bind(3, hash).bind(4, now).bind(5, t.id);
  if (upd.step() != SQLITE_DONE || sqlite3_changes(db_) != 1) return fail("assigning the task");
  if (Status s = exec("COMMIT"); !s) return rollback(), s.error();
  return std::optional<protocol::Task>(std::move(t));
}

Result<std::optional<TaskRow>> Queue::find(const std::string& id) {
  std::string sql = std::string("SELECT ") + kTaskColumns + " FROM tasks WHERE id = ?1";
  Stmt st(db_, sql.c_str());
  if (!st.ok()) return db_error(db_, "preparing a lookup");
  st.bind(1, id);
  int rc = st.step();
  if (rc == SQLITE_DONE) return std::optional<TaskRow>();
  if (rc != SQLITE_ROW) return db_error(db_, "looking up task " + id);
  return std::optional<TaskRow>(row_from(st));
}

Result<std::vector<TaskRow>> Queue::list() {
  std::string sql = std::string("SELECT ") + kTaskColumns + " FROM tasks ORDER BY num";
  Stmt st(db_, sql.c_str());
  if (!st.ok()) return db_error(db_, "preparing the task list");
  std::vector<TaskRow> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(row_from(st));
  if (rc != SQLITE_DONE) return db_error(db_, "listing tasks");
  return out;
}

Result<std::vector<StoredRecord>> Queue::records_after(const std::string& id, int64_t after_seq, int limit) {
  Stmt st(db_,
          "SELECT seq, end_seq, type, payload FROM records WHERE task_id = ?1 AND seq > ?2 "
          "ORDER BY seq LIMIT ?3");
  if (!st.ok()) return db_error(db_, "preparing the record query");
  st.bind(1, id).bind(2, after_seq).bind(3, int64_t{limit});
  std::vector<StoredRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(StoredRecord{st.i64(0), st.i64(1), st.text(2), st.text(3)});
  if (rc != SQLITE_DONE) return db_error(db_, "reading the records of " + id);
  return out;
}

Result<HeartbeatResult> Queue::heartbeat(const std::string& id) {
  if (Status s = begin_immediate(); !s) return s.error();
  Stmt sel(db_, "SELECT state, cancel, acked FROM tasks WHERE id = ?1");
  if (!sel.ok()) return fail("preparing heartbeat");
  sel.bind(1, id);
  if (sel.step() != SQLITE_ROW) return fail("looking up task " + id);
  HeartbeatResult r;
  std::string state = sel.text(0);
  r.cancel = sel.i64(1) != 0;
  r.acked = sel.i64(2);
  if (state == "completed" && r.cancel) {
    rollback();
    r.kind = HeartbeatResult::Kind::Gone;
    return r;
  }
  // A heartbeat after the task was marked lost means the agent came back.
  Stmt upd(db_,
           "UPDATE tasks SET heartbeat_at = ?1, state = CASE state WHEN 'lost' THEN 'running' ELSE state END "
           "WHERE id = ?2");
  if (!upd.ok()) return fail("preparing heartbeat");
  upd.bind(1, unix_now()).bind(2, id);
  if (upd.step() != SQLITE_DONE) return fail("recording the heartbeat");
  if (Status s = exec("COMMIT"); !s) return rollback(), s.error();
  return r;
}

Result<RecordsResult> Queue::add_records(const std::string& id, const std::vector<protocol::Record>& records) {
  RecordsResult r;
  // The batch must be one contiguous run of the stream by itself.
  for (size_t i = 0; i < records.size(); ++i) {
    if (end_seq_of(records[i]) < records[i].seq) {
      r.kind = RecordsResult::Kind::Bad;
      r.message = "records[" + std::to_string(i) + "]: a gap's last_seq is below its seq";
      return r;
    }
    if (i > 0 && records[i].seq != end_seq_of(records[i - 1]) + 1) {
      r.kind = RecordsResult::Kind::Bad;
      r.message = "records[" + std::to_string(i) + "]: seq " + std::to_string(records[i].seq) +
                  " does not follow the record before it (expected " + std::to_string(end_seq_of(records[i - 1]) + 1) +
                  ")";
      return r;
    }
  }
  if (Status s = begin_immediate(); !s) return s.error();
  Stmt sel(db_, "SELECT state, cancel, acked, completion IS NOT NULL FROM tasks WHERE id = ?1");
  if (!sel.ok()) return fail("preparing records");
  sel.bind(1, id);
  if (sel.step() != SQLITE_ROW) return fail("looking up task " + id);
  bool cancel = sel.i64(1) != 0;
  bool completed = sel.i64(3) != 0;
  r.acked = sel.i64(2);
  if (completed && cancel) {
    rollback();
    r.kind = RecordsResult::Kind::Gone;
    return r;
  }
  if (records.empty() || records.front().seq > r.acked + 1) {
    rollback();
    r.kind = records.empty() ? RecordsResult::Kind::Acked : RecordsResult::Kind::OutOfOrder;
    return r;
  }
  size_t first_new = 0;
  while (first_new < records.size() && end_seq_of(records[first_new]) <= r.acked) ++first_new;
  if (first_new < records.size() && records[first_new].seq != r.acked + 1) {
    rollback();
    r.kind = RecordsResult::Kind::Bad;
    r.message = "records[" + std::to_string(first_new) + "] (a gap from seq " + std::to_string(records[first_new].seq) +
                ") overlaps records already stored through " + std::to_string(r.acked);
    return r;
  }
  if (first_new < records.size() && completed) {
    rollback();
    r.kind = RecordsResult::Kind::Completed;
    r.message = "task " + id + " is completed with its stream through seq " + std::to_string(r.acked) +
                "; records after it are not accepted";
    return r;
  }
  Stmt ins(db_, "INSERT INTO records(task_id, seq, end_seq, type, payload) VALUES(?1, ?2, ?3, ?4, ?5)");
  if (!ins.ok()) return fail("preparing records");
  for (size_t i = first_new; i < records.size(); ++i) {
    const protocol::Record& rec = records[i];
    Stmt& one = ins.reset();
    one.bind(1, id).bind(2, rec.seq).bind(3, end_seq_of(rec)).bind(4, std::string(type_name(rec.type)));
    one.bind_blob(5, payload_of(rec));
    if (one.step() != SQLITE_DONE) return fail("storing record " + std::to_string(rec.seq));
    r.acked = end_seq_of(rec);
  }
  Stmt upd(db_,
           "UPDATE tasks SET acked = ?1, heartbeat_at = ?2, "
           "state = CASE state WHEN 'lost' THEN 'running' ELSE state END WHERE id = ?3");
  if (!upd.ok()) return fail("preparing records");
  upd.bind(1, r.acked).bind(2, unix_now()).bind(3, id);
  if (upd.step() != SQLITE_DONE) return fail("updating acked");
  if (Status s = exec("COMMIT"); !s) return rollback(), s.error();
  r.kind = RecordsResult::Kind::Acked;
  return r;
}

Result<CompleteResult> Queue::complete(const std::string& id, const protocol::Completion& completion) {
  CompleteResult r;
  std::string text = completion_text(completion);
  if (Status s = begin_immediate(); !s) return s.error();
  Stmt sel(db_, "SELECT cancel, acked, completion FROM tasks WHERE id = ?1");
  if (!sel.ok()) return fail("preparing complete");
  sel.bind(1, id);
  if (sel.step() != SQLITE_ROW) return fail("looking up task " + id);
  bool cancel = sel.i64(0) != 0;
  r.acked = sel.i64(1);
  if (!sel.is_null(2)) {
    rollback();
    if (sel.text(2) == text)
      r.kind = CompleteResult::Kind::Same;
    else
      r.kind = cancel ? CompleteResult::Kind::Gone : CompleteResult::Kind::Different;
    return r;
  }
  if (completion.last_seq > r.acked) {
    rollback();
    r.kind = CompleteResult::Kind::MissingRecords;
    return r;
  }
  if (completion.last_seq < r.acked) {
    rollback();
    r.kind = CompleteResult::Kind::Bad;
    r.message = "last_seq " + std::to_string(completion.last_seq) + " is below the records already stored (through " +
                std::to_string(r.acked) + "): the completion must name the end of the stream";
    return r;
  }
  Stmt upd(db_, "UPDATE tasks SET state = 'completed', completion = ?1, completed_at = ?2 WHERE id = ?3");
  if (!upd.ok()) return fail("preparing complete");
  upd.bind(1, text).bind(2, unix_now()).bind(3, id);
  if (upd.step() != SQLITE_DONE) return fail("storing the completion");
  if (Status s = exec("COMMIT"); !s) return rollback(), s.error();
  r.kind = CompleteResult::Kind::Stored;
  return r;
}

Result<CancelResult> Queue::cancel(const std::string& id) {
  CancelResult r;
  if (Status s = begin_immediate(); !s) return s.error();
  Stmt sel(db_, "SELECT state FROM tasks WHERE id = ?1");
  if (!sel.ok()) return fail("preparing cancel");
  sel.bind(1, id);
  int rc = sel.step();
  if (rc == SQLITE_DONE) return rollback(), r;
  if (rc != SQLITE_ROW) return fail("looking up task " + id);
  r.state = sel.text(0);
  if (r.state == "completed" || r.state == "canceled") {
    rollback();
    r.kind = CancelResult::Kind::AlreadyFinal;
    return r;
  }
  // A queued task is never handed out, and a lost one has no agent left to
  // tell: both are final at once (a lost task's agent that comes back is
  // answered 410). A running one learns of it from its next heartbeat
  // (at most a second apart while the job runs) and completes as canceled.
  bool queued = r.state == "queued" || r.state == "lost";
  Stmt upd(db_,
           queued ? "UPDATE tasks SET cancel = 1, state = 'canceled', completed_at = ?1 WHERE id = ?2"
                  : "UPDATE tasks SET cancel = 1 WHERE id = ?2 AND ?1 = ?1");
  if (!upd.ok()) return fail("preparing cancel");
  upd.bind(1, unix_now()).bind(2, id);
  if (upd.step() != SQLITE_DONE) return fail("canceling the task");
  if (Status s = exec("COMMIT"); !s) return rollback(), s.error();
  r.kind = queued ? CancelResult::Kind::CanceledQueued : CancelResult::Kind::Flagged;
  if (queued) r.state = "canceled";
  return r;
}

Result<bool> Queue::release(const std::string& id) {
  Stmt upd(db_,
           "UPDATE tasks SET state = 'queued', runner = '', runner_token_name = '', token_sha256 = '', "
           "claimed_at = 0, heartbeat_at = 0 WHERE id = ?1 AND state = 'running' AND acked < 0 AND completion IS NULL");
  if (!upd.ok()) return db_error(db_, "preparing release");
  upd.bind(1, id);
  if (upd.step() != SQLITE_DONE) return db_error(db_, "releasing task " + id);
  return sqlite3_changes(db_) == 1;
}

Result<int64_t> Queue::data_version() {
  Stmt st(db_, "PRAGMA data_version");
  if (!st.ok() || st.step() != SQLITE_ROW) return db_error(db_, "reading data_version");
  return st.i64(0);
}

Result<int> Queue::mark_lost(int64_t before) {
  Stmt upd(db_, "UPDATE tasks SET state = 'lost' WHERE state = 'running' AND heartbeat_at < ?1");
  if (!upd.ok()) return db_error(db_, "preparing the lost sweep");
  upd.bind(1, before);
  if (upd.step() != SQLITE_DONE) return db_error(db_, "marking tasks lost");
  return sqlite3_changes(db_);
}

}  // namespace gh::dispatch

#include "dispatch/admin.hpp"

#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "protocol/protocol.hpp"
#include "dispatch/queue.hpp"

namespace gh::dispatch {
namespace {

using json = nlohmann::json;
namespace proto = gh::protocol;

constexpr int kUsage = 2;
constexpr int kNotFound = 1;
constexpr size_t kMaxSignatureFileBytes = 64 << 10;

int usage_error(const std::string& message) {
  std::fprintf(stderr, "gatehouse-dispatch: %s\n", message.c_str());
  return kUsage;
}

// Reads at most `limit` bytes; an error when the file is bigger.
Result<std::string> read_bounded(const std::string& path, size_t limit, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return err("cannot read " + what + " " + path);
  std::string text;
  text.resize(limit + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > limit) return err(what + " " + path + " is over " + std::to_string(limit) + " bytes");
  return text;
}

// nlohmann refuses to encode invalid UTF-8; a task that cannot be encoded
// would fail every claim, so it is refused at submit.
bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

Result<proto::Signature> read_signature(const std::string& path) {
  Result<std::string> text = read_bounded(path, kMaxSignatureFileBytes, "the signature file");
  if (!text) return text.error();
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return err("the signature file " + path + " is not one JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "key" && it.key() != "ed25519")
      return err("the signature file " + path + ": unknown key \"" + it.key() + "\" (expected key and ed25519)");
  if (!j.contains("ed25519") || !j["ed25519"].is_string() || (j.contains("key") && !j["key"].is_string()))
    return err("the signature file " + path + ": expected {\"key\": STRING, \"ed25519\": BASE64}");
  proto::Signature sig{j.value("key", ""), j["ed25519"].get<std::string>()};
  if (sig.key.size() > proto::kMaxMetaFieldChars || !valid_utf8(sig.key))
    return err("the signature file " + path + ": key is not a name of at most 256 characters");
  // 64 bytes of base64 with padding: 88 characters ending in "==".
  unsigned char raw[96];
  if (sig.ed25519.size() != 88 || sig.ed25519.substr(86) != "==" ||
      EVP_DecodeBlock(raw, reinterpret_cast<const unsigned char*>(sig.ed25519.data()), 88) != 66)
    return err("the signature file " + path + ": ed25519 is not the base64 of 64 bytes");
  return sig;
}

std::string when(int64_t t) {
  if (t == 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string state_text(const TaskRow& t) {
  if (t.cancel && t.state != "canceled") return t.state + " (cancel requested)";
  return t.state;
}

Result<Queue> open_existing(const std::string& db) { return Queue::open(db, Queue::Mode::Existing); }

// Writes the records to stdout; `at_line_start` tracks whether the last
// byte written ended a line, so notes start on a line of their own.
void render(const std::vector<StoredRecord>& records, bool events, bool& at_line_start) {
  auto note = [&](const std::string& line) {
    if (!at_line_start) std::fputc('\n', stdout);
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    at_line_start = true;
  };
  for (const StoredRecord& r : records) {
    if (r.type == "output") {
      if (r.payload.empty()) continue;
      std::fwrite(r.payload.data(), 1, r.payload.size(), stdout);
      at_line_start = r.payload.back() == '\n';
    } else if (r.type == "gap") {
      json j = json::parse(r.payload, nullptr, false);
      uint64_t bytes = j.is_object() ? j.value("bytes", uint64_t{0}) : 0;
      note("[gatehouse-dispatch: " + std::to_string(bytes) +
           " bytes of output were dropped here by the agent's spool limit]");
    } else if (r.type == "step" && events) {
      json j = json::parse(r.payload, nullptr, false);
      if (!j.is_object()) continue;
      std::string line = "==> step " + std::to_string(j.value("index", 0)) + " " + j.value("name", "") + ": " +
                         j.value("state", "");
      if (j.value("state", "") == "finished") line += " " + j.value("outcome", "");
      note(line);
    }
  }
  std::fflush(stdout);
}

}  // namespace

int cmd_submit(const SubmitArgs& a) {
  NewTask t;
  Result<std::string> config = read_bounded(a.config_file, proto::kMaxJobConfigBytes, "the job config");
  if (!config) return usage_error(config.error().message);
  t.config = std::move(*config);
  if (!valid_utf8(t.config)) return usage_error("the job config " + a.config_file + " is not UTF-8 text");
  if (a.job.empty() || a.job.size() > 128 || !valid_utf8(a.job))
    return usage_error("--job: give the job's name in the config (1 to 128 characters)");
  t.job_name = a.job;
  t.meta = proto::JobMetaWire{a.project, a.branch, a.tag, a.trigger, a.revision};
  const std::pair<const char*, const std::string*> fields[] = {
      {"--project", &a.project}, {"--branch", &a.branch}, {"--tag", &a.tag}, {"--trigger", &a.trigger},
      {"--revision", &a.revision}};
  for (const auto& [flag, value] : fields)
    if (value->size() > proto::kMaxMetaFieldChars || !valid_utf8(*value))
      return usage_error(std::string(flag) + ": at most 256 characters of UTF-8 text");
  static const char* const kTriggers[] = {"",         "push",     "pull_request", "fork_pull_request",
                                          "tag",      "schedule", "manual",       "api"};
  bool trigger_ok = false;
  for (const char* tr : kTriggers) trigger_ok = trigger_ok || a.trigger == tr;
  if (!trigger_ok)
    return usage_error("--trigger " + a.trigger +
                       ": expected push, pull_request, fork_pull_request, tag, schedule, manual or api");
  if (!a.signature_file.empty()) {
    Result<proto::Signature> sig = read_signature(a.signature_file);
    if (!sig) return usage_error(sig.error().message);
    t.signature = *sig;
  }
  Result<Queue> q = Queue::open(a.db, Queue::Mode::Create);
  if (!q) return usage_error(q.error().message);
  Result<std::string> id = q->submit(t);
  if (!id) return usage_error(id.error().message);
  std::printf("%s\n", id->c_str());
  return 0;
}

int cmd_status(const std::string& db, const std::string& id) {
  Result<Queue> q = open_existing(db);
  if (!q) return usage_error(q.error().message);
  if (id.empty()) {
    Result<std::vector<TaskRow>> rows = q->list();
    if (!rows) return usage_error(rows.error().message);
    std::printf("%-10s %-28s %-16s %-20s %-12s %8s  %s\n", "ID", "STATE", "RUNNER", "JOB", "OUTCOME", "RECORDS",
                "CREATED");
    for (const TaskRow& t : *rows)
      std::printf("%-10s %-28s %-16s %-20s %-12s %8lld  %s\n", t.id.c_str(), state_text(t).c_str(),
                  t.runner.empty() ? "-" : t.runner.c_str(), t.job_name.c_str(),
                  t.completion ? t.completion->outcome.c_str() : "-", static_cast<long long>(t.record_count),
                  when(t.created_at).c_str());
    return 0;
  }
  Result<std::optional<TaskRow>> row = q->find(id);
  if (!row) return usage_error(row.error().message);
  if (!row->has_value()) {
    std::fprintf(stderr, "gatehouse-dispatch: no task %s in %s\n", id.c_str(), db.c_str());
    return kNotFound;
  }
  const TaskRow& t = **row;
  auto line = [](const char* k, const std::string& v) { std::printf("%-12s %s\n", k, v.empty() ? "-" : v.c_str()); };
  line("id:", t.id);
  line("job:", t.job_name);
  line("state:", state_text(t));
  line("runner:", t.runner);
  line("project:", t.meta.project);
  line("branch:", t.meta.branch);
  line("tag:", t.meta.tag);
  line("trigger:", t.meta.trigger);
  line("revision:", t.meta.revision);
  line("signature:", t.signature ? "ed25519, key " + (t.signature->key.empty() ? "(unnamed)" : t.signature->key)
                                 : "none");
  line("created:", when(t.created_at));
  line("claimed:", when(t.claimed_at));
  line("heartbeat:", when(t.heartbeat_at));
  line("completed:", when(t.completed_at));
  line("records:", std::to_string(t.record_count) + " (stream stored through seq " + std::to_string(t.acked) + ")");
  if (t.completion) {
    const proto::Completion& c = *t.completion;
    line("outcome:", c.outcome);
    line("exit code:", std::to_string(c.exit_code));
    line("reason:", c.reason);
    line("last seq:", std::to_string(c.last_seq));
    line("duration:", std::to_string(c.duration_ms) + " ms");
    line("cpu:", std::to_string(c.cpu_usec) + " us");
    line("peak mem:", std::to_string(c.peak_memory_bytes) + " bytes");
  } else {
    line("outcome:", "");
  }
  return 0;
}

int cmd_logs(const std::string& db, const std::string& id, bool follow, bool events) {
  Result<Queue> q = open_existing(db);
  if (!q) return usage_error(q.error().message);
  Result<std::optional<TaskRow>> row = q->find(id);
  if (!row) return usage_error(row.error().message);
  if (!row->has_value()) {
    std::fprintf(stderr, "gatehouse-dispatch: no task %s in %s\n", id.c_str(), db.c_str());
    return kNotFound;
  }
  int64_t after = -1;
  bool at_line_start = true;
  for (;;) {
    // Read the state before the records: a task seen final here has all
    // its records stored already, so the drain below is complete.
    bool final_state = false;
    if (follow) {
      Result<std::optional<TaskRow>> now = q->find(id);
      if (!now || !now->has_value()) return usage_error("task " + id + " could not be read again");
      final_state = (*now)->state == "completed" || (*now)->state == "canceled";
    }
    for (;;) {
      Result<std::vector<StoredRecord>> recs = q->records_after(id, after, 256);
      if (!recs) return usage_error(recs.error().message);
      if (recs->empty()) break;
      render(*recs, events, at_line_start);
      after = recs->back().seq;
    }
    if (!follow || final_state) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (std::ferror(stdout)) return usage_error("could not write to stdout");
  return 0;
}

int cmd_cancel(const std::string& db, const std::string& id) {
  Result<Queue> q = open_existing(db);
  if (!q) return usage_error(q.error().message);
  Result<CancelResult> r = q->cancel(id);
  if (!r) return usage_error(r.error().message);
  switch (r->kind) {
    case CancelResult::Kind::NotFound:
      std::fprintf(stderr, "gatehouse-dispatch: no task %s in %s\n", id.c_str(), db.c_str());
      return kNotFound;
    case CancelResult::Kind::CanceledQueued:
      std::printf("%s canceled (it was still queued; no runner will get it)\n", id.c_str());
      return 0;
    case CancelResult::Kind::Flagged:
      std::printf("%s: cancel requested; the agent stops the job at its next heartbeat and completes it as canceled\n",
                  id.c_str());
      return 0;
    case CancelResult::Kind::AlreadyFinal:
      std::printf("%s is already %s; nothing to cancel\n", id.c_str(), r->state.c_str());
      return 0;
  }
  return 0;
}

}  // namespace gh::dispatch

// Codec for the control-plane protocol (docs/protocol.md). Every decoder
// reads text that crossed a trust boundary, so the order is fixed: size,
// then JSON framing (one object, no duplicate keys, bounded nesting), then
// the keys present, then each value's type, range and syntax.
//
// Inside this file a refusal is thrown as a Refusal and caught at the
// decoder's edge; no exception leaves a public function.
#include "protocol/protocol.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <exception>
#include <initializer_list>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>

namespace gh::protocol {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxNesting = 8;  // the deepest message is 3 levels
constexpr size_t kMaxJobNameChars = 128;
constexpr size_t kMaxQuotedChars = 64;

struct Refusal {
  std::string message;
};

[[noreturn]] void refuse(const std::string& path, const std::string& problem) {
  throw Refusal{path.empty() ? problem : path + ": " + problem};
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// A hostile value, quoted for an error message: escaped, short, ASCII.
std::string shown(std::string_view text) {
  const bool cut = text.size() > kMaxQuotedChars;
  std::string s = json(std::string(text.substr(0, kMaxQuotedChars)))
                      .dump(-1, ' ', true, json::error_handler_t::replace);
  return cut ? s + "..." : s;
}

std::string join(std::initializer_list<const char*> names) {
  std::string out;
  for (const char* n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

size_t utf8_chars(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// ---- framing -------------------------------------------------------------

// Tracks where the parser is so a duplicate key can be named by its path;
// nlohmann would otherwise keep the last of two keys without a word.
class DuplicateKeyGuard {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        frames_.push_back(Frame{event == json::parse_event_t::object_start, {}, {}, 0});
        if (frames_.size() > kMaxNesting) {
          frames_.pop_back();  // name the place of the container, not its inside
          refuse(where(), "nested deeper than " + std::to_string(kMaxNesting) + " levels");
        }
        break;
      case json::parse_event_t::key: {
        Frame& top = frames_.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second) refuse(where(), "the key appears twice");
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        element_done();
        break;
      case json::parse_event_t::value:
        element_done();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;
    size_t index;
  };
  void element_done() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }
  std::string where() const {
    std::string path;
    for (const Frame& f : frames_) {
      if (f.object) {
        if (!f.key.empty() || &f != &frames_.back()) path = child(path, f.key);
      } else {
        path += "[" + std::to_string(f.index) + "]";
      }
    }
    return path;
  }
  std::vector<Frame> frames_;
};

// nlohmann's messages start with "[json.exception.parse_error.101] " and
// may end with the hostile bytes it last read: keep the words, make them
// printable, keep them short.
std::string parse_error_words(const char* what) {
  std::string_view w(what);
  if (const size_t end = w.find("] "); w.substr(0, 1) == "[" && end != std::string_view::npos) w.remove_prefix(end + 2);
  std::string out;
  for (char c : w.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return out;
}

json parse_object(std::string_view body, size_t limit, const char* what) {
  if (body.size() > limit)
    refuse("", "the " + std::string(what) + " is " + std::to_string(body.size()) + " bytes, over the limit of " +
                   std::to_string(limit) + " bytes");
  json doc;
  try {
    doc = json::parse(body.begin(), body.end(), DuplicateKeyGuard{});
  } catch (const json::exception& e) {
    refuse("", "not valid JSON: " + parse_error_words(e.what()));
  }
  if (!doc.is_object()) refuse("", "the " + std::string(what) + " is " + std::string(doc.type_name()) + ", not a JSON object");
  return doc;
}

// ---- typed fields --------------------------------------------------------

void allow_only(const json& obj, const std::string& path, std::initializer_list<const char*> keys) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& key = it.key();
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; }))
      refuse(child(path, key), "unknown key (allowed: " + join(keys) + ")");
  }
}

const json* find_key(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

const json& need(const json& obj, const std::string& path, const char* key) {
  const json* v = find_key(obj, key);
  if (!v) refuse(child(path, key), "missing (required)");
  return *v;
}

std::string kind_of(const json& v) {
  if (v.is_number_float()) return "the number " + v.dump();
  if (v.is_null()) return "null";
  return std::string(v.is_array() || v.is_object() ? "an " : "a ") + v.type_name();
}

const json& object_at(const json& v, const std::string& path) {
  if (!v.is_object()) refuse(path, "must be an object, not " + kind_of(v));
  return v;
}

std::string string_at(const json& v, const std::string& path) {
  if (!v.is_string()) refuse(path, "must be a string, not " + kind_of(v));
  return v.get<std::string>();
}

bool bool_at(const json& v, const std::string& path) {
  if (!v.is_boolean()) refuse(path, "must be true or false, not " + kind_of(v));
  return v.get<bool>();
}

int64_t int_at(const json& v, const std::string& path, int64_t lo, int64_t hi) {
  const std::string range = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (!v.is_number_integer()) refuse(path, "must be " + range + ", not " + kind_of(v));
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo))) refuse(path, std::to_string(u) + " is out of range: must be " + range);
    return static_cast<int64_t>(u);
  }
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) refuse(path, std::to_string(i) + " is out of range: must be " + range);
  return i;
}

uint64_t count_at(const json& v, const std::string& path) {
  return static_cast<uint64_t>(int_at(v, path, 0, kMaxSeq));
}

std::string enum_at(const json& v, const std::string& path, std::initializer_list<const char*> allowed, bool empty_ok) {
  std::string s = string_at(v, path);
  if (empty_ok && s.empty()) return s;
  if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return s == a; }))
    refuse(path, shown(s) + " is not one of " + join(allowed) + (empty_ok ? " (or empty)" : ""));
  return s;
}

std::string checked_at(const json& v, const std::string& path, std::string (*problem)(std::string_view)) {
  std::string s = string_at(v, path);
  if (std::string why = problem(s); !why.empty()) refuse(path, why);
  return s;
}

// Free text shown to operators and matched by the policy: bounded, and no
// control characters (they would forge log lines).
std::string text_at(const json& v, const std::string& path, size_t min_chars, size_t max_chars) {
  std::string s = string_at(v, path);
  const size_t n = utf8_chars(s);
  if (n < min_chars || n > max_chars)
    refuse(path, "must be " + std::to_string(min_chars) + " to " + std::to_string(max_chars) + " characters, not " +
                     std::to_string(n));
  for (size_t i = 0; i < s.size(); ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u < 0x20 || u == 0x7f) refuse(path, "has a control character at byte " + std::to_string(i));
  }
  return s;
}

std::string base64_at(const json& v, const std::string& path, size_t max_bytes) {
  const std::string text = string_at(v, path);
  auto bytes = base64_decode(text, max_bytes);
  if (!bytes) {
    if (base64_decode(text, std::numeric_limits<size_t>::max()))
      refuse(path, "decodes to more than " + std::to_string(max_bytes) + " bytes");
    refuse(path, "is not canonical padded base64 (A-Z a-z 0-9 + /, '=' padding, no whitespace)");
  }
  return *bytes;
}

// Runs a decoder body; a Refusal or anything the library throws becomes an
// Error, so nothing escapes to the caller.
template <typename F>
auto guarded(F&& body) -> Result<decltype(body())> {
  try {
    return body();
  } catch (const Refusal& r) {
    return err(r.message);
  } catch (const std::exception& e) {
    return err(std::string("could not decode: ") + parse_error_words(e.what()));
  }
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ---- message parts ------------------------------------------------------

const auto kTriggers = {"push", "pull_request", "fork_pull_request", "tag", "schedule", "manual", "api"};
const auto kStepOutcomes = {"passed", "failed", "timed_out", "canceled", "not_run", "killed"};
const auto kCompletionOutcomes = {"passed", "failed", "refused", "infra_error", "canceled", "timed_out"};
const auto kErrorCodes = {"bad_request", "unauthorized", "unknown_task", "out_of_order", "missing_records",
                          "already_completed", "task_gone", "too_large", "busy"};

JobMetaWire meta_from(const json& v, const std::string& path) {
  const json& o = object_at(v, path);
  allow_only(o, path, {"project", "branch", "tag", "trigger", "revision"});
  JobMetaWire m;
  const auto field = [&](const char* key, std::string& out) {
    if (const json* f = find_key(o, key)) out = text_at(*f, child(path, key), 0, kMaxMetaFieldChars);
  };
  field("project", m.project);
  field("branch", m.branch);
  field("tag", m.tag);
  field("revision", m.revision);
  if (const json* t = find_key(o, "trigger")) m.trigger = enum_at(*t, child(path, "trigger"), kTriggers, true);
  return m;
}

std::optional<Signature> signature_from(const json& v, const std::string& path) {
  if (v.is_null()) return std::nullopt;
  const json& o = object_at(v, path);
  allow_only(o, path, {"key", "ed25519"});
  Signature sig;
  if (const json* k = find_key(o, "key")) sig.key = text_at(*k, child(path, "key"), 0, kMaxMetaFieldChars);
  const std::string p = child(path, "ed25519");
  const json& b64 = need(o, path, "ed25519");
  const std::string raw = base64_at(b64, p, 64);
  sig.ed25519 = b64.get<std::string>();
  if (raw.size() != 64) refuse(p, "decodes to " + std::to_string(raw.size()) + " bytes; an Ed25519 signature is 64");
  return sig;
}

Task task_from(const json& doc) {
  allow_only(doc, "", {"task"});
  const std::string path = "task";
  const json& t = object_at(need(doc, "", "task"), path);
  allow_only(t, path, {"id", "token", "job", "meta", "signature"});
  Task task;
  task.id = checked_at(need(t, path, "id"), "task.id", task_id_problem);
  task.token = checked_at(need(t, path, "token"), "task.token", token_problem);
  const json& job = object_at(need(t, path, "job"), "task.job");
  allow_only(job, "task.job", {"name", "config"});
  task.job_name = text_at(need(job, "task.job", "name"), "task.job.name", 1, kMaxJobNameChars);
  task.job_config = string_at(need(job, "task.job", "config"), "task.job.config");
  if (task.job_config.size() > kMaxJobConfigBytes)
    refuse("task.job.config", "is " + std::to_string(task.job_config.size()) + " bytes, over the limit of " +
                                  std::to_string(kMaxJobConfigBytes));
  if (const json* m = find_key(t, "meta")) task.meta = meta_from(*m, "task.meta");
  if (const json* s = find_key(t, "signature")) task.signature = signature_from(*s, "task.signature");
  return task;
}

Record record_from(const json& v, const std::string& path) {
  const json& o = object_at(v, path);
  Record r;
  r.seq = int_at(need(o, path, "seq"), child(path, "seq"), 0, kMaxSeq);
  const std::string type = enum_at(need(o, path, "type"), child(path, "type"), {"output", "step", "gap"}, false);
  if (type == "output") {
    allow_only(o, path, {"seq", "type", "data"});
    r.type = RecordType::Output;
    r.data = base64_at(need(o, path, "data"), child(path, "data"), kMaxOutputRecordBytes);
  } else if (type == "step") {
    r.type = RecordType::Step;
    r.index = static_cast<uint32_t>(int_at(need(o, path, "index"), child(path, "index"), 0, UINT32_MAX));
    r.name = string_at(need(o, path, "name"), child(path, "name"));
    r.state = enum_at(need(o, path, "state"), child(path, "state"), {"started", "finished"}, false);
    if (r.state == "started") {
      allow_only(o, path, {"seq", "type", "index", "name", "state"});
    } else {
      allow_only(o, path, {"seq", "type", "index", "name", "state", "outcome", "code", "duration_ms"});
      r.outcome = enum_at(need(o, path, "outcome"), child(path, "outcome"), kStepOutcomes, false);
      r.code = int_at(need(o, path, "code"), child(path, "code"), INT32_MIN, INT32_MAX);
      r.duration_ms = int_at(need(o, path, "duration_ms"), child(path, "duration_ms"), 0, kMaxSeq);
    }
  } else {
    allow_only(o, path, {"seq", "type", "last_seq", "bytes"});
    r.type = RecordType::Gap;
    r.last_seq = int_at(need(o, path, "last_seq"), child(path, "last_seq"), 0, kMaxSeq);
    if (r.last_seq < r.seq)
      refuse(child(path, "last_seq"), std::to_string(r.last_seq) + " is below seq " + std::to_string(r.seq) +
                                          "; a gap covers seq through last_seq");
    r.bytes = count_at(need(o, path, "bytes"), child(path, "bytes"));
  }
  return r;
}

json record_json(const Record& r) {
  switch (r.type) {
    case RecordType::Output:
      return {{"seq", r.seq}, {"type", "output"}, {"data", base64_encode(r.data)}};
    case RecordType::Step: {
      json j = {{"seq", r.seq}, {"type", "step"}, {"index", r.index}, {"name", r.name}, {"state", r.state}};
      if (r.state != "started") {
        j["outcome"] = r.outcome;
        j["code"] = r.code;
        j["duration_ms"] = r.duration_ms;
      }
      return j;
    }
    case RecordType::Gap:
      return {{"seq", r.seq}, {"type", "gap"}, {"last_seq", r.last_seq}, {"bytes", r.bytes}};
  }
  return json::object();
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::optional<std::string> base64_decode(std::string_view text, size_t max_bytes) {
  if (text.size() % 4 != 0 || text.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  const size_t out_len = text.size() / 4 * 3 - pad;
  if (out_len > max_bytes) return std::nullopt;
  for (size_t i = 0; i < text.size() - pad; ++i) {
    const char c = text[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  if (EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(text.data()),
                      static_cast<int>(text.size())) < 0)
    return std::nullopt;
  out.resize(out_len);
  // Non-zero bits after the last byte would let two texts carry one value.
  if (base64_encode(out) != text) return std::nullopt;
  return out;
}

bool is_valid_utf8(std::string_view text) {
  try {
    (void)json(std::string(text)).dump();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// ---- encoders ------------------------------------------------------------

std::string encode(const ClaimRequest& r) {
  return dump({{"runner", r.runner}, {"resource_class", r.resource_class}, {"free_slots", r.free_slots}, {"wait", r.wait}});
}

std::string encode_task_answer(const Task& t) {
  json task = {{"id", t.id},
               {"token", t.token},
               {"job", {{"name", t.job_name}, {"config", t.job_config}}},
               {"meta",
                {{"project", t.meta.project},
                 {"branch", t.meta.branch},
                 {"tag", t.meta.tag},
                 {"trigger", t.meta.trigger},
                 {"revision", t.meta.revision}}}};
  if (t.signature) task["signature"] = {{"key", t.signature->key}, {"ed25519", t.signature->ed25519}};
  return dump({{"task", task}});
}

std::string encode_heartbeat(const std::string& state) { return dump({{"state", state}}); }

std::string encode(const HeartbeatAnswer& a) { return dump({{"cancel", a.cancel}, {"acked", a.acked}}); }

std::string encode_records(const std::vector<Record>& records) {
  json list = json::array();
  for (const Record& r : records) list.push_back(record_json(r));
  return dump({{"records", list}});
}

std::string encode_acked(int64_t acked) { return dump({{"acked", acked}}); }

std::string encode(const Completion& c) {
  return dump({{"outcome", c.outcome},
               {"exit_code", c.exit_code},
               {"reason", c.reason},
               {"last_seq", c.last_seq},
               {"peak_memory_bytes", c.peak_memory_bytes},
               {"cpu_usec", c.cpu_usec},
               {"duration_ms", c.duration_ms}});
}

std::string encode(const ErrorAnswer& e) {
  json j = {{"error", e.error}, {"message", e.message}};
  if (e.acked >= 0 || e.error == "out_of_order" || e.error == "missing_records") j["acked"] = e.acked;
  return dump(j);
}

std::string encode_ok() { return dump({{"ok", true}}); }

// ---- decoders ------------------------------------------------------------

Result<ClaimRequest> decode_claim(std::string_view body) {
  return guarded([&] {
    const json doc = parse_object(body, kMaxRequestBytes, "request");
    allow_only(doc, "", {"runner", "resource_class", "free_slots", "wait"});
    ClaimRequest r;
    r.runner = checked_at(need(doc, "", "runner"), "runner", runner_name_problem);
    r.resource_class = checked_at(need(doc, "", "resource_class"), "resource_class", resource_class_problem);
    r.free_slots = static_cast<int>(int_at(need(doc, "", "free_slots"), "free_slots", 1, kMaxFreeSlots));
    r.wait = static_cast<int>(int_at(need(doc, "", "wait"), "wait", 0, kMaxClaimWaitSeconds));
    return r;
  });
}

Result<Task> decode_task_answer(std::string_view body) {
  return guarded([&] { return task_from(parse_object(body, kMaxResponseBytes, "answer")); });
}

std::optional<TaskIdentity> decode_task_identity(std::string_view body) {
  auto r = guarded([&] {
    const json doc = parse_object(body, kMaxResponseBytes, "answer");
    const json& t = object_at(need(doc, "", "task"), "task");
    return TaskIdentity{checked_at(need(t, "task", "id"), "task.id", task_id_problem),
                        checked_at(need(t, "task", "token"), "task.token", token_problem)};
  });
  if (!r) return std::nullopt;
  return r.value();
}

Result<std::string> decode_heartbeat(std::string_view body) {
  return guarded([&] {
    const json doc = parse_object(body, kMaxRequestBytes, "request");
    allow_only(doc, "", {"state"});
    return enum_at(need(doc, "", "state"), "state", {"running", "delivering"}, false);
  });
}

Result<HeartbeatAnswer> decode_heartbeat_answer(std::string_view body) {
  return guarded([&] {
    const json doc = parse_object(body, kMaxResponseBytes, "answer");
    allow_only(doc, "", {"cancel", "acked"});
    HeartbeatAnswer a;
    a.cancel = bool_at(need(doc, "", "cancel"), "cancel");
    a.acked = int_at(need(doc, "", "acked"), "acked", -1, kMaxSeq);
    return a;
  });
}

Result<std::vector<Record>> decode_records(std::string_view body) {
  return guarded([&] {
    const json doc = parse_object(body, kMaxRequestBytes, "request");
    allow_only(doc, "", {"records"});
    const json& list = need(doc, "", "records");
    if (!list.is_array()) refuse("records", "must be an array, not " + kind_of(list));
    if (list.size() > kMaxRecordsPerBatch)
      refuse("records", std::to_string(list.size()) + " records, over the limit of " +
                            std::to_string(kMaxRecordsPerBatch) + " per call; split the batch");
    std::vector<Record> out;
    out.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string path = "records[" + std::to_string(i) + "]";
      Record r = record_from(list[i], path);
      if (!out.empty()) {
        const Record& prev = out.back();
        const int64_t expected = (prev.type == RecordType::Gap ? prev.last_seq : prev.seq) + 1;
        if (r.seq != expected)
          refuse(path + ".seq", std::to_string(r.seq) + " does not follow the previous record: expected " +
                                    std::to_string(expected) + " (seq numbers in a batch are consecutive)");
      }
      out.push_back(std::move(r));
    }
    return out;
  });
}

Result<int64_t> decode_acked(std::string_view body) {
  return guarded([&] {
    const json doc = parse_object(body, kMaxResponseBytes, "answer");
    allow_only(doc, "", {"acked"});
    return int_at(need(doc, "", "acked"), "acked", -1, kMaxSeq);
  });
}

Result<Completion> decode_completion(std::string_view body) {
  return guarded([&] {
    const json doc = parse_object(body, kMaxRequestBytes, "request");
    allow_only(doc, "", {"outcome", "exit_code", "reason", "last_seq", "peak_memory_bytes", "cpu_usec", "duration_ms"});
    Completion c;
    c.outcome = enum_at(need(doc, "", "outcome"), "outcome", kCompletionOutcomes, false);
    c.exit_code = static_cast<int>(int_at(need(doc, "", "exit_code"), "exit_code", INT32_MIN, INT32_MAX));
    c.reason = string_at(need(doc, "", "reason"), "reason");
    c.last_seq = int_at(need(doc, "", "last_seq"), "last_seq", -1, kMaxSeq);
    c.peak_memory_bytes = count_at(need(doc, "", "peak_memory_bytes"), "peak_memory_bytes");
    c.cpu_usec = count_at(need(doc, "", "cpu_usec"), "cpu_usec");
    c.duration_ms = count_at(need(doc, "", "duration_ms"), "duration_ms");
    return c;
  });
}

Result<ErrorAnswer> decode_error(std::string_view body) {
  return guarded([&] {
    const json doc = parse_object(body, kMaxResponseBytes, "answer");
    allow_only(doc, "", {"error", "message", "acked"});
    ErrorAnswer e;
    e.error = enum_at(need(doc, "", "error"), "error", kErrorCodes, false);
    if (const json* m = find_key(doc, "message")) e.message = string_at(*m, "message");
    if (const json* a = find_key(doc, "acked")) {
      e.acked = int_at(*a, "acked", -1, kMaxSeq);
    } else if (e.error == "out_of_order" || e.error == "missing_records") {
      refuse("acked", "missing (required with error " + e.error + ")");
    }
    return e;
  });
}

Status decode_ok(std::string_view body) {
  return guarded([&] {
    const json doc = parse_object(body, kMaxResponseBytes, "answer");
    allow_only(doc, "", {"ok"});
    if (!bool_at(need(doc, "", "ok"), "ok")) refuse("ok", "is false; the server did not store the completion");
    return Ok{};
  });
}

}  // namespace gh::protocol

// The spool's on-disk format (spool_format.hpp).
#include "agent/spool_format.hpp"

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <nlohmann/json.hpp>

namespace gh::agent::spool_format {
namespace {

using protocol::Record;
using protocol::RecordType;
using json = nlohmann::json;

void put_le(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_text(std::string& out, const std::string& s) {
  put_le(out, s.size(), 4);
  out += s;
}

// Internal to the JSON decoders: turned into an Error at their boundary.
struct BadField {
  std::string why;
};

std::string str_field(const json& o, const char* key, size_t max, bool required = true) {
  if (!o.contains(key)) {
    if (required) throw BadField{std::string("\"") + key + "\" is missing"};
    return "";
  }
  if (!o[key].is_string()) throw BadField{std::string("\"") + key + "\" is not a string"};
  const auto& s = o[key].get_ref<const std::string&>();
  if (s.size() > max) throw BadField{std::string("\"") + key + "\" is too long"};
  return s;
}

int64_t int_field(const json& o, const char* key, int64_t lo, int64_t hi) {
  if (!o.contains(key) || !o[key].is_number_integer()) throw BadField{std::string("\"") + key + "\" is not an integer"};
  const auto v = o[key].is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(o[key].get<uint64_t>(), INT64_MAX))
                                             : o[key].get<int64_t>();
  if (v < lo || v > hi) throw BadField{std::string("\"") + key + "\" is out of range"};
  return v;
}

json parse_object(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw BadField{"not a JSON object"};
  if (int_field(j, "format", 0, INT64_MAX) != 1) throw BadField{"written in an unknown format (not 1)"};
  return j;
}

}  // namespace

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

uint64_t get_le(std::string_view in, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= uint64_t{static_cast<unsigned char>(in[at + i])} << (8 * i);
  return v;
}
uint64_t checksum(std::string_view bytes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), md);
  return get_le(std::string_view(reinterpret_cast<const char*>(md), sizeof md), 0, 8);
}

std::string log_header(int64_t first_seq) {
  std::string h(kLogMagic, 8);
  put_le(h, static_cast<uint64_t>(first_seq), 8);
  put_le(h, checksum(h), 8);
  return h;
}

std::string encode_payload(const Record& r) {
  std::string p;
  p.push_back(static_cast<char>(r.type));
  put_le(p, static_cast<uint64_t>(r.seq), 8);
  switch (r.type) {
    case RecordType::Output: p += r.data; break;
    case RecordType::Step:
      put_le(p, r.index, 4);
      put_le(p, static_cast<uint64_t>(r.code), 8);
      put_le(p, static_cast<uint64_t>(r.duration_ms), 8);
      put_text(p, r.name);
      put_text(p, r.state);
      put_text(p, r.outcome);
      break;
    case RecordType::Gap:
      put_le(p, static_cast<uint64_t>(r.last_seq), 8);
      put_le(p, r.bytes, 8);
      break;
  }
  return p;
}

std::string make_frame(const std::string& payload) {
  std::string body;
  put_le(body, payload.size(), 4);
  body += payload;
  std::string frame;
  put_le(frame, checksum(body), 8);
  return frame + body;
}

bool frame_checksum_ok(std::string_view frame) {
  return frame.size() >= kFrameHeaderBytes && checksum(frame.substr(8)) == get_le(frame, 0, 8);
}

Result<Record> decode_payload(std::string_view p) {
  if (p.size() < kMinPayloadBytes) return err("record shorter than its header");
  Record r;
  const auto type = static_cast<unsigned char>(p[0]);
  r.seq = static_cast<int64_t>(get_le(p, 1, 8));
  if (r.seq < 0 || r.seq > protocol::kMaxSeq) return err("record seq out of range");
  size_t at = kMinPayloadBytes;
  auto text = [&](std::string& out) {
    if (p.size() - at < 4) return false;
    const uint64_t n = get_le(p, at, 4);
    at += 4;
    if (p.size() - at < n) return false;
    out.assign(p.substr(at, n));
    at += n;
    return true;
  };
  if (type == static_cast<unsigned char>(RecordType::Output)) {
    r.type = RecordType::Output;
    r.data.assign(p.substr(at));
    if (r.data.size() > protocol::kMaxOutputRecordBytes) return err("output record over 64 KiB");
    return r;
  }
  if (type == static_cast<unsigned char>(RecordType::Step)) {
    r.type = RecordType::Step;
    if (p.size() - at < 20) return err("step record truncated");
    r.index = static_cast<uint32_t>(get_le(p, at, 4));
    r.code = static_cast<int64_t>(get_le(p, at + 4, 8));
    r.duration_ms = static_cast<int64_t>(get_le(p, at + 12, 8));
    at += 20;
    if (!text(r.name) || !text(r.state) || !text(r.outcome) || at != p.size()) return err("step record malformed");
    return r;
  }
  if (type == static_cast<unsigned char>(RecordType::Gap)) {
    r.type = RecordType::Gap;
    if (p.size() != at + 16) return err("gap record malformed");
    r.last_seq = static_cast<int64_t>(get_le(p, at, 8));
    r.bytes = get_le(p, at + 8, 8);
    if (r.last_seq < r.seq || r.last_seq > protocol::kMaxSeq) return err("gap record range invalid");
    return r;
  }
  return err("unknown record type " + std::to_string(type));
}

Status write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err(errno_text("write"));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return ok_status();
}

Status pwrite_all(int fd, std::string_view bytes, uint64_t offset) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err(errno_text("write"));
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return ok_status();
}

Status pread_all(int fd, std::string& out, size_t n, uint64_t offset) {
  out.resize(n);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return err(errno_text("read"));
    if (r == 0) return err("file ends early");
    got += static_cast<size_t>(r);
  }
  return ok_status();
}

int open_dir_at(int at, const char* name) { return ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); }

// A bounded read of a regular file in the task folder (never a symlink).
Result<std::string> read_small(int dir, const char* name, size_t max) {
  const int fd = ::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return err(errno_text("cannot open it"));
  struct stat st {};
  std::string text;
  Status s = ok_status();
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    s = err("not a regular file");
  } else if (static_cast<uint64_t>(st.st_size) > max) {
    s = err(std::to_string(st.st_size) + " bytes, over the " + std::to_string(max) + " allowed");
  } else {
    s = pread_all(fd, text, static_cast<size_t>(st.st_size), 0);
  }
  ::close(fd);
  if (!s) return s.error();
  return text;
}

// temp file, fsync, rename, fsync(dir): the old or the new content, whole.
Status write_atomic(int dir, const std::string& name, std::string_view bytes, bool sync_dir) {
  const std::string tmp = name + ".tmp";
  const int fd = ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return err(errno_text("cannot create " + tmp));
  Status s = write_all(fd, bytes);
  if (s && ::fsync(fd) != 0) s = err(errno_text("fsync " + tmp));
  ::close(fd);
  if (s && ::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) s = err(errno_text("rename " + tmp));
  if (s && sync_dir && ::fsync(dir) != 0) s = err(errno_text("fsync of the task folder"));
  if (!s) return err("writing " + name + ": " + s.error().message);
  return ok_status();
}

std::string encode_task_file(const protocol::Task& t, int64_t created_ns) {
  json task = {{"id", t.id},
               {"token", t.token},
               {"job_name", t.job_name},
               {"job_config", t.job_config},
               {"meta",
                {{"project", t.meta.project},
                 {"branch", t.meta.branch},
                 {"tag", t.meta.tag},
                 {"trigger", t.meta.trigger},
                 {"revision", t.meta.revision}}}};
  task["signature"] = t.signature ? json{{"key", t.signature->key}, {"ed25519", t.signature->ed25519}} : json(nullptr);
  return json{{"format", 1}, {"created_ns", created_ns}, {"task", task}}.dump();
}

Result<protocol::Task> decode_task_file(const std::string& text, int64_t& created_ns) try {
  const json j = parse_object(text);
  created_ns = int_field(j, "created_ns", 0, INT64_MAX);
  if (!j.contains("task") || !j["task"].is_object()) throw BadField{"\"task\" is not an object"};
  const json& o = j["task"];
  protocol::Task t;
  t.id = str_field(o, "id", 64);
  t.token = str_field(o, "token", 256);
  t.job_name = str_field(o, "job_name", 128);
  t.job_config = str_field(o, "job_config", protocol::kMaxJobConfigBytes);
  if (auto p = protocol::task_id_problem(t.id); !p.empty()) throw BadField{"task id: " + p};
  if (auto p = protocol::token_problem(t.token); !p.empty()) throw BadField{"task token: " + p};
  if (!o.contains("meta") || !o["meta"].is_object()) throw BadField{"\"meta\" is not an object"};
  const json& m = o["meta"];
  const size_t max = protocol::kMaxMetaFieldChars * 4;  // characters, UTF-8 bytes
  t.meta = {str_field(m, "project", max), str_field(m, "branch", max), str_field(m, "tag", max),
            str_field(m, "trigger", max), str_field(m, "revision", max)};
  if (o.contains("signature") && !o["signature"].is_null()) {
    if (!o["signature"].is_object()) throw BadField{"\"signature\" is not an object"};
    t.signature = protocol::Signature{str_field(o["signature"], "key", 256), str_field(o["signature"], "ed25519", 128)};
  }
  return t;
} catch (const BadField& b) {
  return err(b.why);
}

std::string encode_state_file(const StateFile& s) {
  json j = {{"format", 1}, {"acked", s.acked}, {"dropped_bytes", s.dropped_bytes}, {"dropped_records", s.dropped_records}};
  if (s.completion) {
    const auto& c = *s.completion;
    j["completion"] = {{"outcome", c.outcome},           {"exit_code", c.exit_code},
                       {"reason", c.reason},             {"last_seq", c.last_seq},
                       {"peak_memory_bytes", c.peak_memory_bytes}, {"cpu_usec", c.cpu_usec},
                       {"duration_ms", c.duration_ms}};
  } else {
    j["completion"] = nullptr;
  }
  // The reason is words from a job's failure; a stray byte must not lose the completion.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<StateFile> decode_state_file(const std::string& text) try {
  const json j = parse_object(text);
  StateFile s;
  s.acked = int_field(j, "acked", -1, protocol::kMaxSeq);
  s.dropped_bytes = static_cast<uint64_t>(int_field(j, "dropped_bytes", 0, INT64_MAX));
  s.dropped_records = static_cast<uint64_t>(int_field(j, "dropped_records", 0, INT64_MAX));
  if (j.contains("completion") && !j["completion"].is_null()) {
    const json& o = j["completion"];
    if (!o.is_object()) throw BadField{"\"completion\" is not an object"};
    protocol::Completion c;
    c.outcome = str_field(o, "outcome", 32);
    static const char* const kOutcomes[] = {"passed", "failed", "refused", "infra_error", "canceled", "timed_out"};
    if (std::none_of(std::begin(kOutcomes), std::end(kOutcomes), [&](const char* k) { return c.outcome == k; }))
      throw BadField{"completion outcome \"" + c.outcome + "\" is unknown"};
    c.exit_code = static_cast<int>(int_field(o, "exit_code", INT32_MIN, INT32_MAX));
    c.reason = str_field(o, "reason", kMaxReasonBytes);
    c.last_seq = int_field(o, "last_seq", -1, protocol::kMaxSeq);
    c.peak_memory_bytes = static_cast<uint64_t>(int_field(o, "peak_memory_bytes", 0, INT64_MAX));
    c.cpu_usec = static_cast<uint64_t>(int_field(o, "cpu_usec", 0, INT64_MAX));
    c.duration_ms = static_cast<uint64_t>(int_field(o, "duration_ms", 0, INT64_MAX));
    s.completion = c;
  }
  return s;
} catch (const BadField& b) {
  return err(b.why);
}
bool all_zero(int fd, uint64_t from, uint64_t to) {
  std::string buf;
  while (from < to) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(to - from, 1 << 20));
    if (!pread_all(fd, buf, n, from)) return false;
    if (buf.find_first_not_of('\0') != std::string::npos) return false;
    from += n;
  }
  return true;
}

}  // namespace gh::agent::spool_format

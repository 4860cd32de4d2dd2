#include "cli/audit_verify.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/audit_chain.hpp"

namespace gh::cli {

using nlohmann::json;

namespace {

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

namespace {

class LineChecker {
 public:
  // Returns the reason the line is bad, or "" when it is good.
  std::string check(const std::string& line) {
    if (line.empty()) return "an empty line, not a record";
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) return "not JSON";
    if (!j.is_object()) return "not a JSON object";
    for (const char* k : {"event", "time", "prev", "hash"}) {
      auto it = j.find(k);
      if (it == j.end() || !it->is_string()) return std::string("lacks the string field \"") + k + "\"";
    }
    auto seq_it = j.find("seq");
    if (seq_it == j.end() || !seq_it->is_number_unsigned())
      return "lacks the field \"seq\" (a non-negative integer)";
    uint64_t seq = seq_it->get<uint64_t>();
    std::string hash = j["hash"].get<std::string>();
    std::string prev = j["prev"].get<std::string>();
    j.erase("hash");
    if (audit::sha256_hex(audit::serialize(j)) != hash) return "its hash does not match its content (the line was edited)";
    j["hash"] = hash;
    // Same content, different bytes (spaces, key order, escapes): the hash
    // above cannot see that, the next line's prev would blame the wrong line.
    if (audit::serialize(j) != line) return "is not byte-for-byte what gatehouse writes (the line was edited)";
    if (records_ == 0) {
      if (prev != audit::kZeroHash)
        return "prev is not 64 zeros, as the first record's must be (lines were removed from the start of the file)";
      if (seq != 1) return "seq is " + std::to_string(seq) + ", the first record's must be 1";
    } else {
      if (prev != last_hash_)
        return "prev does not match line " + std::to_string(line_no_ - 1) +
               " (a line was removed, inserted or edited before it)";
      if (seq != last_seq_ + 1)
        return "seq is " + std::to_string(seq) + ", expected " + std::to_string(last_seq_ + 1) +
               " (a line was removed or inserted)";
    }
    last_hash_ = audit::sha256_hex(line);
    last_seq_ = seq;
    ++records_;
    return {};
  }

  void next_line() { ++line_no_; }
  size_t line_no() const { return line_no_; }
  size_t records() const { return records_; }
  const std::string& last_hash() const { return last_hash_; }

 private:
  size_t line_no_ = 0;
  size_t records_ = 0;
  uint64_t last_seq_ = 0;
  std::string last_hash_ = audit::kZeroHash;
};

VerifyResult unreadable(const std::string& why) {
  VerifyResult r;
  r.why = why;
  return r;
}

}  // namespace

VerifyResult verify_audit_log(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return unreadable("cannot open: " + errno_text(errno));
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* p) { ::close(*p); });
  struct stat st {};
  if (fstat(fd, &st) != 0) return unreadable("cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return unreadable("not a regular file");

  LineChecker checker;
  VerifyResult r;
  auto bad = [&](std::string why) {
    r.ok = false;
    r.records = checker.records();
    r.bad_line = checker.line_no();
    r.why = std::move(why);
    r.last_hash = checker.last_hash();
    return r;
  };
  try {
    std::string pending;  // the current line so far: never more than audit::kMaxAuditLine bytes
    std::string buf(64 * 1024, '\0');
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return unreadable("cannot read: " + errno_text(errno));
      if (n == 0) break;
      size_t pos = 0, len = static_cast<size_t>(n);
      while (pos < len) {
        const char* nl = static_cast<const char*>(memchr(buf.data() + pos, '\n', len - pos));
        size_t take = (nl ? static_cast<size_t>(nl - buf.data()) : len) - pos;
        if (pending.size() + take > audit::kMaxAuditLine) {
          checker.next_line();
          return bad("longer than 64 KiB (not a line gatehouse writes)");
        }
        pending.append(buf.data() + pos, take);
        pos += take;
        if (!nl) break;
        ++pos;  // the newline
        checker.next_line();
        if (auto why = checker.check(pending); !why.empty()) return bad(why);
        pending.clear();
      }
    }
    if (!pending.empty()) {
      checker.next_line();
      return bad("incomplete: the file ends without a newline (a write was cut short, or the line was truncated)");
    }
  } catch (const std::exception& e) {
    return bad(std::string("cannot be checked: ") + e.what());
  }
  r.ok = true;
  r.records = checker.records();
  r.last_hash = checker.last_hash();
  return r;
}

}  // namespace gh::cli

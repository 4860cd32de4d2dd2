// The audit log: append under a lock, verify by streaming. The contract
// (format, events, failure policy) is in audit.hpp.
#include "broker/audit.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace gh::broker {

namespace {

using nlohmann::json;

const std::string kZeroHash(64, '0');
constexpr const char* kReserved[] = {"time", "seq", "prev", "hash"};

std::string errno_text(int e) { return std::strerror(e); }

std::string parent_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string rfc3339_now_utc() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

// Holds flock(LOCK_EX) for one append; released on every return path.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {}
  Status acquire() {
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return err("cannot lock the audit log: " + errno_text(errno));
    }
    held_ = true;
    return ok_status();
  }
  ~FileLock() {
    if (held_) flock(fd_, LOCK_UN);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
  bool held_ = false;
};

Status create_parent_if_missing(const std::string& path) {
  std::string dir = parent_of(path);
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return err("cannot open the audit log " + path + ": " + dir + " is not a directory");
    return ok_status();
  }
  if (errno != ENOENT) return err("cannot open the audit log " + path + ": " + dir + ": " + errno_text(errno));
  // One level only: a typo in audit.log must not grow a tree of directories.
  std::string grand = parent_of(dir);
  if (stat(grand.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return err("cannot open the audit log " + path + ": neither " + dir + " nor " + grand +
               " exists; create the directory or set audit.log in the policy");
  if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    return err("cannot create the audit log's directory " + dir + ": " + errno_text(errno));
  return ok_status();
}

Result<int> open_log_fd(const std::string& path) {
  if (path.empty()) return err("the audit log path is empty; set audit.log in the policy");
  if (auto s = create_parent_if_missing(path); !s) return s.error();
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
    return err("refusing the audit log " + path +
               ": it is a symlink (whoever can change the link chooses where records go); point audit.log at the "
               "real file");
  // Read access too: append reads the last line to chain to it, through the
  // same open file (a second open by path could meet a different file).
  // O_NONBLOCK only so a FIFO planted at the path cannot hang the broker.
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_CREAT | O_NONBLOCK, 0640);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP) return err("refusing the audit log " + path + ": it is a symlink; point audit.log at the real file");
    return err("cannot open the audit log " + path + ": " + errno_text(e));
  }
  auto fail = [fd](std::string m) -> Result<int> {
    ::close(fd);
    return err(std::move(m));
  };
  if (fstat(fd, &st) != 0) return fail("cannot stat the audit log " + path + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return fail("refusing the audit log " + path + ": it is not a regular file");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail("refusing the audit log " + path + ": it is writable by group or others (mode " + mode +
                "), who could rewrite it; run chmod go-w " + path);
  }
  if (st.st_uid != 0 && st.st_uid != geteuid())
    return fail("refusing the audit log " + path + ": it is owned by uid " + std::to_string(st.st_uid) +
                ", who could rewrite it; chown it to root");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
    return fail("cannot set up the audit log " + path + ": " + errno_text(errno));
  return fd;
}

struct Tail {
  std::string prev = kZeroHash;
  uint64_t seq = 0;
};

// The last complete line, found by reading backward at most one line's
// worth: the log may be gigabytes.
Result<Tail> read_tail(int fd, const std::string& path, off_t size) {
  const std::string verify_hint = "; run `gatehouse audit verify " + path + "`";
  Tail t;
  if (size == 0) return t;
  char last = 0;
  if (pread(fd, &last, 1, size - 1) != 1) return err("cannot read the audit log " + path + ": " + errno_text(errno));
  if (last != '\n')
    return err("the audit log " + path +
               " ends in an incomplete line (a write was cut short); no job runs until it is repaired" + verify_hint +
               ", keep a copy, and remove that line");
  off_t end = size - 1;  // the final newline
  off_t want = std::min<off_t>(end, static_cast<off_t>(kMaxAuditLine) + 1);
  std::string window(static_cast<size_t>(want), '\0');
  off_t start = end - want;
  size_t got = 0;
  while (got < window.size()) {
    ssize_t n = pread(fd, window.data() + got, window.size() - got, start + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err("cannot read the audit log " + path + ": " + (n < 0 ? errno_text(errno) : "short read"));
    got += static_cast<size_t>(n);
  }
  auto nl = window.rfind('\n');
  if (nl == std::string::npos && start > 0)
    return err("the last line of the audit log " + path + " is longer than 64 KiB" + verify_hint);
  std::string line = nl == std::string::npos ? window : window.substr(nl + 1);
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned() ||
      j["seq"].get<uint64_t>() == 0)
    return err("the last line of the audit log " + path + " is not an audit record" + verify_hint);
  t.prev = audit_sha256_hex(line);
  t.seq = j["seq"].get<uint64_t>();
  return t;
}

Status write_all_or_cut_back(int fd, const std::string& path, const std::string& bytes, off_t old_size) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : ENOSPC;
      // Cut a partial line back off, so a full disk does not leave a torn
      // tail that stops every later job.
      if (ftruncate(fd, old_size) != 0) {
        return err("cannot write the audit log " + path + " (" + errno_text(e) +
                   ") nor remove the partial line; run `gatehouse audit verify " + path + "`");
      }
      return err("cannot write the audit log " + path + ": " + errno_text(e));
    }
    done += static_cast<size_t>(n);
  }
  return ok_status();
}

Status check_record(const json& record) {
  if (!record.is_object()) return err("an audit record must be a JSON object");
  auto ev = record.find("event");
  if (ev == record.end() || !ev->is_string() || ev->get_ref<const std::string&>().empty())
    return err("an audit record must have a non-empty string \"event\"");
  for (const char* k : kReserved)
    if (record.contains(k)) return err(std::string("an audit record may not set \"") + k + "\": the log sets it");
  return ok_status();
}

}  // namespace

std::string audit_serialize(const json& record) {
  return record.dump(-1, ' ', true, json::error_handler_t::replace);
}

std::string audit_sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // One-shot EVP_Digest cannot fail for SHA-256 short of allocation
  // failure; if it does, an empty hash never matches anything.
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<AuditLog> AuditLog::open(const std::string& path) {
  auto fd = open_log_fd(path);
  if (!fd) return fd.error();
  return AuditLog(path, *fd);
}

AuditLog::AuditLog(AuditLog&& other) noexcept : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

AuditLog& AuditLog::operator=(AuditLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

// After a rotation (rename + new file) the path names another file than
// the one we hold: follow the path, so a long-lived broker does not go on
// writing to the rotated-away file.
Status AuditLog::reopen() {
  auto fd = open_log_fd(path_);
  if (!fd) return fd.error();
  ::close(fd_);
  fd_ = *fd;
  return ok_status();
}

Status AuditLog::append(json record) {
  if (fd_ < 0) return err("the audit log is not open");
  if (auto s = check_record(record); !s) return s;
  try {
    for (int attempt = 0; attempt < 3; ++attempt) {
      {
        FileLock lock(fd_);
        if (auto s = lock.acquire(); !s) return s;
        struct stat held {}, by_path {};
        if (fstat(fd_, &held) != 0) return err("cannot stat the audit log " + path_ + ": " + errno_text(errno));
        bool rotated =
            stat(path_.c_str(), &by_path) != 0 || by_path.st_dev != held.st_dev || by_path.st_ino != held.st_ino;
        if (!rotated) return append_locked(std::move(record), held.st_size);
      }  // the old file's lock is released before the new file is opened
      if (auto s = reopen(); !s) return s;
    }
    return err("the audit log " + path_ + " keeps being replaced while we write; try again");
  } catch (const std::exception& e) {
    return err(std::string("cannot write an audit record: ") + e.what());
  }
}

Status AuditLog::append_locked(json record, off_t size) {
  auto tail = read_tail(fd_, path_, size);
  if (!tail) return tail.error();
  record["time"] = rfc3339_now_utc();
  record["seq"] = tail->seq + 1;
  record["prev"] = tail->prev;
  record["hash"] = audit_sha256_hex(audit_serialize(record));
  std::string line = audit_serialize(record);
  if (line.size() > kMaxAuditLine)
    return err("an audit record of " + std::to_string(line.size()) + " bytes is larger than the 64 KiB limit");
  line += '\n';
  if (auto s = write_all_or_cut_back(fd_, path_, line, size); !s) return s;
  if (fdatasync(fd_) != 0) return err("cannot flush the audit log " + path_ + ": " + errno_text(errno));
  return ok_status();
}

// ---- verify ----

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
    if (audit_sha256_hex(audit_serialize(j)) != hash) return "its hash does not match its content (the line was edited)";
    j["hash"] = hash;
    // Same content, different bytes (spaces, key order, escapes): the hash
    // above cannot see that, the next line's prev would blame the wrong line.
    if (audit_serialize(j) != line) return "is not byte-for-byte what gatehouse writes (the line was edited)";
    if (records_ == 0) {
      if (prev != kZeroHash)
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
    last_hash_ = audit_sha256_hex(line);
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
  std::string last_hash_ = kZeroHash;
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
    std::string pending;  // the current line so far: never more than kMaxAuditLine bytes
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
        if (pending.size() + take > kMaxAuditLine) {
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

}  // namespace gh::broker
